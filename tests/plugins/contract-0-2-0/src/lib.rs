//! A plugin built against contract 0.2.0 exactly as it was published
//! (`wit/admission.wit` here is that text, frozen), without the SDK: the
//! components built before 0.2.1 added `cluster` must keep loading in every
//! later Wicket. It refuses objects labelled `deny`, and logs once.

wit_bindgen::generate!({
    path: "wit",
    world: "admission-plugin",
});

use exports::wicket::admission::plugin::Guest;
use wicket::admission::log::{Level, log};
use wicket::admission::types::{Denial, Document, Documents, PluginError, Request, Response};

struct Frozen;

impl Guest for Frozen {
    fn validate_settings(_settings: &Document) -> Result<(), String> {
        Ok(())
    }

    fn review(_request: Request, documents: Documents<'_>) -> Result<Response, PluginError> {
        log(Level::Info, "contract 0.2.0 plugin reviewing");
        let labelled = documents
            .object
            .and_then(|object| object.get("/metadata/labels/deny"))
            .is_some();
        Ok(Response {
            denied: labelled.then(|| Denial {
                code: None,
                message: "refused by a contract 0.2.0 plugin".to_owned(),
            }),
            mutation: None,
            warnings: Vec::new(),
            audit_annotations: Vec::new(),
        })
    }
}

export!(Frozen);
