//! The sidecar injector's logic compiled natively, judging a review the way
//! Wicket judges it with the plugin's WebAssembly build: the host's request
//! and documents, the plugin reading them through the SDK's reader, and the
//! host's check of its answer (`admit::decide`). What `native_call` times
//! one call at a time and `native_serve` serves over HTTPS.

use wicket::admit::{self, Decision};
use wicket::document::{Document, Documents, Kind, Part as HostPart};
use wicket::plugin::{self, Manifest, PluginFailure, types};
use wicket::review::AdmissionRequest;
use wicket_sdk::bindings::wicket::admission::types::{self as sdk, JsonKind, Part};
use wicket_sdk::native::{self, Reader};
use wicket_sidecar_injector::SidecarInjector;

/// The injector with its manifest's settings, as Wicket would load it.
pub struct NativeInjector {
    manifest: Manifest,
    /// Indexed across calls, as a loaded plugin's are.
    settings: Document,
}

impl NativeInjector {
    /// Loads the manifest at `path`.
    pub fn load(path: &str) -> anyhow::Result<NativeInjector> {
        let manifest = Manifest::parse(&std::fs::read_to_string(path)?)?;
        let settings = Document::new(manifest.settings_json.as_str());
        Ok(NativeInjector { manifest, settings })
    }

    /// The answer to `request`, whose objects are `documents`.
    pub fn judge(&self, request: &AdmissionRequest<'_>, documents: &Documents) -> Decision {
        let object = documents.object.as_deref().map(Host);
        let old_object = documents.old_object.as_deref().map(Host);
        let options = documents.options.as_deref().map(Host);
        let readers = native::Documents {
            object: object.as_ref().map(|object| object as &dyn Reader),
            old_object: old_object.as_ref().map(|object| object as &dyn Reader),
            options: options.as_ref().map(|options| options as &dyn Reader),
            settings: &Host(&self.settings),
        };
        let answer = native::review(
            &SidecarInjector,
            sdk_request(plugin::to_wit(request)),
            readers,
        )
        .map(answer)
        .map_err(|error| PluginFailure::Reported(error.message));
        admit::decide("native", &self.manifest, documents, answer)
    }
}

/// A host document as the SDK reads it.
struct Host<'a>(&'a Document);

impl Reader for Host<'_> {
    fn get(&self, pointer: &str) -> Option<String> {
        self.0.get(pointer).map(str::to_owned)
    }

    fn part(&self, pointer: &str, inline: u32) -> Option<Part> {
        self.0.part(pointer, inline as usize).map(part)
    }

    fn members(&self, pointer: &str, names: &[String], inline: u32) -> Option<Vec<Option<Part>>> {
        let members = self.0.members(pointer, names, inline as usize)?;
        Some(members.into_iter().map(|member| member.map(part)).collect())
    }

    fn elements(&self, pointer: &str, inline: u32) -> Option<Vec<Part>> {
        let elements = self.0.elements(pointer, inline as usize)?;
        Some(elements.into_iter().map(part).collect())
    }
}

fn part(part: HostPart<'_>) -> Part {
    Part {
        kind: match part.kind {
            Kind::Null => JsonKind::Null,
            Kind::Boolean => JsonKind::Boolean,
            Kind::Number => JsonKind::Number,
            Kind::String => JsonKind::String,
            Kind::Array => JsonKind::Array,
            Kind::Object => JsonKind::Object,
        },
        bytes: u32::try_from(part.bytes).unwrap_or(u32::MAX),
        text: part.text.map(str::to_owned),
    }
}

/// The host's WIT request as the SDK's (the same record, generated twice).
fn sdk_request(request: types::Request) -> sdk::Request {
    let gvk = |kind: types::GroupVersionKind| sdk::GroupVersionKind {
        group: kind.group,
        version: kind.version,
        kind: kind.kind,
    };
    let gvr = |resource: types::GroupVersionResource| sdk::GroupVersionResource {
        group: resource.group,
        version: resource.version,
        resource: resource.resource,
    };
    sdk::Request {
        uid: request.uid,
        kind: gvk(request.kind),
        resource: gvr(request.resource),
        sub_resource: request.sub_resource,
        request_kind: request.request_kind.map(gvk),
        request_resource: request.request_resource.map(gvr),
        request_sub_resource: request.request_sub_resource,
        name: request.name,
        namespace: request.namespace,
        operation: match request.operation {
            types::Operation::Create => sdk::Operation::Create,
            types::Operation::Update => sdk::Operation::Update,
            types::Operation::Delete => sdk::Operation::Delete,
            types::Operation::Connect => sdk::Operation::Connect,
        },
        user_info: sdk::UserInfo {
            username: request.user_info.username,
            uid: request.user_info.uid,
            groups: request.user_info.groups,
            extra: request.user_info.extra,
        },
        dry_run: request.dry_run,
    }
}

/// The SDK's answer as the host's.
fn answer(response: sdk::Response) -> types::Response {
    types::Response {
        denied: response.denied.map(|denial| types::Denial {
            code: denial.code,
            message: denial.message,
        }),
        mutation: response.mutation.map(|mutation| match mutation {
            sdk::Mutation::JsonPatch(patch) => types::Mutation::JsonPatch(patch),
            sdk::Mutation::Object(object) => types::Mutation::Object(object),
        }),
        warnings: response.warnings,
        audit_annotations: response.audit_annotations,
    }
}
