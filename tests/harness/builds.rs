//! Building what the tests run, once per test process: the release
//! `wicket` binary and the `wasm32-wasip2` plugin crates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// Cargo, without the variables cargo sets for the test process itself: they
/// would change build fingerprints and make every test run rebuild wicket.
fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    let per_unit = |key: &str| {
        key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_EXE_")
            || matches!(
                key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
            )
    };
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(per_unit) {
            command.env_remove(key);
        }
    }
    command
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn run_cargo(args: &[&str]) {
    let status = cargo().args(args).status().expect("running cargo");
    assert!(status.success(), "cargo {args:?} failed");
}

/// The release `wicket` binary, built if needed.
pub fn wicket_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // No `-p`: the default members are selected, so features unify exactly
        // as in `cargo test` and the two never invalidate each other's builds.
        run_cargo(&["build", "--release", "--quiet", "--bin", "wicket"]);
        target_dir().join("release/wicket")
    })
}

/// Plugin crates the tests load: test plugins under `tests/plugins/` and the
/// plugins under `plugins/`.
const TEST_PLUGINS: &[&str] = &[
    "test-plugin-misbehave",
    "test-plugin-wrong-world",
    "test-plugin-contract-0-2-0",
    "test-plugin-cluster-probe",
    "wicket-plugin-template",
    "wicket-unique-ingress-host",
    "wicket-namespace-labels",
    "wicket-sidecar-injector",
    "wicket-configmap-mutator",
    "wicket-etcd-leader-guard",
];

/// The `.wasm` component of the plugin crate `crate_name`, built with the
/// other plugins if needed.
pub fn test_plugin(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    assert!(
        TEST_PLUGINS.contains(&crate_name),
        "unknown test plugin {crate_name}"
    );
    BUILT.get_or_init(|| {
        let mut args = vec!["build", "--release", "--quiet", "--target", "wasm32-wasip2"];
        for name in TEST_PLUGINS {
            args.extend(["-p", name]);
        }
        run_cargo(&args);
    });
    target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// The `misbehave` test plugin: it does what its `behave` setting says.
pub fn misbehave() -> PathBuf {
    test_plugin("test-plugin-misbehave")
}

/// The component built from the plugin folder `dir` (relative to the
/// workspace) by `script` (`scripts/build-python-plugin`, ...), once per test
/// process; it goes to `target/OUTPUT_DIR/NAME.wasm`, NAME being the folder's.
fn script_plugin(script: &str, output_dir: &str, dir: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|poison| poison.into_inner());
    built
        .entry(dir.to_owned())
        .or_insert_with(|| {
            let name = Path::new(dir).file_name().expect("a plugin folder");
            let wasm = target_dir()
                .join(output_dir)
                .join(name)
                .with_extension("wasm");
            let status = Command::new(workspace_root().join(script))
                .current_dir(workspace_root())
                .arg(dir)
                .arg(&wasm)
                .status()
                .unwrap_or_else(|error| panic!("running {script}: {error}"));
            assert!(status.success(), "{script} {dir} failed");
            wasm
        })
        .clone()
}

/// The Python plugin folder `dir` built by `scripts/build-python-plugin`.
pub fn python_plugin(dir: &str) -> PathBuf {
    script_plugin("scripts/build-python-plugin", "python-plugins", dir)
}

/// The TypeScript or JavaScript plugin folder `dir` built by
/// `scripts/build-js-plugin`.
pub fn js_plugin(dir: &str) -> PathBuf {
    script_plugin("scripts/build-js-plugin", "js-plugins", dir)
}
