//! A test plugin that does what its settings tell it to: allow, deny, mutate,
//! trap, loop, exhaust memory, return bad output, or keep a counter.
//!
//! One crate serves every behaviour the end-to-end tests need, so the test run
//! builds one component and loads it under many names with different
//! manifests. `validate-settings` refuses an unknown behaviour, which is how
//! the tests get a plugin that fails at load time.

use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;

wit_bindgen::generate!({
    path: "../../../wit/0.1",
    world: "admission-plugin",
});

use exports::wicket::admission::plugin::Guest;
use wicket::admission::log::{Level, log};
use wicket::admission::types::{Denial, Mutation, Operation, Request, Response};

/// The label that the mutating behaviours add.
const LABEL_KEY: &str = "wicket.dev/touched";

/// What the plugin's manifest asks of it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Settings {
    behave: Behaviour,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<u16>,
    /// For `probe`: an address to open a TCP connection to.
    #[serde(default)]
    connect: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Behaviour {
    /// Admit, log a line, and describe the request in audit annotations.
    Allow,
    /// Refuse with `message` and `code`.
    Deny,
    /// Add a label with a JSON Patch, reading only `metadata.labels`.
    AddLabel,
    /// Add the same label by returning the whole changed object.
    AddLabelObject,
    /// Set the label to `message` if the object already has it (a later
    /// pipeline step editing what an earlier one added).
    EditLabel,
    /// Add the label, but also return a (non-empty) mutation on every operation.
    AlwaysMutate,
    /// Panic (a trap).
    Trap,
    /// Log `looping on UID`, then spin forever.
    Loop,
    /// Allocate until memory runs out.
    Oom,
    /// Return a patch that does not apply to the object.
    BadPatch,
    /// Return a patch that is not JSON.
    GarbagePatch,
    /// Return more output than any sane limit.
    HugeOutput,
    /// Write a lot to stderr, then admit.
    NoisyStderr,
    /// Count requests in a static and report the count as a warning.
    Counter,
    /// Read the environment, the file system and the clock, report what it saw.
    Probe,
}

/// Requests this instance has seen; a fresh instance per request keeps it at 1.
static SEEN: AtomicU32 = AtomicU32::new(0);

struct Misbehave;

impl Guest for Misbehave {
    fn validate_settings(settings: String) -> Result<(), String> {
        parse_settings(&settings).map(|_| ())
    }

