//! The cost of one plugin call, without HTTP or TLS: a fresh instance from
//! the pre-instantiated template, the guest's work on the request, and the
//! host's check of the answer (`judge::judge`), one call at a time.
//!
//! ```sh
//! cargo bench -p wicket --bench plugin_call -- NAME WASM MANIFEST REVIEW.json [CALLS [ROUNDS]]
//! ```
//!
//! With `WICKET_CACHE_DIR` set, the component comes from that compile cache
//! (`wicket serve --cache-dir`), as a large interpreted one should.
//!
//! After 500 warm-up calls, runs ROUNDS rounds of CALLS calls (default 5 ×
//! 2000) and prints the lowest and highest round median and the lowest round
//! 99th percentile: on a shared 2-core VM single rounds swing by ±40%, and
//! the best round is the least disturbed one. `scripts/bench-plugins` runs it
//! on the bundled plugins and on a do-nothing baseline to isolate the guest's
//! share.

mod args;
mod rounds;

use std::path::{Path, PathBuf};

use wicket::document::Documents;
use wicket::judge::judge;
use wicket::plugin::{Runtime, RuntimeConfig};
use wicket::registry::load_plugin;
use wicket::review;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = args::args();
    let [name, wasm, manifest, review_path, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: plugin_call NAME WASM MANIFEST REVIEW.json [CALLS [ROUNDS]]");
    };
    let (calls, rounds) = rounds::counts(rest)?;
    let config = RuntimeConfig {
        cache_dir: std::env::var_os("WICKET_CACHE_DIR").map(PathBuf::from),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(&config).map_err(anyhow::Error::new)?;
    let plugin = load_plugin(&runtime, name, Path::new(wasm), Path::new(manifest)).await?;
    let (body, review_name) = rounds::review_body(review_path)?;
    let review = review::decode(&body)?;

    // The documents are built per review, as `serve` builds them.
    let judge = async || {
        let documents = Documents::of(&review.request);
        Ok(judge(&plugin, &review.request, &documents, plugin.wall_bound()).await?)
    };
    rounds::run(name, &review_name, calls, rounds, judge).await
}
