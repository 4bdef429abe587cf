//! One kind followed from the API server into its [`Cache`]: found through
//! discovery, listed in pages, then watched; relisted when the watch
//! expires (410) or breaks, with backoff. A list fills a fresh store that
//! replaces the served one only when complete, so a half-built cache is
//! never read.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use kube::api::{Api, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::discovery::pinned_kind;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt as _};
use serde_json::Value;

use super::budget::{self, Budget};
use super::cache::{Cache, SyncState};
use super::kind::KindKey;
use super::store::{pruned_text, read_lock};

/// The wait before discovery is tried again, doubled up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Follows `cache`'s kind until the task is dropped or the budget
/// refuses the cache.
pub async fn follow(client: kube::Client, cache: Arc<Cache>, budget: Arc<Budget>) {
    let kind = &cache.kind;
    let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
    let mut retry = RETRY_FIRST;
    let resource = loop {
        match pinned_kind(&client, &gvk).await {
            Ok((resource, _capabilities)) => break resource,
            Err(error) => {
                cache.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%kind, %error, "cannot look the kind up; retrying");
                // A kind the API server does not serve fails; an API server
                // out of reach leaves the cache syncing.
                if let kube::Error::Discovery(_) = error {
                    let why = format!("the API server does not serve it: {error}");
                    cache.set_state(SyncState::Failed(why));
                } else if let Some(refused) = forbidden(&error) {
                    cache.set_state(refused);
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    };
    cache.set_state(SyncState::Syncing);
    let config = watcher::Config::default();
    match cache.metadata_only {
        true => {
            let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &resource);
            run(
                watcher::watcher(api, config).default_backoff(),
                &cache,
                &budget,
            )
            .await;
        }
        false => {
            let api: Api<DynamicObject> = Api::all_with(client, &resource);
            run(
                watcher::watcher(api, config).default_backoff(),
                &cache,
                &budget,
            )
            .await;
        }
    }
}

/// Applies `events` to `cache`.
async fn run<K>(
    events: impl Stream<Item = Result<Event<K>, watcher::Error>>,
    cache: &Cache,
    budget: &Budget,
) where
    K: Resource + serde::Serialize,
{
    futures_util::pin_mut!(events);
    // A list's texts, and their bytes: the store is built once, when the
    // list completes.
    let mut filling: Option<(Vec<String>, usize)> = None;
    let mut lists = 0_u64;
    let served_held = || budget::held(&read_lock(cache.store()));
    while let Some(event) = events.next().await {
        if let SyncState::OverBudget(_) = cache.state() {
            return;
        }
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                cache.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(kind = %cache.kind, %error, "list or watch failed; retrying with backoff");
                // Objects once synced keep serving; a first list refused
                // says why.
                if cache.state() != SyncState::Synced
                    && let Some(state) = watcher_forbidden(&error)
                {
                    cache.set_state(state);
                }
                continue;
            }
        };
        cache.touched();
        match event {
            Event::Init => {
                lists += 1;
                if lists > 1 {
                    cache.relists.fetch_add(1, Ordering::Relaxed);
                }
                filling = Some((Vec::new(), 0));
            }
            Event::InitApply(object) => {
                if let Some((texts, bytes)) = &mut filling {
                    let text = text_of(&cache.kind, object);
                    *bytes += text.len();
                    texts.push(text);
                    budget.grew(cache, budget::held_by(*bytes, texts.len()) + served_held());
                }
            }
            Event::InitDone => {
                if let Some((texts, _)) = filling.take() {
                    cache.replace(cache.filled(texts));
                }
                budget.grew(cache, served_held());
                if let SyncState::OverBudget(_) = cache.state() {
                    return;
                }
                cache.set_state(SyncState::Synced);
            }
            Event::Apply(object) => {
                cache.change(|store| store.insert(text_of(&cache.kind, object)));
                budget.grew(cache, served_held());
            }
            Event::Delete(object) => {
                let key = (object.namespace().unwrap_or_default(), object.name_any());
                cache.change(|store| store.remove(&key));
                cache.set_held(served_held());
            }
        }
    }
}

/// A list or watch refused for lack of RBAC, as a state.
fn watcher_forbidden(error: &watcher::Error) -> Option<SyncState> {
    match error {
        watcher::Error::InitialListFailed(error) | watcher::Error::WatchStartFailed(error) => {
            forbidden(error)
        }
        watcher::Error::WatchError(status) if status.code == 403 => {
            Some(SyncState::Forbidden(status.message.clone()))
        }
        _ => None,
    }
}

/// A request refused for lack of RBAC, as a state.
fn forbidden(error: &kube::Error) -> Option<SyncState> {
    match error {
        kube::Error::Api(status) if status.code == 403 => {
            Some(SyncState::Forbidden(status.message.clone()))
        }
        _ => None,
    }
}

/// `object` as a store keeps it, with the `apiVersion` and `kind` of the
/// kind (list items come without; metadata comes as
/// `PartialObjectMetadata`).
fn text_of(kind: &KindKey, object: impl serde::Serialize) -> String {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Value::Object(map) = &mut value {
        map.insert("apiVersion".to_owned(), Value::String(kind.api_version()));
        map.insert("kind".to_owned(), Value::String(kind.kind.clone()));
    }
    pruned_text(value)
}
