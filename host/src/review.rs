//! Decoding and encoding `AdmissionReview` (`admission.k8s.io/v1` and
//! `v1beta1`).
//!
//! Wicket uses its own types rather than `kube::core::admission`: the object,
//! old object and options are kept as the raw JSON text they arrived as
//! (`RawValue`), so a 20 KB pod is handed to a plugin without being parsed
//! into a tree and serialised again, and the answer's `patch` is written as
//! standard base64 text, which is what the API server requires.
//!
//! # Errors
//! [`decode`] names what is wrong with a body: not JSON, not an
//! `AdmissionReview`, an unknown `apiVersion`, no `request`, no `uid`, or a
//! request field of the wrong shape.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The `AdmissionReview` versions Wicket speaks; answers use the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `admission.k8s.io/v1`
    V1,
    /// `admission.k8s.io/v1beta1`
    V1beta1,
}

impl ApiVersion {
    /// The `apiVersion` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "admission.k8s.io/v1",
            ApiVersion::V1beta1 => "admission.k8s.io/v1beta1",
        }
    }

    fn parse(text: &str) -> Option<ApiVersion> {
        match text {
            "admission.k8s.io/v1" => Some(ApiVersion::V1),
            "admission.k8s.io/v1beta1" => Some(ApiVersion::V1beta1),
            _ => None,
        }
    }
}

/// A decoded review: its version and its request, borrowing from the body.
#[derive(Debug)]
pub struct AdmissionReview<'a> {
    /// The version to answer in.
    pub api_version: ApiVersion,
    /// The request.
    pub request: AdmissionRequest<'a>,
}

/// An API group, version and kind.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    /// The API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// The version.
    pub version: String,
    /// The kind.
    pub kind: String,
}

/// An API group, version and resource.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupVersionResource {
    /// The API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// The version.
    pub version: String,
    /// The resource (plural name).
    pub resource: String,
}

/// The operation under review.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// `CREATE`
    Create,
    /// `UPDATE`
    Update,
    /// `DELETE`
    Delete,
    /// `CONNECT`
    Connect,
}

impl Operation {
    /// The operation as the API server spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// The requesting user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UserInfo {
    /// User name.
    pub username: String,
    /// User uid.
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes from the authenticator.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// One admission request. Small fields are owned; the object, old object and
/// options borrow the body's raw JSON text.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<'a> {
    /// Identifies the review; echoed in the answer.
    pub uid: String,
    /// The kind, as the webhook was registered for it.
    pub kind: GroupVersionKind,
    /// The resource.
    pub resource: GroupVersionResource,
    /// The sub-resource, if any (e.g. `eviction`).
    #[serde(default)]
    pub sub_resource: Option<String>,
    /// The original request's kind, when converted.
    #[serde(default)]
    pub request_kind: Option<GroupVersionKind>,
    /// The original request's resource, when converted.
    #[serde(default)]
    pub request_resource: Option<GroupVersionResource>,
    /// The original request's sub-resource, when converted.
    #[serde(default)]
    pub request_sub_resource: Option<String>,
    /// The object's name (empty when the server will generate it).
    #[serde(default)]
    pub name: String,
    /// The namespace (empty for cluster-scoped objects).
    #[serde(default)]
    pub namespace: String,
    /// The operation.
    pub operation: Operation,
    /// The requesting user.
    #[serde(default)]
    pub user_info: UserInfo,
    /// Whether the request is a dry run.
    #[serde(default)]
    pub dry_run: bool,
    /// The new object, as raw JSON; `None` when absent or `null`.
    #[serde(default, borrow)]
    pub object: Option<&'a RawValue>,
    /// The stored object, as raw JSON; `None` when absent or `null`.
    #[serde(default, borrow)]
    pub old_object: Option<&'a RawValue>,
    /// The operation's options, as raw JSON.
    #[serde(default, borrow)]
    pub options: Option<&'a RawValue>,
}

