//! Helpers for a plugin's native unit tests (feature `testing`): build a
//! [`Review`] from an AdmissionReview captured from an API server, run a
//! plugin the way Wicket does, and apply its verdict to the object.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use typed_arena::Arena;

use crate::read::At;
use crate::review::{GroupVersionKind, GroupVersionResource, Operation, Request, UserInfo};
use crate::source::Text;
use crate::{Plugin, Review, Validate, Verdict};

/// The review inside an `admission.k8s.io` AdmissionReview (v1 or v1beta1),
/// as the API server sends it to a webhook.
///
/// # Panics
///
/// On JSON that is not an AdmissionReview request: a test fixture is wrong.
pub fn review_from_admission_review(json: &str) -> Review<'static> {
    let review: AdmissionReview =
        serde_json::from_str(json).expect("an AdmissionReview with a request");
    let request = review.request;
    let document = |value: Option<&RawValue>| {
        value
            .map(RawValue::get)
            .filter(|json| *json != "null")
            .map(|json| Text::source(json.to_owned()).expect("JSON from a JSON fixture"))
    };
    let (object, old_object, options) = (
        document(request.object),
        document(request.old_object),
        document(request.options),
    );
    let request = Request {
        uid: request.uid,
        kind: request.kind.into(),
        resource: request.resource.into(),
        sub_resource: request.sub_resource,
        request_kind: request.request_kind.map(Into::into),
        request_resource: request.request_resource.map(Into::into),
        request_sub_resource: request.request_sub_resource,
        name: request.name,
        namespace: request.namespace,
        operation: match request.operation.as_str() {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            other => panic!("unknown operation {other}"),
        },
        user_info: UserInfo {
            username: request.user_info.username,
            uid: request.user_info.uid,
            groups: request.user_info.groups,
            extra: request.user_info.extra.into_iter().collect(),
        },
        dry_run: request.dry_run,
    };
    Review::new(request, object, old_object, options)
}

/// The review in the AdmissionReview file at `path`, after `edit` has changed
/// its `request`: a variation of a captured fixture.
///
/// # Panics
///
/// When the file cannot be read or is not an AdmissionReview.
pub fn review_from_file(path: impl AsRef<Path>, edit: impl FnOnce(&mut Value)) -> Review<'static> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    let mut review: Value = serde_json::from_str(&text).expect("a JSON fixture");
    edit(&mut review["request"]);
    review_from_admission_review(&review.to_string())
}

/// Parses and checks `settings` exactly as Wicket does when it loads a
/// plugin, and reads them back as its `review` does.
pub fn settings<P: Plugin>(_plugin: &P, settings: &Value) -> Result<P::Settings, String> {
    let checked = crate::parse_settings::<P>(&settings.to_string())?;
    checked.validate().map_err(|error| error.to_string())?;
    let source = Text::source(settings.to_string()).map_err(|error| error.to_string())?;
    let texts = Arena::new();
    P::Settings::deserialize(At::new(&source, &texts, "")).map_err(|error| error.to_string())
}

/// The request's object after `verdict`'s mutation, as the API server would
/// store it (`object` unchanged when there is no mutation).
///
/// # Panics
///
/// When the patch is not JSON or does not apply: the plugin is wrong.
pub fn apply(review: &Review, verdict: &Verdict) -> Value {
    let mut object: Value =
        serde_json::from_str(review.object_json().expect("the request has an object")).unwrap();
    if let Some(patch) = verdict.patch_json() {
        let patch: json_patch::Patch = serde_json::from_str(patch).expect("the patch is JSON");
        json_patch::patch(&mut object, &patch).expect("the patch applies to the object");
    }
    if let Some(changed) = verdict.object_json() {
        object = serde_json::from_str(changed).expect("the changed object is JSON");
    }
    object
}

/// `review` with its object replaced by `object`, as a reinvocation sees it.
pub fn with_object<'a>(review: &Review<'a>, object: &Value) -> Review<'a> {
    let (request, old_object, options) = review.parts();
    let object = Text::source(object.to_string()).expect("a Value is JSON");
    Review::new(
        request.clone(),
        Some(object),
        old_object.cloned(),
        options.cloned(),
    )
}

#[derive(Deserialize)]
struct AdmissionReview<'a> {
    #[serde(borrow)]
    request: AdmissionRequest<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionRequest<'a> {
    uid: String,
    kind: Gvk,
    resource: Gvr,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    request_kind: Option<Gvk>,
    #[serde(default)]
    request_resource: Option<Gvr>,
    #[serde(default)]
    request_sub_resource: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    operation: String,
    user_info: User,
    #[serde(default)]
    dry_run: bool,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    old_object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    options: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Gvk {
    #[serde(default)]
    group: String,
    version: String,
    kind: String,
}

impl From<Gvk> for GroupVersionKind {
    fn from(gvk: Gvk) -> Self {
        Self {
            group: gvk.group,
            version: gvk.version,
            kind: gvk.kind,
        }
    }
}

#[derive(Deserialize)]
struct Gvr {
    #[serde(default)]
    group: String,
    version: String,
    resource: String,
}

impl From<Gvr> for GroupVersionResource {
    fn from(gvr: Gvr) -> Self {
        Self {
            group: gvr.group,
            version: gvr.version,
            resource: gvr.resource,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct User {
    username: String,
    uid: String,
    groups: Vec<String>,
    extra: std::collections::BTreeMap<String, Vec<String>>,
}
