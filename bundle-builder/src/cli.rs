//! The command-line interface.

use std::path::PathBuf;

use bundle_builder::decide::Query;
pub use bundle_builder::decide::RoleArg;
use clap::{Parser, Subcommand, ValueEnum};

/// Warden's bundle builder: compile egress policy for the Warden proxy-wasm filter, and ask it
/// why a request is allowed or denied.
#[derive(Debug, Parser)]
#[command(name = "bundle-builder", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests; exit 0 when they are valid, 1 with diagnostics otherwise.
    Validate(ValidateArgs),
    /// Build the bundle the filter loads from manifests.
    Build(BuildArgs),
    /// Rebuild on every manifest change and deliver it live through an ECDS file; manifests
    /// with errors leave the running policy untouched.
    Watch(WatchArgs),
    /// Make an ed25519 key pair for signing bundles: PREFIX.key (private) and PREFIX.pub.
    Keygen(KeygenArgs),
    /// Push the filter to an OCI registry as a Wasm image Istio can pull.
    Push(PushArgs),
    /// Remove the exports of callbacks Warden does not implement, so that Envoy never enters
    /// the VM for them (`make build` runs it).
    Trim(TrimArgs),
    /// Embed a bundle in the filter module: push the result, and `render istio --embedded`
    /// refers to the bundle by digest instead of carrying it in every WasmPlugin.
    Embed(EmbedArgs),
    /// Explain the decision for one request, with the same engine the filter runs.
    Explain(ExplainArgs),
    /// Run decision tests (YAML documents of kind DecisionTests) against manifests or a
    /// bundle; exit 1 when a case fails.
    Test(TestArgs),
    /// What a policy change does: services added, removed and changed, and which clients gain
    /// or lose access to what. Exit 1 when access widened, 0 otherwise.
    Diff(DiffArgs),
    /// Print the JSON Schema of the bundle format (or, with --decision-tests, of a decision
    /// test file).
    Schema(SchemaArgs),
    /// Render proxy configuration from a bundle.
    #[command(subcommand)]
    Render(RenderCommand),
}

// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum RenderCommand {
    /// A complete Envoy bootstrap running the Warden filter locally.
    Envoy(EnvoyArgs),
    /// Envoy's native RBAC filter with the bundle's exact hosts as an allow-list (benchmark
    /// baseline; no wildcards, addresses, identities or dry-run).
    Rbac(RbacArgs),
    /// Istio resources: WasmPlugins carrying the bundle, ServiceEntries, the egress gateway's
    /// Gateway/VirtualService/DestinationRules, and optionally NetworkPolicies.
    Istio(IstioArgs),
}