impl AdmissionRequest<'_> {
    /// The object's name for logs: its name, or `PREFIX*` for an object
    /// whose name the API server will generate from `metadata.generateName`
    /// (every pod of a Deployment), or empty. Reads the object only then.
    pub fn display_name(&self) -> Cow<'_, str> {
        #[derive(Deserialize)]
        struct Object<'a> {
            #[serde(default, borrow)]
            metadata: Option<Metadata<'a>>,
        }
        #[derive(Deserialize)]
        struct Metadata<'a> {
            #[serde(default, borrow, rename = "generateName")]
            generate_name: Option<Cow<'a, str>>,
        }
        if !self.name.is_empty() {
            return Cow::Borrowed(&self.name);
        }
        let prefix = self
            .object
            .and_then(|raw| serde_json::from_str::<Object<'_>>(raw.get()).ok())
            .and_then(|object| object.metadata?.generate_name)
            .filter(|prefix| !prefix.is_empty());
        match prefix {
            Some(prefix) => Cow::Owned(format!("{prefix}*")),
            None => Cow::Borrowed(""),
        }
    }
}

/// A review's envelope with its request as `R`: the whole typed request for
/// the one-pass fast path, or the request's raw text when the envelope is
/// read first so that errors about it come before errors about the request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, R> {
    #[serde(default, borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    // Not plain `default`: on a generic field serde would demand `R: Default`.
    #[serde(default = "absent")]
    request: Option<R>,
}

fn absent<R>() -> Option<R> {
    None
}

/// What is wrong with a request body.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not a JSON object.
    #[error("the body is not a JSON AdmissionReview")]
    Json(#[source] serde_json::Error),
    /// `kind` is not `AdmissionReview`.
    #[error("kind must be \"AdmissionReview\", got {0:?}")]
    Kind(String),
    /// `apiVersion` is not one Wicket speaks.
    #[error(
        "apiVersion must be \"admission.k8s.io/v1\" or \"admission.k8s.io/v1beta1\", got {0:?}"
    )]
    ApiVersion(String),
    /// No `request`.
    #[error("the review has no request")]
    NoRequest,
    /// A request field is missing or of the wrong type.
    #[error("the request is malformed")]
    Request(#[source] serde_json::Error),
    /// `request.uid` is empty.
    #[error("request.uid is empty")]
    NoUid,
    /// `request.object` or `request.oldObject` is not a JSON object.
    #[error("request.{0} must be a JSON object (or null)")]
    NotAnObject(&'static str),
}

/// Decodes a request body, borrowing the object texts from it.
pub fn decode(body: &[u8]) -> Result<AdmissionReview<'_>, DecodeError> {
    if let Ok(Envelope {
        api_version,
        kind,
        request: Some(request),
    }) = serde_json::from_slice::<Envelope<'_, AdmissionRequest<'_>>>(body)
    {
        let api_version = check_envelope(kind.as_deref(), api_version.as_deref())?;
        return checked(api_version, request);
    }
    decode_with_precise_errors(body)
}

/// The slow path: the envelope first, then the request, so the error names
/// the first thing that is wrong.
fn decode_with_precise_errors(body: &[u8]) -> Result<AdmissionReview<'_>, DecodeError> {
    let envelope: Envelope<'_, &RawValue> =
        serde_json::from_slice(body).map_err(DecodeError::Json)?;
    let api_version = check_envelope(envelope.kind.as_deref(), envelope.api_version.as_deref())?;
    let request = envelope
        .request
        .filter(|raw| raw.get() != "null")
        .ok_or(DecodeError::NoRequest)?;
    let request: AdmissionRequest<'_> =
        serde_json::from_str(request.get()).map_err(DecodeError::Request)?;
    checked(api_version, request)
}

fn check_envelope(
    kind: Option<&str>,
    api_version: Option<&str>,
) -> Result<ApiVersion, DecodeError> {
    if kind != Some("AdmissionReview") {
        return Err(DecodeError::Kind(kind.unwrap_or_default().to_owned()));
    }
    let api_version = api_version.unwrap_or_default();
    ApiVersion::parse(api_version).ok_or_else(|| DecodeError::ApiVersion(api_version.to_owned()))
}

fn checked<'a>(
    api_version: ApiVersion,
    request: AdmissionRequest<'a>,
) -> Result<AdmissionReview<'a>, DecodeError> {
    if request.uid.is_empty() {
        return Err(DecodeError::NoUid);
    }
    // A Kubernetes object is always a JSON object; anything else would only
    // reach the plugin to fail there.
    for (field, raw) in [
        ("object", request.object),
        ("oldObject", request.old_object),
    ] {
        if raw.is_some_and(|raw| !raw.get().starts_with('{')) {
            return Err(DecodeError::NotAnObject(field));
        }
    }
    Ok(AdmissionReview {
        api_version,
        request,
    })
}