    fn review(request: Request, settings: String) -> Response {
        let settings = parse_settings(&settings).expect("settings were validated at load");
        let mut response = Response {
            denied: None,
            mutation: None,
            warnings: Vec::new(),
            audit_annotations: Vec::new(),
        };
        match settings.behave {
            Behaviour::Allow => {
                log(Level::Info, &format!("allowing {}", request.uid));
                response.audit_annotations = describe(&request);
            }
            Behaviour::Deny => {
                response.denied = Some(Denial {
                    code: settings.code.unwrap_or(403),
                    message: settings.message.unwrap_or_else(|| "denied by test".into()),
                });
            }
            Behaviour::AddLabel | Behaviour::AlwaysMutate => {
                if let Some(object) = &request.object {
                    response.mutation = Some(Mutation::JsonPatch(label_patch(object)));
                } else if matches!(settings.behave, Behaviour::AlwaysMutate) {
                    response.mutation = Some(Mutation::JsonPatch(format!(
                        r#"[{{"op":"add","path":"/metadata/labels","value":{{"{LABEL_KEY}":"true"}}}}]"#
                    )));
                }
            }
            Behaviour::AddLabelObject => {
                if let Some(object) = &request.object {
                    let mut object: serde_json::Value = serde_json::from_str(object).unwrap();
                    object["metadata"]["labels"][LABEL_KEY] = "true".into();
                    response.mutation = Some(Mutation::Object(object.to_string()));
                }
            }
            Behaviour::EditLabel => {
                let object: serde_json::Value =
                    serde_json::from_str(request.object.as_deref().unwrap_or("null")).unwrap();
                if object["metadata"]["labels"][LABEL_KEY].is_string() {
                    let pointer = LABEL_KEY.replace('~', "~0").replace('/', "~1");
                    let value =
                        serde_json::to_string(&settings.message.unwrap_or_default()).unwrap();
                    response.mutation = Some(Mutation::JsonPatch(format!(
                        r#"[{{"op":"replace","path":"/metadata/labels/{pointer}","value":{value}}}]"#
                    )));
                }
            }
            Behaviour::Trap => {
                eprintln!("about to trap on {}", request.uid);
                panic!("misbehave: trapping as told");
            }
            Behaviour::Loop => {
                log(Level::Info, &format!("looping on {}", request.uid));
                let mut spins: u64 = 0;
                loop {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            }
            Behaviour::Oom => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Behaviour::BadPatch => {
                response.mutation = Some(Mutation::JsonPatch(
                    r#"[{"op":"remove","path":"/spec/noSuchField"}]"#.into(),
                ));
            }
            Behaviour::GarbagePatch => {
                response.mutation = Some(Mutation::JsonPatch("this is not json".into()));
            }
            Behaviour::HugeOutput => {
                response.warnings = vec!["x".repeat(8 << 20)];
            }
            Behaviour::NoisyStderr => {
                for line in 0..20_000 {
                    eprintln!("noise line {line}");
                }
            }
            Behaviour::Counter => {
                let seen = SEEN.fetch_add(1, Ordering::SeqCst) + 1;
                response.warnings = vec![format!("seen={seen}")];
            }
            Behaviour::Probe => {
                let env_vars = std::env::vars().count();
                let root = std::fs::read_dir("/")
                    .map(|_| "readable")
                    .unwrap_or("denied");
                let cwd = std::fs::read_to_string("Cargo.toml")
                    .map(|_| "readable")
                    .unwrap_or("denied");
                response.audit_annotations = vec![
                    ("env-vars".into(), env_vars.to_string()),
                    ("root-dir".into(), root.into()),
                    ("cwd-file".into(), cwd.into()),
                ];
                if let Some(target) = &settings.connect {
                    let outcome = match std::net::TcpStream::connect(target) {
                        Ok(_) => "connected".to_owned(),
                        Err(error) => format!("failed: {error}"),
                    };
                    response
                        .audit_annotations
                        .push(("tcp-connect".into(), outcome));
                }
            }
        }
        response
    }
}

fn parse_settings(settings: &str) -> Result<Settings, String> {
    serde_json::from_str(settings).map_err(|err| format!("misbehave settings: {err}"))
}

/// The request's typed fields, as audit annotations, so tests can check what
/// the host handed over.
fn describe(request: &Request) -> Vec<(String, String)> {
    let operation = match request.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    };
    vec![
        ("operation".into(), operation.into()),
        ("kind".into(), request.kind.kind.clone()),
        ("resource".into(), request.resource.resource.clone()),
        (
            "sub-resource".into(),
            request.sub_resource.clone().unwrap_or_default(),
        ),
        (
            "target".into(),
            format!("{}/{}", request.namespace, request.name),
        ),
        ("user".into(), request.user_info.username.clone()),
        ("groups".into(), request.user_info.groups.join(",")),
        ("dry-run".into(), request.dry_run.to_string()),
        ("object-bytes".into(), len_of(&request.object)),
        ("old-object-bytes".into(), len_of(&request.old_object)),
        ("options-bytes".into(), len_of(&request.options)),
    ]
}

fn len_of(json: &Option<String>) -> String {
    json.as_ref()
        .map_or("none".into(), |text| text.len().to_string())
}

/// Only the part of the object the label patch depends on; serde skips the rest
/// without building it.
#[derive(Deserialize)]
struct LabelView {
    #[serde(default)]
    metadata: MetadataView,
}

#[derive(Deserialize, Default)]
struct MetadataView {
    #[serde(default)]
    labels: Option<serde::de::IgnoredAny>,
}

fn label_patch(object: &str) -> String {
    let view: LabelView = serde_json::from_str(object).unwrap_or(LabelView {
        metadata: MetadataView::default(),
    });
    if view.metadata.labels.is_some() {
        let pointer = LABEL_KEY.replace('~', "~0").replace('/', "~1");
        format!(r#"[{{"op":"add","path":"/metadata/labels/{pointer}","value":"true"}}]"#)
    } else {
        format!(r#"[{{"op":"add","path":"/metadata/labels","value":{{"{LABEL_KEY}":"true"}}}}]"#)
    }
}

export!(Misbehave);
