//! Calling a loaded plugin: a fresh, limited instance from its template for
//! every call, charged its own time, and every way a call can end turned
//! into an answer, a [`PluginFailure`] or an [`Overload`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::{Engine, Store};

use super::bindings::{AdmissionPlugin, AdmissionPluginPre, v0_1};
use super::cluster_access::ClusterAccess;
use super::compile::Origin;
use super::deadline::{Interrupt, WALL_HEADROOM, epoch_callback, wall_bound};
use super::epoch::Ticker;
use super::host::InstanceState;
use super::legacy;
use super::manifest::Manifest;
use super::memory::{MemoryBudget, MemoryBudgets, MemoryCap};
use super::meter::{LongCalls, Meter, Metered};
use super::outbound::Access;
use super::outcome::{CallError, Overload, PluginFailure, Reviewed};
use super::output::CapturedOutput;
use super::request::to_wit;
use super::tag::LogTag;
use super::teardown::Teardown;
use crate::document::{Document, Documents};
use crate::review::AdmissionRequest;
use crate::text::truncate;

/// What the calls of all plugins share.
pub(super) struct Shared {
    /// Instance slots: one per running instance.
    pub(super) slots: Semaphore,
    pub(super) max_instances: u32,
    /// Turns for long-running calls: fewer than the cores.
    pub(super) turns: Arc<Semaphore>,
    /// Linear memory of all live instances.
    pub(super) memory: Arc<MemoryBudget>,
    /// The most one plugin's instances may hold together.
    pub(super) memory_share: usize,
    /// Advances the epoch while calls run.
    pub(super) ticker: Ticker,
    /// Ends the instances that grew large.
    pub(super) teardown: Teardown,
}

/// A plugin's pre-instantiated template, by the contract it was built
/// against.
pub(super) enum Contract {
    /// Built against 0.2: documents read through the host.
    V0_2(AdmissionPluginPre<InstanceState>),
    /// Built against 0.1: objects copied in.
    V0_1(v0_1::AdmissionPluginPre<InstanceState>),
}

impl Contract {
    fn engine(&self) -> &Engine {
        match self {
            Contract::V0_2(pre) => pre.engine(),
            Contract::V0_1(pre) => pre.engine(),
        }
    }
}

/// One instance of a plugin, by its contract.
enum Instance {
    V0_2(AdmissionPlugin),
    V0_1(v0_1::AdmissionPlugin),
}

/// Where in a call an error arose.
enum Stage {
    Instantiate,
    Call,
}

/// A loaded plugin: its manifest and its pre-instantiated template.
pub struct Plugin {
    pub(super) name: Arc<str>,
    pub(super) digest: String,
    /// Where its compiled component came from, and how long getting it
    /// took: what a reload of a large component costs.
    pub(super) component: (Origin, Duration),
    pub(super) manifest: Manifest,
    /// Its settings, indexed across calls: read through the host by 0.2
    /// plugins, copied in whole for 0.1 ones.
    pub(super) settings: Arc<Document>,
    pub(super) pre: Contract,
    /// Its own instance slots (`max-concurrency`).
    pub(super) own_slots: Semaphore,
    /// Its instances' memory together.
    pub(super) own_memory: Arc<MemoryBudget>,
    /// When its calls last ran long.
    pub(super) long_calls: LongCalls,
    /// Its outbound grant with the TLS files loaded, when it has one.
    pub(super) outbound: Option<Arc<Access>>,
    /// What it may read of the cluster.
    pub(super) cluster: Arc<ClusterAccess>,
    pub(super) shared: Arc<Shared>,
}

impl Plugin {
    /// The plugin's name (its file name without `.wasm`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The manifest it was loaded with.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The SHA-256 of its component, lower-case hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Where its compiled component came from (compiled, the disk cache or
    /// memory), and how long getting it took.
    pub fn component(&self) -> (Origin, Duration) {
        self.component
    }

