//! The live plugin folder, through the real binary: adding, replacing and
//! removing plugins, manifest-only changes, bad new versions and unreadable
//! files, a folder deleted and made again, editor renames,
//! slow partial writes, kubelet-style `..data` symlink swaps, and 50
//! replacements under load. Every change is observed through `/plugins` and
//! through reviews, polling with a deadline (one fixed sleep, where a test
//! checks that nothing happens).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use wicket_tests::{
    Churn, Client, PluginDir, Wicket, eventually, fixture, misbehave, sha256_hex, slow_to_compile,
    test_plugin, with_custom_section,
};

const POD: &str = "v1-pod-create-plain.json";
/// Reloads follow a change within about 100 ms; this is only the give-up
/// point on a loaded CI machine.
const LIMIT: Duration = Duration::from_secs(20);

/// A manifest for the misbehave plugin that denies with `message`.
fn denying(message: &str) -> String {
    format!("[settings]\nbehave = \"deny\"\nmessage = \"{message}\"\n")
}

/// Writes `file` in `dir` whole and atomically: a hidden temporary file (the
/// folder scan skips dot-files), then a rename.
fn put(dir: &Path, file: &str, bytes: &[u8]) {
    let temporary = dir.join(format!(".{file}.tmp"));
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, dir.join(file)).unwrap();
}

