//! The sidecar injector's logic compiled natively, judged the way
//! `plugin_call` judges its WebAssembly build (see `native`), one call at a
//! time. `plugin_call` on the same request over this figure is what the
//! sandbox costs.
//!
//! ```sh
//! cargo bench -p wicket --bench native_call -- MANIFEST REVIEW.json [CALLS [ROUNDS]]
//! ```
//!
//! Prints the same figures as `plugin_call` (see `rounds`).

mod args;
mod native;
mod rounds;

use wicket::document::Documents;
use wicket::review;

use crate::native::NativeInjector;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = args::args();
    let [manifest_path, review_path, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: native_call MANIFEST REVIEW.json [CALLS [ROUNDS]]");
    };
    let (calls, rounds) = rounds::counts(rest)?;
    let injector = NativeInjector::load(manifest_path)?;
    let (body, review_name) = rounds::review_body(review_path)?;
    let review = review::decode(&body)?;
    rounds::run(
        "injector (native)",
        &review_name,
        calls,
        rounds,
        async || Ok(injector.judge(&review.request, &Documents::of(&review.request))),
    )
    .await
}
