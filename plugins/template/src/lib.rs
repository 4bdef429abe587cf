//! The smallest useful Wicket plugin: refuse objects without an `owner` label.
//! Copy this crate to start a plugin.

use wicket_sdk::view::Metadata;
use wicket_sdk::{Error, NoSettings, Plugin, Review, Verdict};

struct RequireOwner;

impl Plugin for RequireOwner {
    type Settings = NoSettings;

    fn review(&self, review: &Review, _settings: &NoSettings) -> Result<Verdict, Error> {
        if !review.has_object() {
            return Ok(Verdict::allow()); // a delete: nothing to label
        }
        // Read only metadata: the rest of the object stays in Wicket.
        let object: Metadata = review.object()?;
        Ok(match object.metadata.label("owner") {
            Some(_) => Verdict::allow(),
            None => Verdict::deny("pods need an 'owner' label; add metadata.labels.owner"),
        })
    }
}

wicket_sdk::export_plugin!(RequireOwner);
