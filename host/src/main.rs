//! The `wicket` command: parse the command line, set up logging, run.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use wicket::ServeConfig;
use wicket::audit::command::Ended;
use wicket::body::BodyLimits;
use wicket::check::{CheckConfig, ComponentFiles};
use wicket::cluster::ClusterConfig;
use wicket::cluster::allow::AllowList;
use wicket::cluster::live::LiveConfig;
use wicket::connections::ConnectionLimits;
use wicket::manifests::ManifestsConfig;
use wicket::plugin::RuntimeConfig;
use wicket::precompile::PrecompileConfig;
use wicket::suite::{Format, TestConfig};
use wicket::tls::TlsSource;
use wicket::webhook::{Endpoint, Registration};

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
    Serve(Box<ServeArgs>),
    /// Load one plugin as `serve` would (and optionally judge one request).
    Check(CheckArgs),
    /// Run a plugin against folders of test cases (reviews and the answers expected).
    Test(TestArgs),
    /// Print the webhook configurations (YAML) that register a plugin folder.
    Manifests(ManifestsArgs),
    /// Compile a plugin folder into a compile cache ahead of time (an image
    /// build step), so that a start from that cache compiles nothing.
    Compile(CompileArgs),
    /// Judge objects from files as the API server would on their CREATE
    /// (in progress).
    Audit(AuditArgs),
}

#[derive(clap::Args)]
struct AuditArgs {
    /// Folder of NAME.wasm plugins with optional NAME.toml manifests.
    #[arg(long, env = "WICKET_PLUGINS")]
    plugins: PathBuf,
    /// Files and folders of objects (YAML or JSON), `-` for standard input.
    #[arg(required_unless_present = "in_cluster")]
    paths: Vec<PathBuf>,
    /// The resource of a kind the built-in table does not know:
    /// Kind[.group]=plural, with ':cluster' for a cluster-scoped kind.
    #[arg(long = "resource")]
    resources: Vec<String>,
    /// The user the reviews name.
    #[arg(long, default_value = "wicket:audit")]
    user: String,
    /// The user's groups.
    #[arg(long = "group", default_values_t = ["system:authenticated".to_owned()])]
    groups: Vec<String>,
    /// Objects besides the audited ones, served as the cluster.
    #[command(flatten)]
    cluster: ClusterArgs,
    /// How to print the results.
    #[arg(long, value_enum, default_value = "table")]
    format: AuditFormat,
    /// Exit 1 on a warning or a monitored refusal too.
    #[arg(long)]
    strict: bool,
    /// A plugin or pipeline that judges every object, whatever its
    /// [[webhook]] entries (repeatable).
    #[arg(long = "plugin")]
    forced: Vec<String>,
    /// Write each object as the mutating plugins left it to this folder.
    #[arg(long)]
    write_mutated: Option<PathBuf>,
    /// Let plugins make the outbound calls their manifests grant (denied by
    /// default: their failure policy decides, reported as an error).
    #[arg(long)]
    allow_outbound: bool,
    /// Labels of a namespace the input does not hold, as
    /// NAMESPACE=KEY=VALUE[,KEY=VALUE...] (repeatable).
    #[arg(long = "namespace-labels", value_parser = parse_namespace_labels)]
    namespace_labels: Vec<(String, BTreeMap<String, String>)>,
    /// Results kept in each OpenReports report; the rest are counted in its
    /// summary, refusals kept before passes (0: no limit).
    #[arg(long, default_value_t = 1000)]
    max_results: usize,
    /// Audit the objects in the cluster the kubeconfig (or the pod's service
    /// account) names, and write OpenReports there, instead of files.
    #[arg(long = "cluster", conflicts_with_all = ["paths", "format", "write_mutated"])]
    in_cluster: bool,
    /// With --cluster: objects per list request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    page_size: u32,
    /// With --cluster: list requests a second, at most.
    #[arg(long, default_value_t = 20.0)]
    qps: f64,
}

