//! One review step, shared by `wicket serve` (directly and through
//! pipelines) and `wicket check`: run a plugin on a request, then decide its
//! answer with the pure rules of [`crate::admit`].

use std::time::Instant;

use crate::admit::{self, Decision};
use crate::document::Documents;
use crate::plugin::{CallError, Overload, Plugin};
use crate::review::AdmissionRequest;

/// Runs `plugin` on `request` and decides the answer. A host too busy to run
/// the plugin by `wall_bound` is an [`Overload`], not a decision. Nothing is
/// logged here: the review's one line is written where the request ends,
/// from the [`Decision`].
pub async fn judge(
    plugin: &Plugin,
    request: &AdmissionRequest<'_>,
    documents: &Documents,
    wall_bound: Instant,
) -> Result<Decision, Overload> {
    let reviewed = plugin.review(request, documents, wall_bound).await;
    let answer = match reviewed.answer {
        Ok(answer) => Ok(answer),
        Err(CallError::Plugin(failure)) => Err(failure),
        Err(CallError::Overloaded(overload)) => return Err(overload),
    };
    let decision = admit::decide(plugin.name(), plugin.manifest(), documents, answer);
    let mut decision = admit::enforce(plugin.manifest().enforcement, decision);
    decision.plugin_time = reviewed.own_time;
    Ok(decision)
}