/// The denial message `/validate/NAME` answers with.
async fn message(client: &Client, name: &str) -> String {
    let reviewed = client
        .review(&format!("/validate/{name}"), &fixture(POD))
        .await
        .unwrap();
    assert_eq!(reviewed.response["allowed"], false, "{}", reviewed.response);
    reviewed.response["status"]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until `/plugins` shows plugin `name` at `generation`.
async fn generation(wicket: &Wicket, name: &str, generation: u64) -> Value {
    eventually(
        &format!("{name} at generation {generation}"),
        LIMIT,
        async || {
            wicket
                .plugin(name)
                .await
                .filter(|plugin| plugin["generation"] == generation)
        },
    )
    .await
}

/// Wicket serving the misbehave plugin as `p`, denying with "p: good"; its
/// folder, a client, the component's bytes and `p`'s `/plugins` entry.
async fn serving_good_p() -> (Wicket, PathBuf, Client, Vec<u8>, Value) {
    let good = std::fs::read(misbehave()).unwrap();
    let plugins = PluginDir::new()
        .write("p.toml", denying("good").as_bytes())
        .write("p.wasm", &good);
    let dir = plugins.path().to_owned();
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    let served = generation(&wicket, "p", 1).await;
    (wicket, dir, client, good, served)
}

/// Waits until `/plugins` shows `p`'s last error containing `error`, then
/// checks that the version `served` still serves.
async fn refused_while_serving(
    wicket: &Wicket,
    client: &Client,
    what: &str,
    error: &str,
    served: &Value,
) {
    let refused = eventually(
        &format!("the {what} version to be refused"),
        LIMIT,
        async || {
            wicket.plugin("p").await.filter(|plugin| {
                plugin["lastError"]
                    .as_str()
                    .is_some_and(|last| last.contains(error))
            })
        },
    )
    .await;
    assert_eq!(refused["generation"], 1, "{what}: {refused}");
    assert_eq!(refused["digest"], served["digest"], "{what}");
    assert_eq!(refused["served"], true, "{what}");
    assert_eq!(message(client, "p").await, "p: good", "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_are_added_changed_replaced_and_removed_live() {
    let plugins = PluginDir::new();
    let dir = plugins.path().to_owned();
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    assert_eq!(
        client
            .post("/validate/p", fixture(POD))
            .await
            .unwrap()
            .status,
        404
    );

    // Add.
    put(&dir, "p.toml", denying("v1").as_bytes());
    put(&dir, "p.wasm", &std::fs::read(misbehave()).unwrap());
    let added = generation(&wicket, "p", 1).await;
    assert_eq!(added["served"], true);
    assert_eq!(added["paths"][0], "/validate/p");
    assert_eq!(added["mode"], "validating");
    assert!(added["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(added["loadedAt"].is_string());
    assert_eq!(message(&client, "p").await, "p: v1");

    // Change only the manifest: same component, new settings.
    put(&dir, "p.toml", denying("v2").as_bytes());
    let changed = generation(&wicket, "p", 2).await;
    assert_eq!(changed["digest"], added["digest"]);
    assert_eq!(message(&client, "p").await, "p: v2");

    // Replace the component.
    let replacement = with_custom_section(&std::fs::read(misbehave()).unwrap(), "v3");
    put(&dir, "p.wasm", &replacement);
    let replaced = generation(&wicket, "p", 3).await;
    assert_ne!(replaced["digest"], added["digest"]);
    assert_eq!(
        replaced["counters"]["requests"], 2,
        "counters survive reloads"
    );
    assert_eq!(replaced["counters"]["denials"], 2);

    // Remove.
    std::fs::remove_file(dir.join("p.wasm")).unwrap();
    std::fs::remove_file(dir.join("p.toml")).unwrap();
    eventually("p to be gone", LIMIT, async || {
        wicket.plugin("p").await.is_none().then_some(())
    })
    .await;
    let answer = client.post("/validate/p", fixture(POD)).await.unwrap();
    assert_eq!(answer.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_new_version_never_replaces_a_good_one() {
    let (wicket, dir, client, good, served) = serving_good_p().await;

    let wrong_world = std::fs::read(test_plugin("test-plugin-wrong-world")).unwrap();
    let bad_versions: [(&str, &str, Vec<u8>, &str); 4] = [
        (
            "not wasm",
            "p.wasm",
            b"MZ\x90\x00 not a component".to_vec(),
            "not a valid WebAssembly component",
        ),
        (
            "truncated",
            "p.wasm",
            good[..good.len() / 2].to_vec(),
            "not a valid WebAssembly component",
        ),
        (
            "wrong world",
            "p.wasm",
            wrong_world,
            "does not export the wicket:admission/plugin interface",
        ),
        (
            "refused settings",
            "p.toml",
            b"[settings]\nbehave = \"nonsense\"\n".to_vec(),
            "settings refused by the plugin",
        ),
    ];
    for (what, file, bytes, error) in bad_versions {
        // Restore the good files (and see the error clear), then break one.
        put(&dir, "p.toml", denying("good").as_bytes());
        put(&dir, "p.wasm", &good);
        eventually("the good files to be seen again", LIMIT, async || {
            wicket
                .plugin("p")
                .await
                .filter(|plugin| plugin["lastError"].is_null())
        })
        .await;
        put(&dir, file, &bytes);
        refused_while_serving(&wicket, &client, what, error, &served).await;
    }

    // A good version again replaces the served one and clears the error.
    put(&dir, "p.toml", denying("better").as_bytes());
    put(&dir, "p.wasm", &good);
    let replaced = generation(&wicket, "p", 2).await;
    assert!(replaced["lastError"].is_null(), "{replaced}");
    assert_eq!(message(&client, "p").await, "p: better");
    assert!(
        wicket
            .log()
            .contains("new version not loaded; the previous one keeps serving")
    );
}

/// Replaces `file` in `dir`, atomically, with a link to a folder: reading
/// it fails for any user, root included (as `chmod 000` does for others).
fn make_unreadable(dir: &Path, file: &str) {
    let folder = dir.join(".not-a-file");
    std::fs::create_dir_all(&folder).unwrap();
    let link = dir.join(format!(".{file}.link"));
    std::os::unix::fs::symlink(&folder, &link).unwrap();
    std::fs::rename(&link, dir.join(file)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_file_keeps_the_served_version() {
    let (wicket, dir, client, good, served) = serving_good_p().await;

    for file in ["p.wasm", "p.toml"] {
        make_unreadable(&dir, file);
        let what = format!("unreadable {file}");
        let error = format!("cannot read {file}");
        refused_while_serving(&wicket, &client, &what, &error, &served).await;

        // Readable again: the same version, the error cleared, no reload.
        put(&dir, "p.toml", denying("good").as_bytes());
        put(&dir, "p.wasm", &good);
        let restored = eventually("the error to clear", LIMIT, async || {
            wicket
                .plugin("p")
                .await
                .filter(|plugin| plugin["lastError"].is_null())
        })
        .await;
        assert_eq!(restored["generation"], 1, "{restored}");
    }
    assert!(
        wicket
            .log()
            .contains("new version not loaded; the previous one keeps serving")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_folder_deleted_and_made_again_is_followed() {
    let wasm = std::fs::read(misbehave()).unwrap();
    let plugins = PluginDir::new()
        .write("p.toml", denying("first").as_bytes())
        .write("p.wasm", &wasm);
    let dir = plugins.path().to_owned();
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    generation(&wicket, "p", 1).await;

    // The folder goes: what was loaded keeps serving, and /plugins says why.
    let moved = dir.with_extension("moved");
    std::fs::rename(&dir, &moved).unwrap();
    let view = eventually("the missing folder to be reported", LIMIT, async || {
        let view = wicket.plugins().await;
        view["folderError"].as_str().is_some().then_some(view)
    })
    .await;
    assert!(
        view["folderError"]
            .as_str()
            .unwrap()
            .contains("cannot read"),
        "{view}"
    );
    assert_eq!(message(&client, "p").await, "p: first");
    let readable = "wicket_plugin_folder_readable";
    assert_eq!(wicket.metrics().await.value(readable, &[]), 0.0);

    // A new folder takes its place (within the limit, well before the 30 s
    // rescan), and changes in the new folder are followed too.
    let made = dir.with_extension("new");
    std::fs::create_dir(&made).unwrap();
    std::fs::write(made.join("p.wasm"), &wasm).unwrap();
    std::fs::write(made.join("p.toml"), denying("second")).unwrap();
    std::fs::rename(&made, &dir).unwrap();
    generation(&wicket, "p", 2).await;
    assert_eq!(message(&client, "p").await, "p: second");
    put(&dir, "p.toml", denying("third").as_bytes());
    generation(&wicket, "p", 3).await;
    assert_eq!(message(&client, "p").await, "p: third");
    assert!(wicket.plugins().await["folderError"].is_null());
    assert_eq!(wicket.metrics().await.value(readable, &[]), 1.0);
    std::fs::remove_dir_all(&moved).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn editor_renames_and_slow_partial_writes_are_read_whole() {
    let good = std::fs::read(misbehave()).unwrap();
    let plugins = PluginDir::new()
        .write("p.toml", denying("v1").as_bytes())
        .write("p.wasm", &good);
    let dir = plugins.path().to_owned();
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    generation(&wicket, "p", 1).await;

    // An editor: write a sibling file, then rename it over the original.
    std::fs::write(dir.join("p.toml.new"), denying("v2")).unwrap();
    std::fs::rename(dir.join("p.toml.new"), dir.join("p.toml")).unwrap();
    generation(&wicket, "p", 2).await;
    assert_eq!(message(&client, "p").await, "p: v2");

    // A slow copy in place: the first half, a pause long enough for Wicket to
    // read (and refuse) the half file, then the rest.
    let next = with_custom_section(&good, "slow copy");
    let mut file = std::fs::File::create(dir.join("p.wasm")).unwrap();
    file.write_all(&next[..next.len() / 2]).unwrap();
    file.flush().unwrap();
    eventually(
        "the half-written component to be seen and refused",
        LIMIT,
        async || {
            wicket
                .plugin("p")
                .await
                .filter(|plugin| !plugin["lastError"].is_null())
        },
    )
    .await;
    assert_eq!(
        message(&client, "p").await,
        "p: v2",
        "the old version serves meanwhile"
    );
    file.write_all(&next[next.len() / 2..]).unwrap();
    file.flush().unwrap();
    drop(file);
    let whole = generation(&wicket, "p", 3).await;
    assert!(whole["lastError"].is_null(), "{whole}");
    assert_eq!(
        whole["digest"],
        format!("sha256:{}", sha256_hex(&next)),
        "the whole file is what serves"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubelet_style_atomic_volume_updates_are_followed() {
    // What the kubelet builds for a ConfigMap volume: a timestamped directory
    // with the files, `..data` pointing at it, and each file a symlink
    // through `..data`. An update writes a new directory and swaps `..data`.
    let plugins = PluginDir::new();
    let dir = plugins.path().to_owned();
    let wasm = std::fs::read(misbehave()).unwrap();
    let version = |stamp: &str, message: &str| {
        let versioned = dir.join(stamp);
        std::fs::create_dir(&versioned).unwrap();
        std::fs::write(versioned.join("p.wasm"), &wasm).unwrap();
        std::fs::write(versioned.join("p.toml"), denying(message)).unwrap();
    };
    version("..2026_11_23_08_00_00.000000001", "from volume v1");
    std::os::unix::fs::symlink("..2026_11_23_08_00_00.000000001", dir.join("..data")).unwrap();
    for file in ["p.wasm", "p.toml"] {
        std::os::unix::fs::symlink(format!("..data/{file}"), dir.join(file)).unwrap();
    }
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    assert_eq!(message(&client, "p").await, "p: from volume v1");

    version("..2026_11_23_08_05_00.000000002", "from volume v2");
    std::os::unix::fs::symlink("..2026_11_23_08_05_00.000000002", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..2026_11_23_08_00_00.000000001")).unwrap();

    generation(&wicket, "p", 2).await;
    assert_eq!(message(&client, "p").await, "p: from volume v2");
    let view = wicket.plugins().await;
    assert_eq!(
        view["plugins"].as_array().unwrap().len(),
        1,
        "dot entries are not plugins: {view}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_replacements_under_load_lose_no_request() {
    let good = std::fs::read(misbehave()).unwrap();
    let plugins = PluginDir::new()
        .write("p.toml", denying("version a").as_bytes())
        .write("p.wasm", &good);
    let dir = plugins.path().to_owned();
    let wicket = Wicket::start(plugins).unwrap();
    generation(&wicket, "p", 1).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let client = wicket.client();
        let stop = stop.clone();
        load.spawn(async move {
            let mut answers = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match message(&client, "p").await.as_str() {
                    "p: version a" => answers.0 += 1,
                    "p: version b" => answers.1 += 1,
                    other => panic!("an answer from neither version: {other}"),
                }
            }
            answers
        });
    }
    for replacement in 1..=50u64 {
        let version = if replacement % 2 == 0 { "a" } else { "b" };
        put(
            &dir,
            "p.toml",
            denying(&format!("version {version}")).as_bytes(),
        );
        put(
            &dir,
            "p.wasm",
            &with_custom_section(&good, &replacement.to_string()),
        );
        generation(&wicket, "p", replacement + 1).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut a, mut b) = (0, 0);
    while let Some(answers) = load.join_next().await {
        let answers = answers.expect("a load task failed: a bad or missing answer");
        a += answers.0;
        b += answers.1;
    }
    assert!(a > 0 && b > 0, "both versions answered: {a} a, {b} b");
    let plugin = wicket.plugin("p").await.unwrap();
    assert_eq!(plugin["counters"]["requests"], a + b);
    assert_eq!(plugin["counters"]["failures"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_folder_is_neither_rescanned_nor_read_again() {
    let plugins = PluginDir::new()
        .write("p.toml", denying("one").as_bytes())
        .write("p.wasm", &std::fs::read(misbehave()).unwrap());
    let folder = plugins.path().to_owned();
    let wicket = Wicket::start_with_env(
        plugins,
        &[],
        &[("RUST_LOG", "info,wicket::registry=debug".as_ref())],
    )
    .unwrap();
    let count = |what: &str| wicket.log().matches(what).count();
    let (scans, reads) = (
        count("scanning the plugin folder"),
        count("reading plugin files"),
    );
    assert_eq!(reads, 1, "the plugin's files were read once at start");
    // Reviews and introspection read no file; a watcher that heard its own
    // reads would rescan again and again in this window. The file's one
    // fixed sleep, on purpose: it checks that nothing happens, which no
    // signal can announce.
    let client = wicket.client();
    for _ in 0..20 {
        assert_eq!(message(&client, "p").await, "p: one");
    }
    wicket.plugins().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count("scanning the plugin folder"),
        scans,
        "no rescan without a change"
    );
    // A rescan (SIGHUP) of unchanged files only looks at them.
    wicket.signal("HUP");
    eventually("a rescan after SIGHUP", LIMIT, async || {
        (count("scanning the plugin folder") > scans).then_some(())
    })
    .await;
    let reloads = wicket.plugins().await["reloads"].clone();
    assert_eq!(reloads["byTrigger"]["sighup"], 1, "{reloads}");
    assert_eq!(
        count("reading plugin files"),
        reads,
        "unchanged files are not read"
    );
    // A changed file is.
    put(&folder, "p.toml", denying("two").as_bytes());
    generation(&wicket, "p", 2).await;
    assert_eq!(count("reading plugin files"), reads + 1);
    assert_eq!(message(&client, "p").await, "p: two");
}

/// `--plugins` given relative to the working directory, as `scripts/serve`
/// gives it: changes are followed by the watch, not only by the 30 s
/// rescan (`LIMIT` is shorter than the rescan period).
#[tokio::test(flavor = "multi_thread")]
async fn a_relative_plugin_folder_is_followed() {
    let plugins = PluginDir::new().given_relative();
    let dir = plugins.path().to_owned();
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    put(&dir, "p.toml", denying("v1").as_bytes());
    put(&dir, "p.wasm", &std::fs::read(misbehave()).unwrap());
    generation(&wicket, "p", 1).await;
    assert_eq!(message(&client, "p").await, "p: v1");
    put(&dir, "p.toml", denying("v2").as_bytes());
    generation(&wicket, "p", 2).await;
    assert_eq!(message(&client, "p").await, "p: v2");
    // `/plugins` says what set the reloads off: the watch, not the rescan.
    let reloads = wicket.plugins().await["reloads"].clone();
    assert_eq!(reloads["byTrigger"]["start"], 1, "{reloads}");
    assert!(
        reloads["byTrigger"]["watch"].as_u64() >= Some(2),
        "{reloads}"
    );
    assert!(reloads["last"]["at"].is_string(), "{reloads}");
}

/// A file in the folder written every 50 ms (a log, a scratch file) never
/// lets the folder be quiet: a change still counts within the debounce's
/// cap, long before the 30 s rescan.
#[tokio::test(flavor = "multi_thread")]
async fn a_churning_folder_still_reloads() {
    let plugins = PluginDir::new();
    let dir = plugins.path().to_owned();
    let wicket = Wicket::start(plugins).unwrap();
    let churn = Churn::start(&dir);
    put(&dir, "p.toml", denying("v1").as_bytes());
    put(&dir, "p.wasm", &std::fs::read(misbehave()).unwrap());
    generation(&wicket, "p", 1).await;
    put(&dir, "p.toml", denying("v2").as_bytes());
    generation(&wicket, "p", 2).await;
    drop(churn);
    assert_eq!(message(&wicket.client(), "p").await, "p: v2");
}

/// A component that takes long to compile (as one from another language
/// does) delays no other plugin's change: each load is swapped in when it
/// is ready, and a change read meanwhile is loaded at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_compile_does_not_delay_another_plugins_change() {
    let (wicket, dir, client, _, _) = serving_good_p().await;
    put(&dir, "slow.wasm", &slow_to_compile(400, 4000));
    eventually("the slow component compiling", LIMIT, async || {
        let plugins = wicket.plugins().await;
        let compiling =
            plugins["loading"] == json!(["slow"]) && plugins["compiles"]["running"] == 1;
        compiling.then_some(())
    })
    .await;
    put(&dir, "p.toml", denying("two").as_bytes());
    generation(&wicket, "p", 2).await;
    let plugins = wicket.plugins().await;
    assert_eq!(plugins["loading"], json!(["slow"]), "{plugins}");
    assert_eq!(plugins["compiles"]["running"], 1, "{plugins}");
    assert_eq!(message(&client, "p").await, "p: two");
}

/// `--max-compiles 1`: four new components in the folder at start-up are
/// compiled one at a time (`/plugins` shows the most that ever ran at once)
/// and all are served.
#[tokio::test(flavor = "multi_thread")]
async fn compiles_take_turns_within_the_bound() {
    let component = std::fs::read(misbehave()).unwrap();
    let names = ["p0", "p1", "p2", "p3"];
    let plugins = names.iter().fold(PluginDir::new(), |plugins, name| {
        plugins
            .write(
                &format!("{name}.wasm"),
                &with_custom_section(&component, name),
            )
            .write(&format!("{name}.toml"), denying(name).as_bytes())
    });
    let wicket = Wicket::start_with(plugins, &["--max-compiles", "1"]).unwrap();
    let view = wicket.plugins().await;
    assert_eq!(
        view["compiles"],
        json!({ "limit": 1, "running": 0, "waiting": 0, "peak": 1 }),
        "{view}"
    );
    let client = wicket.client();
    for name in names {
        assert_eq!(message(&client, name).await, format!("{name}: {name}"));
    }
}