/// `NAMESPACE=KEY=VALUE[,KEY=VALUE...]`.
fn parse_namespace_labels(text: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let usage = || format!("{text:?} is not NAMESPACE=KEY=VALUE[,KEY=VALUE...]");
    let (namespace, labels) = text.split_once('=').ok_or_else(usage)?;
    let labels = labels
        .split(',')
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(usage)?;
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect::<Result<_, String>>()?;
    Ok((namespace.to_owned(), labels))
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AuditFormat {
    Table,
    Json,
    Junit,
    Openreports,
}

#[derive(clap::Args)]
struct CompileArgs {
    /// Folder of NAME.wasm plugins with optional NAME.toml manifests.
    #[arg(long, env = "WICKET_PLUGINS")]
    plugins: PathBuf,
    /// The compile cache to fill: give it to `serve --cache-dir`.
    #[arg(long, env = "WICKET_CACHE_DIR")]
    cache_dir: PathBuf,
    /// Components compiled at once.
    #[arg(long, default_value_t = RuntimeConfig::default().max_compiles,
        value_parser = clap::value_parser!(u16).range(1..))]
    max_compiles: u16,
}

#[derive(clap::Args)]
struct ManifestsArgs {
    /// Folder of NAME.wasm plugins with optional NAME.toml manifests.
    #[arg(long, env = "WICKET_PLUGINS")]
    plugins: PathBuf,
    #[command(flatten)]
    endpoint: EndpointArgs,
    /// The CA bundle (PEM) the API server should trust.
    #[arg(long, conflicts_with = "tls_dir")]
    ca_file: Option<PathBuf>,
    /// A --self-signed folder: its ca.pem is the CA bundle.
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    /// Wicket's service account in --namespace, granted reads of the kinds
    /// the plugins declare (a ClusterRole and its binding).
    #[arg(long, default_value = "wicket")]
    service_account: String,
}

/// Where the API server reaches Wicket, for `manifests` and `serve --register`.
#[derive(clap::Args)]
struct EndpointArgs {
    /// The Service in front of Wicket, which the API server calls (in a cluster).
    #[arg(long, conflicts_with = "url", requires = "namespace")]
    service: Option<String>,
    /// Wicket's namespace: the Service's, and never sent for review.
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
    /// The Service's port.
    #[arg(long, alias = "port", default_value_t = 443)]
    service_port: u16,
    /// Wicket's URL for an API server outside the cluster (https://HOST:PORT).
    #[arg(long)]
    url: Option<String>,
    /// The name of both webhook configurations.
    #[arg(long, default_value = "wicket")]
    configuration_name: String,
    /// A namespace never sent for review (repeatable); Wicket's own is always added.
    #[arg(long = "exclude-namespace", default_value = "kube-system")]
    exclude_namespaces: Vec<String>,
}

impl EndpointArgs {
    /// The names the API server may call Wicket by: the Service's, the
    /// URL's host, and `extra`.
    fn certificate_names(&self, extra: Vec<String>) -> Result<Vec<String>, clap::Error> {
        let mut names = Vec::new();
        if let (Some(service), Some(namespace)) = (&self.service, &self.namespace) {
            names.extend([
                service.clone(),
                format!("{service}.{namespace}"),
                format!("{service}.{namespace}.svc"),
                format!("{service}.{namespace}.svc.cluster.local"),
            ]);
        }
        if let Some(host) = self
            .url
            .as_deref()
            .and_then(|url| url.parse::<http::Uri>().ok())
            .and_then(|uri| {
                uri.host()
                    .map(|host| host.trim_matches(['[', ']']).to_owned())
            })
        {
            names.push(host);
        }
        names.extend(extra);
        names.dedup();
        match names.is_empty() {
            true => Err(Cli::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--cert-secret needs the certificate's names: --service, --url or --san",
            )),
            false => Ok(names),
        }
    }

    /// The registration, or a usage error naming what is missing.
    fn registration(self) -> Result<Registration, clap::Error> {
        let usage = |message: &str| {
            Cli::command().error(clap::error::ErrorKind::MissingRequiredArgument, message)
        };
        let endpoint = match (self.service, self.url) {
            (Some(name), None) => Endpoint::Service {
                name,
                namespace: self.namespace.clone().unwrap_or_default(),
                port: self.service_port,
            },
            (None, Some(url)) if url.starts_with("https://") => Endpoint::Url(url),
            (None, Some(_)) => return Err(usage("--url must start with https://")),
            _ => {
                return Err(usage(
                    "say how the API server reaches Wicket: --service NAME --namespace NS, or --url https://HOST:PORT",
                ));
            }
        };
        let mut excluded_namespaces = self.exclude_namespaces;
        excluded_namespaces.extend(self.namespace);
        excluded_namespaces.sort();
        excluded_namespaces.dedup();
        Ok(Registration {
            configuration: self.configuration_name,
            endpoint,
            excluded_namespaces,
        })
    }
}

