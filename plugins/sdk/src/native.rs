//! Running a plugin's logic natively, outside any sandbox, over documents a
//! host holds (feature `native`): what Wicket's benchmarks compare a
//! plugin's WebAssembly build against, to isolate what the sandbox costs.
//! The plugin reads through the same reader as inside Wicket.

use crate::__private::Sources;
use crate::Plugin;
use crate::bindings::wicket::admission::types::{PluginError, Request, Response};
pub use crate::source::Reader;
use crate::source::Source;

/// The documents of one review, as readers.
pub struct Documents<'a> {
    /// The new object.
    pub object: Option<&'a dyn Reader>,
    /// The stored object.
    pub old_object: Option<&'a dyn Reader>,
    /// The operation's options.
    pub options: Option<&'a dyn Reader>,
    /// The plugin's settings.
    pub settings: &'a dyn Reader,
}

/// What the export's `review` answers, computed natively.
pub fn review<P: Plugin>(
    plugin: &P,
    request: Request,
    documents: Documents<'_>,
) -> Result<Response, PluginError> {
    let documents = Sources::of(
        [documents.object, documents.old_object, documents.options],
        documents.settings,
        Source::Native,
    );
    crate::__private::judge(plugin, request, documents)
}