/// The answer to one review, before encoding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdmissionResponse {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// Why not, when not allowed.
    pub status: Option<Status>,
    /// The JSON Patch to apply, as JSON bytes; never empty when present.
    pub patch: Option<Vec<u8>>,
    /// Warnings for the client.
    pub warnings: Vec<String>,
    /// Audit annotations.
    pub audit_annotations: BTreeMap<String, String>,
}

/// The `status` of a refused request: what `kubectl` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// HTTP-style code: 403 for a policy refusal, 500 for a failed plugin.
    pub code: u16,
    /// The message.
    pub message: String,
    /// One message per refusal when several plugins refused (a validating
    /// pipeline), sent as `status.details.causes`.
    pub causes: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: &'a BTreeMap<String, String>,
}

/// A `meta/v1` `Status`, as the API server reads it from a webhook.
#[derive(Serialize)]
struct StatusOut<'a> {
    status: &'static str,
    code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<DetailsOut<'a>>,
}

/// `meta/v1` `StatusDetails`, carrying only causes.
#[derive(Serialize)]
struct DetailsOut<'a> {
    causes: Vec<CauseOut<'a>>,
}

/// `meta/v1` `StatusCause`.
#[derive(Serialize)]
struct CauseOut<'a> {
    message: &'a str,
}

/// The `Status.reason` the API server itself would use for `code`.
fn reason_for(code: u16) -> Option<&'static str> {
    Some(match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => return None,
    })
}