/// What plugins may read of the cluster, and where from.
#[derive(clap::Args)]
struct ClusterArgs {
    /// A folder of objects (YAML or JSON) served to plugins as the cluster
    /// (`serve` reads it again when it changes).
    #[arg(long, env = "WICKET_CLUSTER_OBJECTS")]
    cluster_objects: Option<PathBuf>,
    /// Kinds plugins may read, as Kind or Kind.group (Namespace,
    /// Ingress.networking.k8s.io), or '*' for all [default: all but Secret].
    #[arg(long, value_delimiter = ',')]
    cluster_allow: Vec<String>,
}

impl ClusterArgs {
    fn into_config(self) -> ClusterConfig {
        ClusterConfig {
            objects: self.cluster_objects,
            allow: AllowList::from_args(&self.cluster_allow),
        }
    }
}

#[derive(clap::Args)]
struct TestArgs {
    /// Case folders (with a suite.yaml naming the plugin, unless --plugin is given) or case files.
    #[arg(required = true)]
    cases: Vec<PathBuf>,
    /// The plugin's component, instead of each folder's suite.yaml.
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Its manifest (with --plugin) [default: NAME.toml beside the component].
    #[arg(long, requires = "plugin")]
    manifest: Option<PathBuf>,
    /// The plugin's name (with --plugin) [default: the file name, '_' read as '-'].
    #[arg(long, requires = "plugin")]
    name: Option<String>,
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Objects under every case's own (cases and suite.yaml add theirs with `cluster:`).
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Folder for compiled plugins, shared with `serve --cache-dir`: a
    /// Python or TypeScript component then compiles once, not at every run.
    #[arg(long, env = "WICKET_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Text,
    Json,
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
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Folder for compiled plugins, shared with `serve --cache-dir`.
    #[arg(long, env = "WICKET_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Folder of NAME.wasm plugins with optional NAME.toml manifests.
    #[arg(long, env = "WICKET_PLUGINS")]
    plugins: PathBuf,
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, default_value_t = wicket::config::DEFAULT_LISTEN, env = "WICKET_LISTEN")]
    listen: SocketAddr,
    /// Plain-HTTP listener for /plugins and probes (port 0 picks a free one).
    #[arg(long, default_value_t = wicket::config::DEFAULT_OPS_LISTEN, env = "WICKET_OPS_LISTEN")]
    ops_listen: SocketAddr,
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
    #[arg(long, required_unless_present_any = ["tls_cert", "cert_secret"], conflicts_with = "cert_secret")]
    self_signed: bool,
    /// Serve from Wicket's own CA, kept in this Secret in --namespace and
    /// shared by all replicas; the certificate is valid for the --service's
    /// names, the --url's host and each --san.
    #[arg(long, conflicts_with = "tls_cert", requires = "namespace")]
    cert_secret: Option<String>,
    /// Accept only clients presenting a certificate signed by a CA in this
    /// file (PEM): the API server's admission client certificate.
    #[arg(long, env = "WICKET_CLIENT_CA")]
    client_ca: Option<PathBuf>,
    /// Extra DNS name or IP address for Wicket's own certificate (repeatable).
    #[arg(long = "san", conflicts_with = "tls_cert")]
    sans: Vec<String>,
    /// Where --self-signed keeps its CA and certificate (ca.pem: the CAs to trust).
    #[arg(long, default_value = wicket::config::DEFAULT_TLS_DIR)]
    tls_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = wicket::body::DEFAULT_MAX_BYTES)]
    max_body_bytes: usize,
    /// Request bodies held at once (read and under review), in MiB; past
    /// it, reviews are answered 503.
    #[arg(long, default_value_t = wicket::body::DEFAULT_BUDGET_BYTES >> 20)]
    body_budget_mib: usize,
    /// Seconds a client may take to send a request body; a slower one is
    /// answered 408 and gives its room in the budget back.
    #[arg(long, default_value_t = wicket::body::DEFAULT_READ_TIMEOUT.as_secs())]
    body_timeout: u64,
    /// Connections open at once; more are closed as soon as accepted.
    #[arg(long, default_value_t = ConnectionLimits::default().max_connections)]
    max_connections: usize,
    /// Seconds a connection may take from its TLS handshake to its first
    /// request (and for the handshake itself).
    #[arg(long, default_value_t = ConnectionLimits::default().first_request_timeout.as_secs())]
    first_request_timeout: u64,
    /// Seconds without traffic after which a connection is closed.
    #[arg(long, default_value_t = ConnectionLimits::default().idle_timeout.as_secs())]
    idle_timeout: u64,
    /// Plugin instances that may run at once, all plugins together; a review
    /// that gets no slot in time is answered 503.
    #[arg(long, default_value_t = RuntimeConfig::default().max_instances)]
    max_instances: u32,
    /// Linear memory all plugin instances together may hold, in MiB.
    #[arg(long, default_value_t = RuntimeConfig::default().memory_budget_mib)]
    plugin_memory_mib: u64,
    /// Folder for compiled plugins, reused across restarts (writable only by
    /// wicket: its entries are loaded as native code).
    #[arg(long, env = "WICKET_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Plugins compiled at once (others wait, in `/plugins`): each compile
    /// holds tens of MiB (hundreds for a large component) until it ends.
    #[arg(long, default_value_t = RuntimeConfig::default().max_compiles,
        value_parser = clap::value_parser!(u16).range(1..))]
    max_compiles: u16,
    /// Keep the webhook configurations in the API server equal to what is
    /// served (server-side apply; credentials from KUBECONFIG or the pod).
    #[arg(long)]
    register: bool,
    #[command(flatten)]
    endpoint: EndpointArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Memory all watch caches of the cluster together may hold, in MiB;
    /// past it, the newest kind's cache is refused (its plugins' reads
    /// answer unavailable).
    #[arg(long, default_value_t = wicket::config::DEFAULT_CLUSTER_MEMORY_MIB)]
    cluster_memory_mib: usize,
    /// Seconds a plugin's load waits for the first list of the kinds it
    /// reads (start-up readiness waits with it) before it serves anyway.
    #[arg(long, default_value_t = wicket::config::DEFAULT_CLUSTER_SYNC_TIMEOUT.as_secs())]
    cluster_sync_timeout: u64,
}

