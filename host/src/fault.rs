//! Why the host, not a plugin, could not answer a review: it had no
//! capacity ([`Overload`]) or its own merging of a pipeline's answers went
//! wrong ([`PipelineFault`]). Both are answered with an HTTP error, so the
//! API server's own `failurePolicy` decides; neither is ever a denial, nor
//! passed through a plugin's failure policy (an `ignore` plugin does not turn
//! a host fault into an admission).

use crate::patch::PatchError;
use crate::plugin::Overload;

/// Why the host could not answer a review.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// No capacity: answered 503 with `Retry-After`.
    #[error(transparent)]
    Overloaded(#[from] Overload),
    /// A fault in merging a pipeline's answers: answered 500.
    #[error(transparent)]
    Pipeline(#[from] PipelineFault),
}

/// What went wrong in the host while merging a pipeline's answers. Each
/// step's answer was checked before; these are the host's own faults.
#[derive(Debug, thiserror::Error)]
pub enum PipelineFault {
    /// The object could not be read as JSON to merge patches into.
    #[error("pipeline {pipeline}: the object is not usable JSON")]
    Object {
        /// The pipeline.
        pipeline: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A step's checked patch did not apply to the merged object.
    #[error("pipeline {pipeline}: plugin {plugin}'s patch does not apply to the merged object")]
    StepPatch {
        /// The pipeline.
        pipeline: String,
        /// The step's plugin.
        plugin: String,
        /// Why it does not apply.
        #[source]
        source: PatchError,
    },
    /// The merged object could not be written out for the next step.
    #[error("pipeline {pipeline}: the merged object cannot be serialised")]
    Serialise {
        /// The pipeline.
        pipeline: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
}
