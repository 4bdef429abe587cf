//! The compile cache through the real binary: a second start loads from
//! disk, one component under two names compiles once, and a corrupted or
//! misplaced entry is detected and replaced, never loaded.

use std::path::Path;

use wicket_tests::{PluginDir, Wicket, fixture, misbehave, run_wicket, sha256_hex, test_plugin};

/// The folder: the misbehave component under two names, and the template.
fn plugins() -> PluginDir {
    PluginDir::new()
        .misbehave("one", "validating", "fail", "allow", "")
        .misbehave("two", "validating", "fail", "allow", "")
        .plugin("owner", &test_plugin("wicket-plugin-template"), None)
}

/// Starts Wicket on a fresh copy of the folder with `cache`, checks it
/// serves, and returns how each plugin's component was obtained, from the log.
async fn start(cache: &Path) -> (String, String, String) {
    let wicket = Wicket::start_with(plugins(), &["--cache-dir", cache.to_str().unwrap()]).unwrap();
    let client = wicket.client();
    for path in ["/validate/one", "/validate/two", "/validate/owner"] {
        client
            .review(path, &fixture("v1-pod-create-plain.json"))
            .await
            .unwrap();
    }
    let log = wicket.log();
    let origin = |name: &str| {
        let line = log
            .lines()
            .find(|line| {
                line.contains("component ready") && line.contains(&format!("plugin={name} "))
            })
            .unwrap_or_else(|| panic!("no component line for {name}:\n{log}"));
        let value = line.split("origin=").nth(1).unwrap();
        value
            .split_whitespace()
            .next()
            .unwrap()
            .trim_matches('"')
            .to_owned()
    };
    let rejected = log
        .lines()
        .filter(|line| line.contains("compile cache entry rejected"))
        .collect::<Vec<_>>()
        .join("\n");
    (
        format!("{}/{}", origin("one"), origin("two")),
        origin("owner"),
        rejected,
    )
}

fn entries(cache: &Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    entries.sort();
    entries
}

#[tokio::test(flavor = "multi_thread")]
async fn compilations_are_cached_shared_and_checked() {
    let state = tempfile::tempdir().unwrap();
    let cache = &state.path().join("not/yet/there");

    let (misbehave_origins, owner, rejected) = start(cache).await;
    let mut origins: Vec<&str> = misbehave_origins.split('/').collect();
    origins.sort();
    assert_eq!(
        origins,
        ["compiled", "memory"],
        "one compilation for two names"
    );
    assert_eq!(owner, "compiled");
    assert!(rejected.is_empty());
    assert_eq!(entries(cache).len(), 2, "one entry per distinct component");

    let (misbehave_origins, owner, _) = start(cache).await;
    let mut origins: Vec<&str> = misbehave_origins.split('/').collect();
    origins.sort();
    assert_eq!(origins, ["disk", "memory"]);
    assert_eq!(owner, "disk");

    // Corrupt the template's entry: flip its last byte.
    let misbehave_digest = sha256_hex(&std::fs::read(misbehave()).unwrap());
    let (misbehave_entry, owner_entry): (Vec<_>, Vec<_>) =
        entries(cache).into_iter().partition(|path| {
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&misbehave_digest)
        });
    let (misbehave_entry, owner_entry) = (&misbehave_entry[0], &owner_entry[0]);
    let mut bytes = std::fs::read(owner_entry).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(owner_entry, &bytes).unwrap();
    let (_, owner, rejected) = start(cache).await;
    assert_eq!(owner, "compiled");
    assert!(
        rejected.contains("does not match its checksum"),
        "{rejected}"
    );
    let (_, owner, _) = start(cache).await;
    assert_eq!(owner, "disk", "the rejected entry was rewritten");

    // Misplace an entry: the misbehave component's, under the template's name.
    std::fs::copy(misbehave_entry, owner_entry).unwrap();
    let (_, owner, rejected) = start(cache).await;
    assert_eq!(owner, "compiled");
    assert!(
        rejected.contains("compiled from another component"),
        "{rejected}"
    );
    assert_eq!(entries(cache).len(), 2);
}

/// `wicket compile` fills a cache ahead of time (an image build step): a
/// start from it compiles nothing. A folder with a plugin that does not
/// load fails the step, naming it.
#[tokio::test(flavor = "multi_thread")]
async fn wicket_compile_fills_the_cache_a_start_then_reads() {
    let cache = tempfile::tempdir().unwrap();
    let compile = |folder: &PluginDir| {
        run_wicket(&[
            "compile",
            "--plugins",
            folder.path().to_str().unwrap(),
            "--cache-dir",
            cache.path().to_str().unwrap(),
        ])
    };
    let (code, stdout, stderr) = compile(&plugins());
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("3 plugin(s) ready"), "{stdout}");
    assert_eq!(entries(cache.path()).len(), 2, "two distinct components");
    let (shared, owner, rejected) = start(cache.path()).await;
    assert!(
        ["disk/memory", "memory/disk"].contains(&shared.as_str()),
        "{shared}"
    );
    assert_eq!((owner.as_str(), rejected.as_str()), ("disk", ""));

    let (code, _, stderr) = compile(&plugins().write("broken.wasm", b"not wasm"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not compiled: broken: "), "{stderr}");
}
