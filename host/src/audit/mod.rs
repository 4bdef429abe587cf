//! `wicket audit` (in progress, issue 24): judge objects that are not in an
//! admission request — manifests before they reach a cluster, and objects
//! already in it — through the plugins' own `[[webhook]]` rules, as the API
//! server would pick them for a CREATE.
//!
//! SPIKE (branch `audit`), done: `matching` (rules, scope, namespace and
//! object selectors; match conditions reported, not evaluated),
//! `resources` (kind → resource: built-in table, CRDs in the input,
//! `--resource`), `request` (the dry-run CREATE review, audit identity).
//!
//! Also done: `run` (the [`run::Auditor`]: mutating then validating, by
//! name, patches applied), `command` (`wicket audit --plugins DIR PATHS`:
//! tab-separated rows, exit 0/1/2), and `reviewer.rs` shared with routes.
//! Tried on the bundled folder: 10,000 pods and their Namespace (one JSON
//! List) in 3.3 s, of which ~2.5 s is the cold compile of 8 plugins (no
//! --cache-dir): well over the 2,000 objects/s; peak RSS 108 MiB,
//! compiles included.
//!
//! Next, in order:
//! - (done: the audited objects, with `--cluster-objects`, are the cluster
//!   cluster-aware plugins read; `warn` log level by default);
//! - (done: plugins without `[[webhook]]` entries listed as skipped; the
//!   patch shown as "would change"; `report`: table, json, junit;
//!   `--strict`); `--plugin NAME` judging every object; a row's source
//!   file (read per file, not all at once);
//! - `run`: `Registry::load_once` the folder (one load path with serve and
//!   test; `--cluster-objects` through the runtime's cluster), then per
//!   object: mutating plugins and pipelines that match, by name (document
//!   it), patches applied with json-patch; then validating ones on the
//!   mutated object; `Target::judge` as routes.rs does, through
//!   `review::decode` + `Documents::of`. Outbound denied unless
//!   `--allow-outbound` (a runtime flag that refuses the grant at call
//!   time: failure policy decides, reported `error`).
//! - (done: `input`: files, folders and `-`, one YAML document at a time,
//!   a broken one reported as FILE:LINE and the rest audited, exit 2 when
//!   nothing was refused but something was unread; Namespaces and CRDs in
//!   the input are used, learnt before any object is judged);
//!   (done: `--namespace-labels NS=k=v,...`, `--plugin NAME`,
//!   `--write-mutated DIR` as DIR/NAMESPACE/KIND.NAME.yaml);
//! - (done: outbound denied unless `--allow-outbound`, through
//!   `RuntimeConfig::outbound_denied`: the grant's linking is kept, its
//!   access is not; untested: CREATE does not reach the etcd guard's
//!   calls, a test plugin that calls out on CREATE is needed);
//! - (done: `--format openreports`, `openreports.rs`: a Report named
//!   `wicket` per namespace and a ClusterReport, summary counts,
//!   maxResults, following openreports/reports-api's v1alpha1 types; the
//!   manifest's optional `severity`: critical/high/medium/low/info, to
//!   document in README's manifest table); a progress line on a TTY;
//!   "match conditions not evaluated" said once in the table's footer;
//!   README "Auditing". (done: tests/audit.rs, 2 tests through the real
//!   binary: a folder with a broken document, a List and a Namespace whose
//!   labels a selector reads, JSON/JUnit/table, exit codes; stdin,
//!   --namespace-labels, --write-mutated.)
//! - `--cluster`: per validating target, list its resources with paging
//!   through kube (`Api::list` with `limit`, streamed page by page), judge,
//!   write one openreports.io/v1alpha1 Report per namespace and a
//!   ClusterReport, server-side apply with field manager `wicket-audit`,
//!   delete stale reports; the stand-in API server in tests/harness already
//!   lists and records (add Report kinds, DELETE). Manifest `severity`.
//! - deploy: a CronJob component with its ServiceAccount and least RBAC,
//!   vendored OpenReports CRDs; benchmark 10,000 pods offline (≥ 2,000/s).

pub mod command;
pub mod in_cluster;
pub mod input;
pub mod listing;
pub mod matching;
pub mod openreports;
pub mod progress;
pub mod publish;
pub mod report;
pub mod request;
pub mod resources;
pub mod run;
