//! Running a plugin's logic natively, outside any sandbox, over documents a
//! host holds (feature `native`): what Wicket's benchmarks compare a
//! plugin's WebAssembly build against, to isolate what the sandbox costs.
//! The plugin reads through the same reader as inside Wicket.

use crate::__private::Sources;
use crate::Plugin;
use crate::bindings::wicket::admission::types::{Part, PluginError, Request, Response};
use crate::source::Source;

/// A document held by the host, read as the `document` resource is.
pub trait Reader {
    /// The JSON text of the value at `pointer`.
    fn get(&self, pointer: &str) -> Option<String>;
    /// The value at `pointer`, with its text if at most `inline` bytes.
    fn part(&self, pointer: &str, inline: u32) -> Option<Part>;
    /// Each of `names` in the object at `pointer`.
    fn members(&self, pointer: &str, names: &[String], inline: u32) -> Option<Vec<Option<Part>>>;
    /// Each element of the array at `pointer`.
    fn elements(&self, pointer: &str, inline: u32) -> Option<Vec<Part>>;
}

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
