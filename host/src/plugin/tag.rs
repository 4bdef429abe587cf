//! What a plugin's log lines carry: the plugin and the request they belong to.

use std::sync::Arc;

/// The plugin and request a log line belongs to; cheap to clone, as the
/// instance and its outbound hooks each keep one.
#[derive(Clone, Debug)]
pub struct LogTag {
    /// The plugin's name.
    pub plugin: Arc<str>,
    /// The admission request's uid, or a placeholder outside a review.
    pub uid: Arc<str>,
}
