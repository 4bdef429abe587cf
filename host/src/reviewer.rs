//! What judges a review on one path — a plugin or a pipeline — with the
//! deadline of its plugins' own time: shared by the server's routes and
//! `wicket audit`, so both judge exactly alike.

use std::sync::Arc;
use std::time::Duration;

use crate::admit::Decision;
use crate::document::Documents;
use crate::fault::HostError;
use crate::pipeline::Pipeline;
use crate::plugin;
use crate::review::AdmissionRequest;
use crate::served::Served;

/// A plugin or a pipeline, as served.
#[derive(Clone)]
pub enum Reviewer {
    /// A plugin.
    Plugin(Arc<Served>),
    /// A pipeline of plugins.
    Pipeline(Arc<Pipeline>),
}

impl Reviewer {
    /// The longest its plugins may take of their own time.
    pub fn deadline(&self) -> Duration {
        match self {
            Reviewer::Plugin(served) => served.plugin().manifest().limits.timeout(),
            Reviewer::Pipeline(pipeline) => Duration::from_millis(pipeline.timeout_ms()),
        }
    }

    /// Judges `request`, whose documents are `documents`, within the
    /// deadline from now.
    pub async fn judge(
        &self,
        request: &AdmissionRequest<'_>,
        documents: &Documents,
    ) -> Result<Decision, HostError> {
        let wall_bound = plugin::wall_bound(self.deadline());
        match self {
            Reviewer::Plugin(served) => served.judge(request, documents, wall_bound).await,
            Reviewer::Pipeline(pipeline) => pipeline.judge(request, documents, wall_bound).await,
        }
    }
}