impl ServeArgs {
    fn into_config(self) -> Result<ServeConfig, clap::Error> {
        let tls = match (self.tls_cert, self.tls_key, self.cert_secret) {
            (Some(cert), Some(key), _) => TlsSource::Files {
                cert,
                key,
                ca: self.ca_file,
            },
            (_, _, Some(name)) => TlsSource::Secret {
                name,
                namespace: self.endpoint.namespace.clone().unwrap_or_default(),
                names: self.endpoint.certificate_names(self.sans)?,
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
        let register = match self.register {
            true => Some(self.endpoint.registration()?),
            false => None,
        };
        let cluster = self.cluster.into_config();
        Ok(ServeConfig {
            listen: self.listen,
            ops_listen: self.ops_listen,
            tls,
            client_ca: self.client_ca,
            bodies: BodyLimits {
                max_bytes: self.max_body_bytes,
                budget_bytes: self.body_budget_mib << 20,
                read_timeout: Duration::from_secs(self.body_timeout),
            },
            connections: ConnectionLimits {
                max_connections: self.max_connections,
                handshake_timeout: Duration::from_secs(self.first_request_timeout),
                first_request_timeout: Duration::from_secs(self.first_request_timeout),
                idle_timeout: Duration::from_secs(self.idle_timeout),
                ..ConnectionLimits::default()
            },
            runtime: RuntimeConfig {
                max_instances: self.max_instances,
                cache_dir: self.cache_dir,
                memory_budget_mib: self.plugin_memory_mib,
                max_compiles: self.max_compiles,
                cluster_allow: cluster.allow,
                outbound_denied: false,
            },
            cluster_objects: cluster.objects,
            cluster_live: LiveConfig {
                memory_budget: self.cluster_memory_mib << 20,
                sync_timeout: Duration::from_secs(self.cluster_sync_timeout),
            },
            register,
            ..ServeConfig::new(self.plugins)
        })
    }
}

impl ManifestsArgs {
    fn into_config(self) -> Result<ManifestsConfig, clap::Error> {
        let reader = self
            .endpoint
            .namespace
            .clone()
            .map(|namespace| (namespace, self.service_account));
        Ok(ManifestsConfig {
            reader,
            ca_file: self
                .ca_file
                .or_else(|| self.tls_dir.map(|dir| dir.join(wicket::tls::TRUST_FILE))),
            registration: self.endpoint.registration()?,
            plugins_dir: self.plugins,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `manifests` and `test` print for a reader: only warnings and errors
    // on stderr (RUST_LOG=info shows what plugins write).
    let default_level = match cli.command {
        Command::Manifests(_) | Command::Test(_) | Command::Audit(_) => "warn",
        _ => "info",
    };
    init_tracing(cli.log_format, default_level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("wicket: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => {
            let config = args.into_config().unwrap_or_else(|error| error.exit());
            runtime
                .block_on(wicket::serve(config))
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Manifests(args) => {
            let config = args.into_config().unwrap_or_else(|error| error.exit());
            runtime
                .block_on(wicket::manifests::manifests(&config))
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Compile(args) => runtime
            .block_on(wicket::precompile::precompile(&PrecompileConfig {
                plugins_dir: args.plugins,
                cache_dir: args.cache_dir,
                max_compiles: args.max_compiles,
            }))
            .map(|()| ExitCode::SUCCESS),
        Command::Check(args) => runtime
            .block_on(wicket::check::check(&CheckConfig {
                plugin: ComponentFiles {
                    wasm: args.wasm,
                    manifest: args.manifest,
                    name: args.name,
                },
                review: args.review,
                cluster: args.cluster.into_config(),
                cache_dir: args.cache_dir,
            }))
            .map(|()| ExitCode::SUCCESS),
        Command::Audit(args) => {
            let config = wicket::audit::command::AuditConfig {
                plugins_dir: args.plugins,
                paths: args.paths,
                resources: args.resources,
                requester: wicket::audit::request::Requester {
                    user: args.user,
                    groups: args.groups,
                },
                cluster: args.cluster.into_config(),
                format: match args.format {
                    AuditFormat::Table => wicket::audit::command::Format::Table,
                    AuditFormat::Json => wicket::audit::command::Format::Json,
                    AuditFormat::Junit => wicket::audit::command::Format::Junit,
                    AuditFormat::Openreports => wicket::audit::command::Format::OpenReports,
                },
                strict: args.strict,
                forced: args.forced,
                write_mutated: args.write_mutated,
                allow_outbound: args.allow_outbound,
                namespace_labels: args.namespace_labels,
                max_results: (args.max_results > 0).then_some(args.max_results),
                in_cluster: args.in_cluster.then_some(wicket::audit::command::Reading {
                    page_size: args.page_size,
                    qps: args.qps,
                }),
            };
            let audit = async {
                match config.in_cluster {
                    Some(reading) => wicket::audit::in_cluster::audit(&config, reading).await,
                    None => wicket::audit::command::audit(&config).await,
                }
            };
            match runtime.block_on(audit) {
                Ok(Ended::Clean) => Ok(ExitCode::SUCCESS),
                Ok(Ended::Refused) => Ok(ExitCode::from(1)),
                Ok(Ended::Unread) => Ok(ExitCode::from(2)),
                Err(err) => {
                    eprintln!("wicket: {err:#}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Test(args) => {
            let config = TestConfig {
                paths: args.cases,
                plugin: args.plugin.map(|wasm| ComponentFiles {
                    wasm,
                    manifest: args.manifest,
                    name: args.name,
                }),
                format: match args.format {
                    ReportFormat::Text => Format::Text,
                    ReportFormat::Json => Format::Json,
                },
                cluster: args.cluster.into_config(),
                cache_dir: args.cache_dir,
            };
            match runtime.block_on(wicket::suite::test(&config)) {
                Ok(true) => Ok(ExitCode::SUCCESS),
                Ok(false) => Ok(ExitCode::from(1)),
                Err(err) => {
                    eprintln!("wicket: {err:#}");
                    Ok(ExitCode::from(2))
                }
            }
        }
    };
    // Blocking work still running (a compile abandoned at shutdown) is left
    // behind, not waited for: the process exits within its grace.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("wicket: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// How long the async runtime may wait for its blocking threads at exit.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);

/// Logs to stderr, filtered by `RUST_LOG` (default `default_level`).
fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
