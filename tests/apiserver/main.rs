//! `wicket-fake-apiserver`: the tests' stand-in API server as a process, fed
//! with the objects of a JSON `List`, for benchmarks of the watch caches
//! (`scripts/bench-cluster`). Writes a kubeconfig pointing at itself, prints
//! `serving N objects on URL`, and serves lists and watches until killed.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use serde_json::Value;
use wicket_tests::apiserver::ApiServer;

#[derive(Parser)]
struct Args {
    /// A JSON List of objects of the kinds the stand-in serves.
    #[arg(long)]
    objects: PathBuf,
    /// The folder to write `kubeconfig` in.
    #[arg(long)]
    kubeconfig_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.objects)
        .with_context(|| format!("reading {}", args.objects.display()))?;
    let list: Value = serde_json::from_str(&text).context("the objects are not JSON")?;
    drop(text);
    let Some(Value::Array(items)) = list.get("items").cloned() else {
        anyhow::bail!("{} is not a List", args.objects.display());
    };
    let api = ApiServer::start().await;
    let count = items.len();
    api.add(items);
    api.kubeconfig(&args.kubeconfig_dir);
    println!("serving {count} objects on {}", api.url);
    std::future::pending::<()>().await;
    Ok(())
}
