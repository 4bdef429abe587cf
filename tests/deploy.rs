//! `deploy/kustomize`'s bundled install, rendered by `kubectl kustomize`:
//! the overlay generates a ConfigMap per bundled plugin, the Deployment runs
//! Wicket as the install promises (hardened, registered, sharing one CA),
//! and the audit CronJob judges with the Deployment's plugins and may do no
//! more than list what they select and write its reports. Every combination
//! of components: tests/kustomize.rs.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::rbac::v1::ClusterRole;
use serde_json::Value;
use wicket_tests::kustomize::{Renderer, typed};
use wicket_tests::workspace_root;

fn kustomize_dir() -> PathBuf {
    workspace_root().join("deploy/kustomize")
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The bundled overlay with the audit, as `kubectl kustomize` renders it.
fn objects() -> Vec<Value> {
    Renderer::new()
        .render("overlays/bundled", &["audit"])
        .unwrap_or_else(|error| panic!("kubectl kustomize: {error}"))
}

#[test]
fn the_overlay_generates_a_configmap_per_bundled_plugin() {
    let overlay = &documents(&kustomize_dir().join("overlays/bundled/kustomization.yaml"))[0];
    let generated: Vec<&str> = overlay["configMapGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .map(|generator| generator["name"].as_str().unwrap())
        .collect();
    let mut rendered: Vec<String> = objects()
        .into_iter()
        .filter(|document| document["kind"] == "ConfigMap")
        .map(|document| document["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let mut generated = generated;
    generated.sort();
    rendered.sort();
    assert_eq!(rendered, generated, "stable names, no hash suffix");
    for generator in overlay["configMapGenerator"].as_array().unwrap() {
        let name = generator["name"].as_str().unwrap();
        let plugin = name.strip_prefix("wicket-plugin-").unwrap();
        let manifest = workspace_root().join(format!("deploy/plugins/{plugin}.toml"));
        assert!(
            manifest.exists(),
            "{name}: no bundled manifest {}",
            manifest.display()
        );
        let files: Vec<&str> = generator["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|file| file.as_str().unwrap())
            .collect();
        assert_eq!(
            files,
            [
                format!("plugins/{plugin}.wasm"),
                format!("plugins/{plugin}.toml")
            ]
        );
    }
}

#[test]
fn the_deployment_is_hardened_registered_and_mounts_every_generated_plugin() {
    let deployment: Deployment = typed(&objects(), "Deployment", "wicket");
    let spec = deployment.spec;
    assert!(spec.replicas.unwrap() >= 2);
    let rolling = spec.strategy.unwrap().rolling_update.unwrap();
    assert_eq!(serde_json::to_value(rolling.max_unavailable).unwrap(), 0);
    let pod = spec.template.spec.unwrap();
    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(
        pod_security.seccomp_profile.unwrap().type_,
        "RuntimeDefault"
    );
    assert!(!pod.topology_spread_constraints.unwrap().is_empty());
    let container = &pod.containers[0];
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_owned()][..])
    );
    assert!(container.resources.as_ref().unwrap().limits.is_some());
    // The memory limit against the flags: tests/kustomize.rs.
    let args = container.args.as_ref().unwrap();
    for flag in [
        "--register",
        "--cert-secret=wicket-tls",
        "--service=wicket",
        "--plugins=/plugins",
        "--ops-listen=0.0.0.0:9090",
    ] {
        assert!(
            args.iter().any(|arg| arg == flag),
            "{flag} missing from {args:?}"
        );
    }
    // Probes go to the ops listener, in plain HTTP.
    let probe = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        let get = probe.as_ref().unwrap().http_get.clone().unwrap();
        (get.path.unwrap(), get.port, get.scheme)
    };
    let ops = k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("ops".into());
    assert_eq!(
        probe(&container.readiness_probe),
        ("/readyz".to_owned(), ops.clone(), None)
    );
    assert_eq!(
        probe(&container.liveness_probe),
        ("/healthz".to_owned(), ops.clone(), None)
    );
    // A cold start of many plugins is not killed by the liveness probe.
    assert_eq!(
        probe(&container.startup_probe),
        ("/healthz".to_owned(), ops, None)
    );
    let startup = container.startup_probe.as_ref().unwrap();
    let startup_s = startup.period_seconds.unwrap() * startup.failure_threshold.unwrap();
    assert!(startup_s >= 300, "{startup_s} s to start");

    // The projected plugin folder mounts exactly the ConfigMaps the overlay generates.
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|volume| volume.name == "plugins")
        .unwrap();
    let mut mounted: Vec<String> = volume
        .projected
        .unwrap()
        .sources
        .unwrap()
        .into_iter()
        .map(|source| source.config_map.unwrap().name)
        .collect();
    let overlay = &documents(&kustomize_dir().join("overlays/bundled/kustomization.yaml"))[0];
    let mut generated: Vec<String> = overlay["configMapGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .map(|generator| generator["name"].as_str().unwrap().to_owned())
        .collect();
    mounted.sort();
    generated.sort();
    assert_eq!(mounted, generated);
}

/// The book shows the bundled injector's manifest whole, as the worked
/// example; the copy must be the file, not an older version of it.
#[test]
fn the_docs_show_the_injector_manifest_as_it_is() {
    let root = workspace_root();
    let readme =
        std::fs::read_to_string(root.join("docs/src/first-party/sidecar-injector.md")).unwrap();
    let manifest =
        std::fs::read_to_string(root.join("deploy/plugins/sidecar-injector.toml")).unwrap();
    let marker = "`deploy/plugins/sidecar-injector.toml`, whole";
    let after = &readme[readme.find(marker).expect("README's worked example")..];
    let block = after
        .split_once("```toml\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(block, _)| block)
        .expect("a toml block after it");
    assert_eq!(block, manifest, "README's copy of the injector's manifest");
}

/// Every ConfigMap the bundled overlay generates fits what the API server
/// accepts: 1 MiB of data per ConfigMap, and the object (the component in
/// base64) within its 1.5 MiB request limit. It need not fit the 256 KiB
/// `last-applied-configuration` annotation of a client-side apply (the
/// injector's does not), so the documented install is server-side.
#[test]
fn generated_plugin_configmaps_fit_and_are_applied_server_side() {
    const CONFIGMAP_DATA: usize = 1 << 20;
    const REQUEST: usize = 3 << 19;
    let root = workspace_root();
    // NAME=CRATE, as scripts/bundle builds them.
    let bundle = std::fs::read_to_string(root.join("scripts/bundle")).unwrap();
    let crates: std::collections::BTreeMap<&str, &str> = bundle
        .lines()
        .filter_map(|line| line.trim().split_once('='))
        .filter(|(name, krate)| {
            let word =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '-');
            word(name) && word(krate)
        })
        .collect();
    let overlay = kustomize_dir().join("overlays/bundled");
    let kustomization = &documents(&overlay.join("kustomization.yaml"))[0];
    for generator in kustomization["configMapGenerator"].as_array().unwrap() {
        let plugin = generator["name"]
            .as_str()
            .unwrap()
            .strip_prefix("wicket-plugin-")
            .unwrap();
        let krate = crates
            .get(plugin)
            .unwrap_or_else(|| panic!("{plugin} is not in scripts/bundle"));
        let wasm = std::fs::metadata(wicket_tests::test_plugin(krate))
            .unwrap()
            .len() as usize;
        let manifest = std::fs::metadata(root.join(format!("deploy/plugins/{plugin}.toml")))
            .unwrap()
            .len() as usize;
        assert!(
            wasm + manifest <= CONFIGMAP_DATA,
            "{plugin}: {wasm} B of wasm"
        );
        let encoded = wasm.div_ceil(3) * 4 + manifest;
        assert!(encoded < REQUEST, "{plugin}: {encoded} B as an object");
    }
    for file in [
        "README.md",
        "docs/src/cluster/install.md",
        "docs/src/cluster/components.md",
        "deploy/kustomize/overlays/bundled/kustomization.yaml",
        "deploy/kustomize/examples/production/kustomization.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            !text.contains("kubectl apply -k"),
            "{file} shows a client-side apply of the plugin ConfigMaps"
        );
    }
}

