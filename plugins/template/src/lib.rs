//! The smallest useful Wicket plugin: refuse objects without an `owner` label.
//! Copy this crate to start a plugin (and copy `wit/` with it).

wit_bindgen::generate!({ path: "../../wit", world: "admission-plugin" });

use exports::wicket::admission::plugin::Guest;
use wicket::admission::types::{Denial, Request, Response};

struct RequireOwner;

impl Guest for RequireOwner {
    fn validate_settings(_settings: String) -> Result<(), String> {
        Ok(())
    }

    fn review(request: Request, _settings: String) -> Response {
        let object: serde_json::Value =
            serde_json::from_str(request.object.as_deref().unwrap_or("{}")).unwrap_or_default();
        let denied = object["metadata"]["labels"]["owner"]
            .is_null()
            .then(|| Denial {
                code: 403,
                message: "pods need an 'owner' label; add metadata.labels.owner".into(),
            });
        Response {
            denied,
            mutation: None,
            warnings: vec![],
            audit_annotations: vec![],
        }
    }
}

export!(RequireOwner);