    /// The contract version it was built against.
    pub fn contract(&self) -> &'static str {
        match self.pre {
            Contract::V0_1(_) => "0.1",
            Contract::V0_2(_) => "0.2",
        }
    }

    /// Runs `review` in a fresh instance on `request`, whose objects are
    /// `documents` (read through the host by 0.2 plugins, copied in for 0.1
    /// ones), giving up on it as overloaded at `wall_bound` (see
    /// [`Plugin::wall_bound`]).
    pub async fn review(
        &self,
        request: &AdmissionRequest<'_>,
        documents: &Documents,
        wall_bound: Instant,
    ) -> Reviewed {
        let request = to_wit(request);
        let meter = Arc::new(Meter::default());
        let answer = self
            .call(
                &request.uid,
                wall_bound,
                &meter,
                async |instance, store| match instance {
                    Instance::V0_2(plugin) => {
                        let documents = store.data_mut().lend(documents, &self.settings)?;
                        plugin
                            .wicket_admission_plugin()
                            .call_review(store, &request, documents)
                            .await
                    }
                    Instance::V0_1(plugin) => plugin
                        .wicket_admission_plugin()
                        .call_review(
                            store,
                            &legacy::request(request.clone(), documents),
                            self.settings.text(),
                        )
                        .await
                        .map(|response| Ok(legacy::response(response))),
                },
            )
            .await
            .and_then(|answer| {
                answer.map_err(|error| {
                    PluginFailure::Reported(truncate(&error.message, 512).to_owned()).into()
                })
            });
        Reviewed {
            answer,
            own_time: meter.charged(),
        }
    }

    /// The wall-clock bound of a call starting now.
    pub fn wall_bound(&self) -> Instant {
        wall_bound(self.manifest.limits.timeout())
    }

    /// Runs `validate-settings` in a fresh instance.
    pub(super) async fn validate_settings(&self) -> Result<Result<(), String>, CallError> {
        self.call(
            "validate-settings",
            self.wall_bound(),
            &Arc::new(Meter::default()),
            async |instance, store| match instance {
                Instance::V0_2(plugin) => {
                    let settings = store.data_mut().lend_one(&self.settings)?;
                    plugin
                        .wicket_admission_plugin()
                        .call_validate_settings(store, settings)
                        .await
                }
                Instance::V0_1(plugin) => {
                    plugin
                        .wicket_admission_plugin()
                        .call_validate_settings(store, self.settings.text())
                        .await
                }
            },
        )
        .await
    }

    /// Takes a slot, instantiates the plugin in a new store with its limits
    /// and runs `body` charging `meter`, turning every way the call can go
    /// wrong into a [`CallError`].
    async fn call<R>(
        &self,
        uid: &str,
        wall_bound: Instant,
        meter: &Arc<Meter>,
        body: impl AsyncFnOnce(&Instance, &mut Store<InstanceState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let limits = &self.manifest.limits;
        let wall_bound = tokio::time::Instant::from_std(wall_bound);
        // A closed semaphore and a timeout both mean no slot. A call that had
        // to wait for one of its plugin's own slots and then runs out of time
        // failed for its plugin's load, not the host's.
        let _own_slot = match self.own_slots.try_acquire() {
            Ok(slot) => slot,
            Err(_) => {
                meter.waited_for_own_slot();
                tokio::time::timeout_at(wall_bound, self.own_slots.acquire())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .ok_or(PluginFailure::Saturated(limits.max_concurrency))?
            }
        };
        let _slot = tokio::time::timeout_at(wall_bound, self.shared.slots.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(Overload::Slots(self.shared.max_instances))?;
        let _running = self.shared.ticker.running();
        let output = CapturedOutput::default();
        let tag = LogTag {
            plugin: self.name.clone(),
            uid: uid.into(),
        };
        let mut store = Store::new(
            self.pre.engine(),
            InstanceState::new(
                tag,
                limits.memory_bytes(),
                MemoryBudgets {
                    plugin: self.own_memory.clone(),
                    shared: self.shared.memory.clone(),
                },
                self.outbound.clone(),
                self.cluster.clone(),
                &output,
            ),
        );
        store.limiter(|state| state.limiter());
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(epoch_callback(
            meter.clone(),
            self.shared.turns.clone(),
            limits.timeout(),
            self.long_calls.turns_after(),
            wall_bound.into_std(),
        ));

        let mut run = Metered::new(
            async {
                let plugin = match &self.pre {
                    Contract::V0_2(pre) => {
                        pre.instantiate_async(&mut store).await.map(Instance::V0_2)
                    }
                    Contract::V0_1(pre) => {
                        pre.instantiate_async(&mut store).await.map(Instance::V0_1)
                    }
                }
                .map_err(|err| (Stage::Instantiate, err))?;
                body(&plugin, &mut store)
                    .await
                    .map_err(|err| (Stage::Call, err))
            },
            meter.clone(),
        );
        // The epoch callback ends a running call at the bound; this timer
        // ends one blocked in a host call (an outbound request).
        let outcome = tokio::time::timeout_at(wall_bound, &mut run).await;
        let used = run.used();
        drop(run);
        self.long_calls.record(meter);
        let result = match outcome {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err((stage, error))) => Err(self.classify(stage, error, &store, meter, &output)),
            Err(_elapsed) => Err(self.past_bound(used, meter)),
        };
        self.shared.teardown.end(store);
        self.log_output(uid, &output);
        result
    }

    /// What passing the wall-clock bound means: the plugin's failure if it
    /// used its deadline, waited for its own busy instances or ran long; the
    /// host's overload otherwise. Waiting comes before running long: a call
    /// that got its plugin's slot late runs out of time however it then runs.
    fn past_bound(&self, used: Duration, meter: &Meter) -> CallError {
        let limits = &self.manifest.limits;
        if used >= limits.timeout() {
            return PluginFailure::Deadline(limits.timeout()).into();
        }
        if meter.had_to_wait_for_own_slot() {
            return PluginFailure::Saturated(limits.max_concurrency).into();
        }
        let bound = limits.timeout() + WALL_HEADROOM;
        match meter.was_long() {
            true => PluginFailure::WallClock { bound, used }.into(),
            false => Overload::Busy(bound).into(),
        }
    }

    /// Names the cause of a failed call. The deadline and the memory caps
    /// can be hit while instantiating as well as while running.
    fn classify(
        &self,
        stage: Stage,
        error: wasmtime::Error,
        store: &Store<InstanceState>,
        meter: &Meter,
        output: &CapturedOutput,
    ) -> CallError {
        let limits = &self.manifest.limits;
        match error.downcast_ref::<Interrupt>() {
            Some(Interrupt::Deadline) => return PluginFailure::Deadline(limits.timeout()).into(),
            Some(Interrupt::WallBound) => return self.past_bound(meter.used(), meter),
            None => {}
        }
        match store.data().memory_cap_hit() {
            Some(MemoryCap::Plugin) => return PluginFailure::Memory(limits.memory_bytes()).into(),
            Some(MemoryCap::PluginShare) => {
                return PluginFailure::MemoryShare(self.shared.memory_share).into();
            }
            Some(MemoryCap::Host) => return Overload::Memory.into(),
            None => {}
        }
        if let Some(full) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            return Overload::Pool(full.to_string()).into();
        }
        if let Stage::Instantiate = stage {
            return PluginFailure::Instantiate(format!("{error:#}")).into();
        }
        tracing::debug!(plugin = %self.name, error = ?error, "plugin trapped");
        let detail = match output.panic_message() {
            Some(panic) => format!("panicked: {panic}"),
            None => match error.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => trap.to_string(),
                None => format!("{error:#}"),
            },
        };
        PluginFailure::Trap(truncate(&detail, 512).to_owned()).into()
    }

    /// Sends what the plugin wrote to stdout/stderr to the log.
    fn log_output(&self, uid: &str, output: &CapturedOutput) {
        let (text, dropped) = output.take();
        if text.is_empty() {
            return;
        }
        tracing::info!(
            target: "wicket::plugin",
            plugin = %self.name,
            uid = %uid,
            output = ?text.trim_end(),
            dropped_bytes = dropped,
            "plugin output"
        );
    }
}