/// The overlay grants Wicket reads of what the bundled plugins declare:
/// exactly the ClusterRole and binding `wicket manifests` prints for them.
#[test]
fn the_bundled_cluster_reads_are_what_wicket_manifests_grants() {
    let plugins = wicket_tests::PluginDir::new()
        .bundled("unique-ingress-host", "wicket-unique-ingress-host")
        .bundled("namespace-labels", "wicket-namespace-labels");
    let (code, stdout, stderr) = wicket_tests::run_wicket(&[
        "manifests",
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--service",
        "wicket",
        "--namespace",
        "wicket-system",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let printed: Vec<Value> = serde_saphyr::from_multiple(&stdout).unwrap();
    let granted: Vec<Value> = printed
        .into_iter()
        .filter(|document| document["metadata"]["name"] == "wicket-cluster-reads")
        .collect();
    assert_eq!(granted.len(), 2, "{stdout}");
    let overlay = documents(&kustomize_dir().join("overlays/bundled/cluster-reads.yaml"));
    assert_eq!(overlay, granted);
    assert_eq!(
        granted[0]["rules"][1]["resources"],
        serde_json::json!(["ingresses"])
    );
}

#[test]
fn the_audit_cronjob_judges_with_the_served_plugins_and_may_only_list_and_report() {
    let objects = objects();
    let cronjob: CronJob = typed(&objects, "CronJob", "wicket-audit");
    let job = cronjob.spec.job_template.spec.unwrap();
    let pod = job.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("wicket-audit"));
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    let container = &pod.containers[0];
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    let args = container.args.as_ref().unwrap();
    assert_eq!(args[..3], ["audit", "--cluster", "--plugins=/plugins"]);
    let deployment: Deployment = typed(&objects, "Deployment", "wicket");
    let served = deployment.spec.template.spec.unwrap().volumes;
    let plugins = |volumes: Option<Vec<k8s_openapi::api::core::v1::Volume>>| {
        let volumes = volumes.unwrap();
        let volume = volumes.iter().find(|v| v.name == "plugins").unwrap();
        serde_json::to_value(&volume.projected).unwrap()
    };
    assert_eq!(plugins(pod.volumes), plugins(served), "the served plugins");

    // Least privilege: list what the bundled validating plugins select for
    // a CREATE of a resource, and Namespaces; write the reports.
    let role: ClusterRole = typed(&objects, "ClusterRole", "wicket-audit");
    let mut granted: Vec<(String, String, Vec<String>)> = Vec::new();
    for rule in role.rules.unwrap() {
        for group in rule.api_groups.unwrap() {
            for resource in rule.resources.clone().unwrap() {
                granted.push((group.clone(), resource, rule.verbs.clone()));
            }
        }
    }
    let mut wanted = vec![(String::new(), "namespaces".to_owned())];
    let overlay = &documents(&kustomize_dir().join("overlays/bundled/kustomization.yaml"))[0];
    for generator in overlay["configMapGenerator"].as_array().unwrap() {
        let plugin = generator["name"].as_str().unwrap();
        let plugin = plugin.strip_prefix("wicket-plugin-").unwrap();
        let manifest = workspace_root().join(format!("deploy/plugins/{plugin}.toml"));
        let manifest: toml::Value =
            toml::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
        if manifest.get("mode").and_then(|mode| mode.as_str()) != Some("validating") {
            continue;
        }
        let entries = manifest.get("webhook").and_then(|w| w.as_array());
        for rule in entries
            .into_iter()
            .flatten()
            .flat_map(|entry| entry["rules"].as_array().unwrap().iter())
        {
            let list = |name: &str| -> Vec<String> {
                let items = rule[name].as_array().unwrap().iter();
                items
                    .map(|item| item.as_str().unwrap().to_owned())
                    .collect()
            };
            if !list("operations")
                .iter()
                .any(|op| op == "CREATE" || op == "*")
            {
                continue;
            }
            for group in list("api-groups") {
                for resource in list("resources") {
                    if !resource.contains('/') {
                        wanted.push((group.clone(), resource));
                    }
                }
            }
        }
    }
    assert!(wanted.len() > 1, "a bundled plugin is audited: {wanted:?}");
    for (group, resource) in &wanted {
        assert!(
            granted
                .iter()
                .any(|(g, r, verbs)| g == group && r == resource && verbs == &["list"]),
            "list {group}/{resource} in {granted:?}"
        );
    }
    for (group, resource, verbs) in &granted {
        let report = group == "openreports.io";
        assert!(
            report || wanted.contains(&(group.clone(), resource.clone())),
            "{group}/{resource} is granted but nothing audits it"
        );
        if report {
            assert_eq!(verbs, &["get", "list", "create", "patch", "delete"]);
        }
    }
    // What the plugins read, as the Deployment's service account may.
    let bound: Vec<String> = objects
        .into_iter()
        .filter(|document| document["kind"] == "ClusterRoleBinding")
        .filter(|document| document["subjects"][0]["name"] == "wicket-audit")
        .map(|document| document["roleRef"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bound, ["wicket-audit", "wicket-cluster-reads"]);
}