/// Encodes the answer in the request's `apiVersion`, echoing its `uid`.
pub fn encode(api_version: ApiVersion, uid: &str, response: &AdmissionResponse) -> Vec<u8> {
    let out = ReviewOut {
        api_version: api_version.as_str(),
        kind: "AdmissionReview",
        response: ResponseOut {
            uid,
            allowed: response.allowed,
            status: response.status.as_ref().map(|status| StatusOut {
                status: "Failure",
                code: status.code,
                reason: reason_for(status.code),
                message: &status.message,
                details: (!status.causes.is_empty()).then(|| DetailsOut {
                    causes: status
                        .causes
                        .iter()
                        .map(|message| CauseOut { message })
                        .collect(),
                }),
            }),
            patch_type: response.patch.as_ref().map(|_| "JSONPatch"),
            patch: response
                .patch
                .as_ref()
                .map(|patch| base64::engine::general_purpose::STANDARD.encode(patch)),
            warnings: &response.warnings,
            audit_annotations: &response.audit_annotations,
        },
    };
    serde_json::to_vec(&out).expect("an AdmissionReview always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const POD_CREATE: &str = include_str!("../../tests/fixtures/v1-pod-create-plain.json");
    const POD_DELETE_V1BETA1: &str = include_str!("../../tests/fixtures/v1beta1-pod-delete.json");
    const EVICTION: &str = include_str!("../../tests/fixtures/v1-pod-eviction-etcd-0.json");

    #[test]
    fn an_object_that_is_not_a_json_object_is_refused_naming_the_field() {
        for (field, value) in [
            ("object", json!("a string")),
            ("object", json!([1, 2])),
            ("oldObject", json!(7)),
        ] {
            let mut review: Value = serde_json::from_str(POD_CREATE).unwrap();
            review["request"][field] = value;
            let body = review.to_string();
            let error = decode(body.as_bytes()).unwrap_err();
            assert!(
                matches!(error, DecodeError::NotAnObject(f) if f == field),
                "{error}"
            );
        }
        let mut review: Value = serde_json::from_str(POD_CREATE).unwrap();
        review["request"]["oldObject"] = Value::Null;
        assert!(decode(review.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn logs_show_the_generate_name_prefix_of_an_unnamed_object() {
        let mut review: Value = serde_json::from_str(POD_CREATE).unwrap();
        let named = review["request"]["name"].as_str().unwrap().to_owned();
        assert!(!named.is_empty());
        let body = review.to_string();
        assert_eq!(
            decode(body.as_bytes()).unwrap().request.display_name(),
            named
        );

        review["request"]["name"] = "".into();
        review["request"]["object"]["metadata"]["generateName"] = "shop-5d4b8f7c9-".into();
        let body = review.to_string();
        let decoded = decode(body.as_bytes()).unwrap();
        assert_eq!(decoded.request.display_name(), "shop-5d4b8f7c9-*");

        review["request"]["object"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("generateName");
        let body = review.to_string();
        assert_eq!(decode(body.as_bytes()).unwrap().request.display_name(), "");
    }

    #[test]
    fn decodes_a_captured_pod_create_and_keeps_the_object_text_verbatim() {
        let review = decode(POD_CREATE.as_bytes()).unwrap();
        assert_eq!(review.api_version, ApiVersion::V1);
        let request = review.request;
        assert_eq!(request.uid, "12bedfc8-1484-4723-82ef-c05fd1eb2ea3");
        assert_eq!(request.operation, Operation::Create);
        assert_eq!(request.kind.kind, "Pod");
        assert_eq!(request.resource.resource, "pods");
        assert_eq!(
            (request.namespace.as_str(), request.name.as_str()),
            ("fx", "web")
        );
        assert_eq!(
            request.user_info.groups,
            ["system:masters", "system:authenticated"]
        );
        assert!(request.old_object.is_none(), "null oldObject is None");
        let object = request.object.unwrap().get();
        let original: Value = serde_json::from_str(POD_CREATE).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(object).unwrap(),
            original["request"]["object"]
        );
        assert!(
            POD_CREATE.contains(object),
            "object text is a slice of the body"
        );
    }

    #[test]
    fn decodes_v1beta1_delete_and_eviction_sub_resource() {
        let review = decode(POD_DELETE_V1BETA1.as_bytes()).unwrap();
        assert_eq!(review.api_version, ApiVersion::V1beta1);
        assert_eq!(review.request.operation, Operation::Delete);
        assert!(review.request.object.is_none());
        assert!(review.request.old_object.is_some());

        let review = decode(EVICTION.as_bytes()).unwrap();
        assert_eq!(review.request.sub_resource.as_deref(), Some("eviction"));
        assert_eq!(review.request.kind.group, "policy");
    }

    #[test]
    fn every_bad_body_gets_a_specific_error() {
        let cases: &[(&str, &str)] = &[
            ("not json", "not a JSON AdmissionReview"),
            ("[1,2]", "not a JSON AdmissionReview"),
            (
                r#"{"kind":"Pod","apiVersion":"v1"}"#,
                "kind must be \"AdmissionReview\", got \"Pod\"",
            ),
            (
                r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v2"}"#,
                "apiVersion must be",
            ),
            (
                r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#,
                "no request",
            ),
            (
                r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":null}"#,
                "no request",
            ),
            (
                r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u"}}"#,
                "missing field `kind`",
            ),
        ];
        for (body, expected) in cases {
            let err = crate::text::with_causes(&decode(body.as_bytes()).unwrap_err());
            assert!(err.contains(expected), "{body}: {err}");
        }
        let mut no_uid: Value = serde_json::from_str(POD_CREATE).unwrap();
        no_uid["request"]["uid"] = json!("");
        let body = serde_json::to_vec(&no_uid).unwrap();
        assert!(matches!(decode(&body), Err(DecodeError::NoUid)));
    }

    #[test]
    fn encodes_patch_as_standard_base64_with_patch_type() {
        // A patch whose base64 differs between the standard and URL-safe
        // alphabets, so a wrong encoder cannot pass.
        let patch = br#"[{"op":"add","path":"/a","value":"??>>"}]"#.to_vec();
        let response = AdmissionResponse {
            allowed: true,
            patch: Some(patch.clone()),
            ..Default::default()
        };
        let out: Value = serde_json::from_slice(&encode(ApiVersion::V1, "u-1", &response)).unwrap();
        assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(out["kind"], "AdmissionReview");
        assert_eq!(out["response"]["uid"], "u-1");
        assert_eq!(out["response"]["patchType"], "JSONPatch");
        let text = out["response"]["patch"].as_str().unwrap();
        assert!(text.contains('+') || text.contains('/'), "{text}");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        assert_eq!(decoded, patch);
        assert!(out["response"].get("status").is_none());
        assert!(out["response"].get("warnings").is_none());
    }

    #[test]
    fn encodes_a_denial_without_patch_in_v1beta1() {
        let response = AdmissionResponse {
            allowed: false,
            status: Some(Status {
                code: 403,
                message: "no".into(),
                causes: Vec::new(),
            }),
            warnings: vec!["careful".into()],
            ..Default::default()
        };
        let out: Value =
            serde_json::from_slice(&encode(ApiVersion::V1beta1, "u-2", &response)).unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": "admission.k8s.io/v1beta1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": "u-2",
                    "allowed": false,
                    "status": {"status": "Failure", "code": 403, "reason": "Forbidden", "message": "no"},
                    "warnings": ["careful"]
                }
            })
        );
    }
}
