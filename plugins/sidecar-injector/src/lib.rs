//! Wicket's sidecar injector: adds named sidecars to pods that opt in.
//!
//! A pod opts in with `<prefix>/inject` as a label or an annotation (the label
//! wins, as in Istio), and picks sidecars with the `<prefix>/sidecars`
//! annotation or gets `default-sidecars`. The injection is refused with a
//! clear message when it would clash with the pod (a container name, a volume
//! with another source, a port) or when an annotation a sidecar requires is
//! missing. A `<prefix>/status` annotation records what was injected, and a
//! pod that has it is left alone, so reinvocation changes nothing.

mod inject;
mod pod;
mod settings;

use wicket_sdk::{Error, Operation, Plugin, Review, Verdict};

use crate::inject::{Keys, Refusal};
use crate::pod::{Marks, PodView};
use crate::settings::Settings;

/// The plugin.
pub struct SidecarInjector;

impl Plugin for SidecarInjector {
    type Settings = Settings;

    fn review(&self, review: &Review, settings: &Settings) -> Result<Verdict, Error> {
        let is_pod_create = review.operation() == Operation::Create
            && review.resource().resource == "pods"
            && review.sub_resource().is_none();
        if !is_pod_create {
            return Ok(Verdict::allow());
        }
        let keys = Keys::new(&settings.prefix);
        let annotation_keys: Vec<&str> = [&keys.inject, &keys.sidecars, &keys.status]
            .into_iter()
            .map(String::as_str)
            .chain(settings.annotations_read())
            .collect();
        let marks = Marks::read(review, &[&keys.inject], &annotation_keys)?;
        // Injected already (a reinvocation, or a pod copied from an injected
        // one): answered from two annotations, without reading the pod.
        if marks.annotation(&keys.status).is_some() {
            return Ok(Verdict::allow());
        }
        let pod: PodView = review.object()?;
        let pod_volume = |index: usize| review.object_at(&format!("/spec/volumes/{index}"));
        let verdict = match inject::inject(&pod, &marks, &pod_volume, settings, &keys) {
            Ok(Some(injection)) => Verdict::allow()
                .with_patch(&injection.patch)
                .audit("injected", injection.sidecars.join(",")),
            Ok(None) => Verdict::allow(),
            Err(Refusal::Skip(warning)) => Verdict::allow().warn(warning),
            Err(Refusal::Deny(code, message)) => Verdict::deny_with_code(
                code,
                format!("pod {}: {message}", pod.metadata.display_name()),
            ),
        };
        Ok(verdict)
    }
}

wicket_sdk::export_plugin!(SidecarInjector);

/// Each review runs in a fresh instance: allocate from an arena, never free.
#[cfg(target_family = "wasm")]
#[global_allocator]
static ARENA: wicket_sdk::arena::Arena = wicket_sdk::arena::Arena::new();

#[cfg(test)]
mod tests;