#[derive(Debug, clap::Args)]
pub struct IstioArgs {
    /// The bundle (JSON): the plugins' configuration and the services to declare.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The filter image, as pushed: oci://REGISTRY/REPOSITORY@sha256:<digest> (pinned; the
    /// digest becomes the plugin's sha256) or oci://REGISTRY/REPOSITORY:TAG.
    #[arg(long, value_name = "oci://IMAGE")]
    pub image: String,
    /// Where the sidecar plugins go: Istio's root namespace applies them to every sidecar; the
    /// namespaces of a workspace (repeat the flag) to that workspace's workloads.
    #[arg(long = "namespace", value_name = "NS", default_value = "istio-system")]
    pub namespaces: Vec<String>,
    /// The egress gateway's namespace: renders its plugin and the routes through it.
    #[arg(long, value_name = "NS")]
    pub gateway_namespace: Option<String>,
    /// Labels of the egress gateway's pods (repeatable; default istio=egressgateway).
    #[arg(long, value_name = "KEY=VALUE")]
    pub gateway_selector: Vec<String>,
    /// The egress gateway's service host (default istio-egressgateway.<gateway namespace>.svc.cluster.local).
    #[arg(long, value_name = "HOST")]
    pub gateway_service: Option<String>,
    /// Also render NetworkPolicies: these workload namespaces may only reach DNS and the
    /// cluster (so external traffic must go through the egress gateway); the gateway's
    /// namespace also the declared external addresses. Repeatable.
    #[arg(long = "network-policy", value_name = "NS")]
    pub network_policy: Vec<String>,
    /// Also count every verdict for its service (`WARDEN_SERVICE_METRICS` in the plugins'
    /// `vmConfig.env`): one counter per service and outcome seen.
    #[arg(long)]
    pub service_metrics: bool,
    /// The bundle is embedded in the image (`bundle-builder embed`, then push): the plugins
    /// carry only `{"embeddedBundle": "<digest>"}`.
    #[arg(long)]
    pub embedded: bool,
    /// Require bundles signed with this key's private half (`WARDEN_PUBLIC_KEY` in the
    /// plugins' `vmConfig.env`); the bundle's signature is checked now.
    #[arg(long, value_name = "PUB_FILE")]
    pub public_key: Option<PathBuf>,
    /// Write here instead of standard output.
    #[arg(short = 'f', long = "out-file", value_name = "FILE")]
    pub out_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RbacArgs {
    /// The bundle (JSON) whose exact hosts to allow.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct EnvoyArgs {
    /// The bundle (JSON) the filter enforces.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// Which proxy to render.
    #[arg(long, value_enum, default_value_t = RoleArg::Sidecar)]
    pub role: RoleArg,
    /// The filter module.
    #[arg(long, value_name = "FILE", default_value = "dist/warden.wasm")]
    pub wasm: PathBuf,
    /// The HTTP listener address.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:15001")]
    pub listen: std::net::SocketAddr,
    /// The admin interface address (keep it on loopback).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:15000")]
    pub admin: std::net::SocketAddr,
    /// A TCP listener: clients connect to LISTEN (the address they mean to reach); Envoy
    /// forwards allowed connections to UPSTREAM or, without one, to the endpoint the filter
    /// chooses for an internal hostname. Repeatable.
    #[arg(long = "tcp", value_name = "LISTEN[=UPSTREAM]")]
    pub tcp: Vec<bundle_builder::render::envoy::TcpForward>,
    /// Sidecar under traffic capture: the listeners learn each connection's original
    /// destination (`original-dst`: iptables, as Istio; `proxy-protocol`: a PROXY header,
    /// capture simulated on loopback), the filter decides on it, and a TCP listener without
    /// an upstream forwards to it.
    #[arg(long, value_name = "MODE")]
    pub capture: Option<bundle_builder::render::envoy::Capture>,
    /// The workload's SPIFFE ID (node metadata), when the bundle does not name it.
    #[arg(long, value_name = "SPIFFE_ID")]
    pub identity: Option<String>,
    /// The proxy's locality (node locality).
    #[arg(long, value_name = "REGION[/ZONE[/SUBZONE]]")]
    pub locality: Option<String>,
    /// Deliver the HTTP filter's configuration through this ECDS discovery file (written now
    /// with the bundle; rewrite it with `build --ecds FILE` to change policy live).
    #[arg(long, value_name = "FILE")]
    pub ecds: Option<PathBuf>,
    /// Require bundles signed with this key's private half (from `bundle-builder keygen`):
    /// the filter refuses unsigned and altered bundles.
    #[arg(long, value_name = "PUB_FILE")]
    pub public_key: Option<PathBuf>,
    /// The proxy's mesh certificate (PEM, with a SPIFFE URI SAN): a sidecar presents it to
    /// the gateway, the gateway to sidecars.
    #[arg(long, value_name = "PEM", requires_all = ["key", "ca"])]
    pub cert: Option<PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The mesh CA (PEM) that issues sidecar and gateway certificates.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub ca: Option<PathBuf>,
    /// Sidecar: send ports with egressGatewayRoutes to the egress gateway at this address,
    /// over mutual TLS.
    #[arg(long, value_name = "IP:PORT", requires_all = ["gateway_identity", "cert"])]
    pub gateway: Option<std::net::SocketAddr>,
    /// The SPIFFE ID the egress gateway's certificate must carry.
    #[arg(long, value_name = "SPIFFE_ID", requires = "gateway")]
    pub gateway_identity: Option<String>,
    /// Sidecar: the gateway's TLS passthrough listener (rendered there with `--tcp LISTEN`);
    /// TLS connections to gateway-routed ports go there by server name.
    #[arg(long, value_name = "IP:PORT", requires = "gateway")]
    pub gateway_tcp: Option<std::net::SocketAddr>,
    /// Also count every verdict for its service (`warden_http_service_allowed` etc., with a
    /// `warden_service="NAMESPACE.NAME"` label): one counter per service and outcome seen.
    #[arg(long)]
    pub service_metrics: bool,
    /// Listen on every virtual address and TCP port of the bundle, each standing for its name
    /// (a proxy without traffic capture; it must own the addresses: on one machine, a
    /// loopback range in EgressSettings spec.virtualAddressRanges, such as 127.77.0.0/16).
    #[arg(long, conflicts_with = "capture")]
    pub virtual_addresses: bool,
    /// A DNS listener (UDP) answering the registry's names with their virtual addresses and
    /// forwarding other names (to --resolver, else the system's resolvers). Point a
    /// workload's resolver at it.
    #[arg(long, value_name = "IP:PORT")]
    pub dns: Option<std::net::SocketAddr>,
    /// A DNS server for the proxy's own lookups (host names it connects to) and for names the
    /// DNS listener forwards; repeatable. Default: the system's (/etc/resolv.conf).
    #[arg(long = "resolver", value_name = "IP:PORT")]
    pub resolvers: Vec<std::net::SocketAddr>,
    /// Write here instead of standard output.
    #[arg(short = 'f', long = "out-file", value_name = "FILE")]
    pub out_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The bundle (JSON) to decide with.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub query: Query,
    /// Exit with status 1 when the request is denied (like `kubectl auth can-i`).
    #[arg(long)]
    pub exit_code: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// The schema of decision test files instead of the bundle's.
    #[arg(long)]
    pub decision_tests: bool,
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Decision test files, or folders (every *.yaml, *.yml, *.json with a DecisionTests
    /// document).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// What to decide with: a bundle file, or manifest files and folders (repeatable).
    /// Default: the folders the test files are in, built as `build` builds them.
    #[arg(long = "policy", value_name = "PATH")]
    pub policy: Vec<PathBuf>,
    /// Build the manifests for this workspace's workloads.
    #[arg(long, value_name = "NAME")]
    pub workspace: Option<String>,
    /// Results as text (failures and a summary) or JSON (every case).
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Downgrade the errors of this code to warnings, knowingly (repeatable):
    /// selects-nothing (a policy that restricts nothing), unknown-kind (a Gloo or Warden
    /// kind Warden does not read).
    #[arg(long = "allow", value_name = "CODE")]
    pub allow: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The policy before the change: a bundle file or a manifest folder.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The policy after the change: a bundle file or a manifest folder.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Build manifests for this workspace's workloads.
    #[arg(long, value_name = "NAME")]
    pub workspace: Option<String>,
    /// Which proxy's decisions to compare.
    #[arg(long, value_enum, default_value_t = RoleArg::Sidecar)]
    pub role: RoleArg,
    /// The change as text lines or JSON.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Downgrade the errors of this code to warnings, knowingly (repeatable):
    /// selects-nothing (a policy that restricts nothing), unknown-kind (a Gloo or Warden
    /// kind Warden does not read).
    #[arg(long = "allow", value_name = "CODE")]
    pub allow: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Manifest files, folders (recursively: *.yaml, *.yml, *.json), or - for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Diagnostics as text lines, or JSON for CI pipelines.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Downgrade the errors of this code to warnings, knowingly (repeatable):
    /// selects-nothing (a policy that restricts nothing), unknown-kind (a Gloo or Warden
    /// kind Warden does not read).
    #[arg(long = "allow", value_name = "CODE")]
    pub allow: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Manifest files, folders (recursively: *.yaml, *.yml, *.json), or - for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Where to write the bundle (JSON).
    #[arg(
        short = 'f',
        long = "out-file",
        value_name = "FILE",
        required_unless_present = "ecds"
    )]
    pub out_file: Option<PathBuf>,
    /// Also (or only) write an ECDS discovery file carrying the bundle, for an Envoy rendered
    /// with `render envoy --ecds FILE`: written atomically, Envoy applies it live.
    #[arg(long, value_name = "FILE")]
    pub ecds: Option<PathBuf>,
    /// The filter module the ECDS file names.
    #[arg(long, value_name = "FILE", default_value = "dist/warden.wasm")]
    pub wasm: PathBuf,
    /// Build for the workloads of this workspace: its services and those it imports.
    #[arg(long, value_name = "NAME")]
    pub workspace: Option<String>,
    /// Keep the virtual addresses of this bundle (the one deployed): a service keeps its
    /// address even when a new service's hash lands on it. Default: the --out-file file, when
    /// it exists.
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,
    /// Sign the bundle with this private key (from `bundle-builder keygen`).
    #[arg(long, value_name = "KEY_FILE")]
    pub sign: Option<PathBuf>,
    /// The public key the filter requires signatures from; written into the ECDS file's VM
    /// configuration (use the same key as `render envoy --public-key`).
    #[arg(long, value_name = "PUB_FILE")]
    pub public_key: Option<PathBuf>,
    /// Envoy's admin interface: after writing the ECDS file, wait until Envoy accepts or
    /// rejects it, and exit 1 unless it serves this bundle.
    #[arg(long, value_name = "IP:PORT", requires = "ecds")]
    pub admin: Option<std::net::SocketAddr>,
    /// Downgrade the errors of this code to warnings, knowingly (repeatable):
    /// selects-nothing (a policy that restricts nothing), unknown-kind (a Gloo or Warden
    /// kind Warden does not read).
    #[arg(long = "allow", value_name = "CODE")]
    pub allow: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Manifest files or folders to watch (recursively: *.yaml, *.yml, *.json).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The ECDS discovery file Envoy watches (see `render envoy --ecds`).
    #[arg(long, value_name = "FILE")]
    pub ecds: PathBuf,
    /// The filter module the ECDS file names.
    #[arg(long, value_name = "FILE", default_value = "dist/warden.wasm")]
    pub wasm: PathBuf,
    /// Build for the workloads of this workspace.
    #[arg(long, value_name = "NAME")]
    pub workspace: Option<String>,
    /// How often to look for changes, in milliseconds. A change is built once the files have
    /// stayed the same for one interval.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub interval_ms: u64,
    /// Sign every bundle with this private key.
    #[arg(long, value_name = "KEY_FILE")]
    pub sign: Option<PathBuf>,
    /// The public key the filter requires signatures from (as `render envoy --public-key`).
    #[arg(long, value_name = "PUB_FILE")]
    pub public_key: Option<PathBuf>,
    /// Envoy's admin interface: say whether Envoy accepted or rejected each bundle (without
    /// it, only that the ECDS file was written).
    #[arg(long, value_name = "IP:PORT")]
    pub admin: Option<std::net::SocketAddr>,
    /// Downgrade the errors of this code to warnings, knowingly (repeatable):
    /// selects-nothing (a policy that restricts nothing), unknown-kind (a Gloo or Warden
    /// kind Warden does not read).
    #[arg(long = "allow", value_name = "CODE")]
    pub allow: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Writes PREFIX.key (private, mode 0600) and PREFIX.pub.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct TrimArgs {
    /// The filter module as cargo builds it.
    #[arg(long, value_name = "FILE")]
    pub wasm: PathBuf,
    /// Where to write the trimmed module.
    #[arg(short = 'f', long = "out-file", value_name = "FILE")]
    pub out_file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// The filter module.
    #[arg(long, value_name = "FILE", default_value = "dist/warden.wasm")]
    pub wasm: PathBuf,
    /// The bundle (JSON, with its digest: as `build` writes it).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// Where to write the module carrying the bundle.
    #[arg(short = 'f', long = "out-file", value_name = "FILE")]
    pub out_file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The filter module.
    #[arg(long, value_name = "FILE", default_value = "dist/warden.wasm")]
    pub wasm: PathBuf,
    /// Where to push: REGISTRY/REPOSITORY:TAG, or oci://REGISTRY/REPOSITORY:TAG (the form
    /// `render istio --image` takes).
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// compat (one tar.gz layer with plugin.wasm; Istio's default) or oci (the Wasm OCI spec).
    #[arg(long, value_enum, default_value_t = bundle_builder::push::Variant::Compat)]
    pub variant: bundle_builder::push::Variant,
    /// Talk HTTP, not HTTPS (a local registry).
    #[arg(long)]
    pub plain_http: bool,
    /// Registry user (else the Docker config file's credentials, else anonymous).
    #[arg(long, requires = "password")]
    pub username: Option<String>,
    #[arg(long, requires = "username")]
    pub password: Option<String>,
}
