//! A plugin version being served: the loaded plugin, its name's counters
//! and the files it came from. Judging a review with it counts the review,
//! whether the review came to its own path or through a pipeline.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::admit::Decision;
use crate::counters::Counters;
use crate::document::Documents;
use crate::fault::HostError;
use crate::judge::judge;
use crate::plugin::Plugin;
use crate::review::AdmissionRequest;

/// A plugin version being served, with its name's counters.
pub struct Served {
    pub(crate) plugin: Arc<Plugin>,
    pub(crate) counters: Arc<Counters>,
    /// Versions served under the name so far, this one included.
    pub(crate) generation: u64,
    pub(crate) loaded_at: SystemTime,
    pub(crate) source: Source,
}

impl Served {
    /// The plugin.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Runs the plugin on `request` and its `documents` (given up as
    /// overloaded at `wall_bound`), decides the answer and counts it.
    pub async fn judge(
        &self,
        request: &AdmissionRequest<'_>,
        documents: &Documents,
        wall_bound: Instant,
    ) -> Result<Decision, HostError> {
        let judging = judge(&self.plugin, request, documents, wall_bound);
        self.counters
            .counted(request.operation, async { Ok(judging.await?) })
            .await
    }
}

/// What the files of a plugin were when they were last loaded or tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) digest: String,
    pub(crate) manifest: Option<String>,
}
