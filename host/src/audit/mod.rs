//! `wicket audit` (in progress, issue 24): judge objects that are not in an
//! admission request — manifests before they reach a cluster, and objects
//! already in it — through the plugins' own `[[webhook]]` rules, as the API
//! server would pick them for a CREATE.

pub mod matching;
pub mod resources;
