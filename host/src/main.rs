//! The `wicket` command: parse the command line, set up logging, run.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use wicket::ServeConfig;
use wicket::check::CheckConfig;
use wicket::plugin::RuntimeConfig;
use wicket::tls::TlsSource;

/// A WebAssembly-plugin admission host for Kubernetes.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "WICKET_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the plugins in a folder over HTTPS.
    Serve(ServeArgs),
    /// Load one plugin as `serve` would (and optionally judge one request).
    Check(CheckArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The plugin's component (NAME.wasm).
    wasm: PathBuf,
    /// Its manifest [default: NAME.toml beside the component].
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The plugin's name [default: the file name, '_' read as '-'].
    #[arg(long)]
    name: Option<String>,
    /// An AdmissionReview request (JSON) to judge; the answer goes to stdout.
    #[arg(long)]
    review: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Folder of NAME.wasm plugins with optional NAME.toml manifests.
    #[arg(long, env = "WICKET_PLUGINS")]
    plugins: PathBuf,
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, default_value_t = wicket::config::DEFAULT_LISTEN, env = "WICKET_LISTEN")]
    listen: SocketAddr,
    /// Serving certificate chain (PEM).
    #[arg(
        long,
        requires = "tls_key",
        conflicts_with = "self_signed",
        env = "WICKET_TLS_CERT"
    )]
    tls_cert: Option<PathBuf>,
    /// Serving certificate's private key (PEM).
    #[arg(long, requires = "tls_cert", env = "WICKET_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// The CA that signed --tls-cert (PEM): the caBundle to register.
    #[arg(long, requires = "tls_cert", env = "WICKET_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Serve from Wicket's own CA, kept in --tls-dir and reused on restart.
    #[arg(long, required_unless_present = "tls_cert")]
    self_signed: bool,
    /// Extra DNS name or IP address for the self-signed certificate (repeatable),
    /// e.g. wicket.wicket-system.svc.
    #[arg(long = "san", requires = "self_signed")]
    sans: Vec<String>,
    /// Where --self-signed keeps its CA and certificate (ca.pem: the CAs to trust).
    #[arg(long, default_value = wicket::config::DEFAULT_TLS_DIR)]
    tls_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = wicket::config::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Plugin instances that may run at once; more requests wait.
    #[arg(long, default_value_t = RuntimeConfig::default().max_instances)]
    max_instances: u32,
    /// Folder for compiled plugins, reused across restarts (writable only by
    /// wicket: its entries are loaded as native code).
    #[arg(long, env = "WICKET_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

impl ServeArgs {
    fn into_config(self) -> ServeConfig {
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => TlsSource::Files {
                cert,
                key,
                ca: self.ca_file,
            },
            _ => TlsSource::SelfSigned {
                dir: self.tls_dir,
                names: wicket::tls::LOCAL_NAMES
                    .map(str::to_owned)
                    .into_iter()
                    .chain(self.sans)
                    .collect(),
            },
        };
        ServeConfig {
            listen: self.listen,
            tls,
            max_body_bytes: self.max_body_bytes,
            runtime: RuntimeConfig {
                max_instances: self.max_instances,
                cache_dir: self.cache_dir,
            },
            ..ServeConfig::new(self.plugins)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("wicket: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(wicket::serve(args.into_config())),
        Command::Check(args) => runtime.block_on(wicket::check::check(&CheckConfig {
            wasm: args.wasm,
            manifest: args.manifest,
            name: args.name,
            review: args.review,
        })),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("wicket: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
