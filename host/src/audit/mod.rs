//! `wicket audit`: judging objects that are not in an admission request —
//! manifests before they reach a cluster (`command`), and objects already
//! in it (`in_cluster`) — through the plugins' own `[[webhook]]` rules, as
//! the API server would pick them for a CREATE, on the judging path
//! `serve` uses (`reviewer.rs`).
//!
//! `matching` decides whether entries select an object, `resources` names
//! a kind's resource, `request` makes the dry-run review, `run` judges one
//! object (mutating, then validating), `listing` and `publish` read the
//! cluster and write its reports, `report`, `openreports` and `progress`
//! say what was found.

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
