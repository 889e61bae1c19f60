//! The command line. Subcommand and flag names are a public contract.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// An MCP server for AWS HealthImaging, with an embedded emulator over synthetic data.
#[derive(Debug, Parser)]
#[command(name = "healthimaging-mcp", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the MCP server on stdio (default backend: the embedded emulator).
    Serve(ServeArgs),
    /// Run the HealthImaging emulator alone over HTTP, for boto3, the AWS CLI and other tools.
    Emulator(EmulatorArgs),
    /// Synthetic DICOM fixtures.
    #[command(subcommand)]
    Fixtures(FixturesCommand),
    /// Clinical workflow scenarios, run and checked through MCP.
    #[command(subcommand)]
    Scenario(ScenarioCommand),
    /// Check that a server in this container answers (the image's HEALTHCHECK): exits 0
    /// when any URL answers HTTP below 500, 1 otherwise.
    Health(HealthArgs),
}

/// Flags of `health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The http:// URLs to try (default: the emulator's health endpoint on 127.0.0.1:4566
    /// and the MCP endpoint on 127.0.0.1:8000).
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 3)]
    pub timeout_secs: u64,
}

/// `scenario` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScenarioCommand {
    /// Run scenarios through the MCP protocol, printing a transcript; exits non-zero when an
    /// expectation fails.
    Run(ScenarioRunArgs),
    /// List the scenarios with their stories.
    List(ScenarioListArgs),
}

/// Flags of `scenario run`.
#[derive(Debug, Args)]
pub struct ScenarioRunArgs {
    /// Scenarios by name (the file name without .toml) or path.
    #[arg(
        value_name = "NAME|PATH",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub scenarios: Vec<String>,
    /// Run every scenario in the folder.
    #[arg(long)]
    pub all: bool,
    /// The scenario folder.
    #[arg(long, value_name = "DIR", default_value = "scenarios")]
    pub dir: PathBuf,
    /// Run against this server on a standalone emulator (or compatible endpoint) holding the
    /// fixture set in a datastore named after it, instead of a fresh embedded emulator.
    #[arg(long, value_name = "URL", conflicts_with = "server_command")]
    pub endpoint_url: Option<String>,
    /// Run against any MCP server on stdio started with this command line (split on spaces).
    #[arg(long, value_name = "COMMAND")]
    pub server_command: Option<String>,
    /// Write a self-contained HTML transcript per scenario and an index page here.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Let scenarios that write or delete run on a backend not known to hold synthetic data only.
    #[arg(long)]
    pub allow_writes_on_real_data: bool,
}

/// Flags of `scenario list`.
#[derive(Debug, Args)]
pub struct ScenarioListArgs {
    /// The scenario folder.
    #[arg(long, value_name = "DIR", default_value = "scenarios")]
    pub dir: PathBuf,
}

/// `fixtures` subcommands.
#[derive(Debug, Subcommand)]
pub enum FixturesCommand {
    /// Write a synthetic DICOM fixture set (Part 10 files and manifest.json) into a folder.
    Generate(GenerateArgs),
}

/// The fixture sets `--set` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SetArg {
    /// A few patients, small images, every edge case.
    Ci,
    /// About a dozen patients and twenty studies across modalities.
    Demo,
    /// `--patients N` patients with small images, for load work.
    Scale,
}

/// Flags of `fixtures generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Which set.
    #[arg(long, value_enum)]
    pub set: SetArg,
    /// The folder to write into (created if missing; DICOM files go under dicom/).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The seed of every name, date, UID and pixel.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Patients in the scale set.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub patients: Option<u32>,
}

/// The fixture sets an emulator can be seeded with (`--fixtures`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FixturesArg {
    /// The demo set, in a datastore named `demo`.
    Demo,
    /// The ci set, in a datastore named `ci`.
    Ci,
    /// No fixtures: an empty emulator.
    None,
}

impl FixturesArg {
    /// The set, if any.
    pub fn set(self) -> Option<healthimaging_fixtures::FixtureSet> {
        match self {
            FixturesArg::Demo => Some(healthimaging_fixtures::FixtureSet::Demo),
            FixturesArg::Ci => Some(healthimaging_fixtures::FixtureSet::Ci),
            FixturesArg::None => None,
        }
    }
}

/// The backends `--backend` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendArg {
    /// An emulator inside this process, on synthetic data (the default).
    Emulator,
    /// Real AWS HealthImaging, through the standard credential and region chain.
    Aws,
}

/// Flags of `serve`.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Where HealthImaging calls go. Real AWS is used only when asked for.
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// A HealthImaging-compatible endpoint, e.g. a standalone emulator.
    #[arg(long, env = "AWS_ENDPOINT_URL_MEDICAL_IMAGING", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The AWS region (otherwise AWS_REGION, AWS_DEFAULT_REGION or the profile's).
    #[arg(long)]
    pub region: Option<String>,
    /// The AWS profile (otherwise AWS_PROFILE or default).
    #[arg(long)]
    pub profile: Option<String>,
    /// Offer the write tools (create, import, update, copy, tag). Default on the
    /// embedded emulator only.
    #[arg(long)]
    pub allow_write: bool,
    /// Offer the delete tools (every delete and removal, two-phase). Default on the
    /// embedded emulator only.
    #[arg(long)]
    pub allow_delete: bool,
    /// Offer only the read tools, whatever else is configured.
    #[arg(long, conflicts_with_all = ["allow_write", "allow_delete"])]
    pub read_only: bool,
    /// A TOML file with any of these settings; flags given here win.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Append audit records (one JSON line per tool call) to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Seed of the embedded emulator's identifiers, for reproducible runs.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the embedded emulator's datastores, image sets and frames in this
    /// folder, across restarts (default: in memory, gone at exit).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The fixture set the embedded emulator holds at start, in a datastore
    /// named after it (default: demo). Imported once per data directory.
    #[arg(long, value_enum, value_name = "SET")]
    pub fixtures: Option<FixturesArg>,
    /// How long a tool call that needs the fixture set waits for it while it still
    /// loads (first start), before answering that it is loading and how long it
    /// will take (default 30, at most 600; 0 answers at once).
    #[arg(
        long,
        env = "HEALTHIMAGING_MCP_FIXTURES_WAIT_SECS",
        value_name = "SECONDS"
    )]
    pub fixtures_wait_secs: Option<u64>,
    /// How long a confirmation token of a destructive tool stays valid, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub confirmation_ttl_secs: Option<u64>,
    /// The most image sets one call of a bulk tool may change (default 100, at most
    /// 1000); each call's own cap defaults to 25 and may not exceed it.
    #[arg(long, value_name = "N")]
    pub bulk_ceiling: Option<usize>,
    /// Also serve the embedded emulator over HTTP on this address (for boto3 or
    /// the AWS CLI beside the assistant). Requests must carry the key printed at
    /// start as their access key ID. Without it, serve opens no port at all.
    #[arg(long, value_name = "ADDR")]
    pub expose_emulator: Option<SocketAddr>,
    /// Send DICOMweb requests here instead of the backend's own DICOMweb endpoint
    /// (AWS: dicom-medical-imaging.REGION.amazonaws.com; otherwise the endpoint URL).
    #[arg(long, env = "HEALTHIMAGING_DICOMWEB_URL", value_name = "URL")]
    pub dicomweb_url: Option<String>,
    /// Where export jobs are kept across restarts (default:
    /// $XDG_STATE_HOME/healthimaging-mcp, else ~/.local/state/healthimaging-mcp).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A destination export jobs may write to (repeatable): file://DIR (and below),
    /// s3://bucket/prefix (and below), a STOW-RS URL, or dicom://AET@host:port.
    /// The state directory's exports folder, and the embedded emulator's S3, are always allowed.
    #[arg(long = "export-destination", value_name = "URI")]
    pub export_destinations: Vec<String>,
    /// The AE title this server calls DICOM nodes with (default HEALTHIMAGING).
    #[arg(long, value_name = "AET")]
    pub ae_title: Option<String>,
    /// How MCP is spoken: on stdin and stdout (default), or over streamable HTTP at /mcp.
    #[arg(long, value_enum, default_value = "stdio")]
    pub transport: TransportArg,
    /// With --transport http: the address to listen on (default 127.0.0.1:8000).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// With --transport http: another Host requests may name (repeatable).
    #[arg(long, value_name = "HOST")]
    pub allowed_host: Vec<String>,
    /// With --transport http: a browser origin allowed to call (repeatable; none by default).
    #[arg(long, value_name = "ORIGIN")]
    pub allowed_origin: Vec<String>,
    /// With --transport http: a file holding the bearer token every request must carry
    /// (otherwise HEALTHIMAGING_MCP_TOKEN); required off loopback.
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// With --transport http: listen off loopback without a token.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// With --transport http: accept access tokens (JWTs) of this OAuth issuer, and serve the
    /// RFC 9728 protected-resource metadata naming it. Needs --oauth-jwks and --oauth-audience.
    #[arg(long, value_name = "URL")]
    pub oauth_issuer: Option<String>,
    /// The issuer's JSON Web Key Set (RS256 or ES256 keys), read from this file.
    #[arg(long, value_name = "FILE")]
    pub oauth_jwks: Option<PathBuf>,
    /// The audience tokens must name: this server's resource URL, e.g. https://mcp.example/mcp.
    #[arg(long, value_name = "URL")]
    pub oauth_audience: Option<String>,
    /// A file holding the key confirmation tokens are sealed with (at least 32 characters;
    /// otherwise HEALTHIMAGING_MCP_CONFIRMATION_KEY, else one made at start). Replicas behind a
    /// load balancer share it.
    #[arg(long, value_name = "FILE")]
    pub confirmation_key_file: Option<PathBuf>,
}

/// The MCP transports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// JSON-RPC lines on stdin and stdout.
    #[default]
    Stdio,
    /// Streamable HTTP at /mcp.
    Http,
}

/// Flags of `emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// The address to listen on (a host name resolves, e.g. localhost:4566).
    /// An address other machines can reach needs --access-key-file.
    #[arg(
        long,
        env = "HEALTHIMAGING_EMULATOR_LISTEN",
        default_value = "127.0.0.1:4566",
        value_name = "ADDR"
    )]
    pub listen: String,
    /// Seed of every identifier the emulator mints, for reproducible runs.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long asynchronous transitions take (CREATING → ACTIVE, DELETING → DELETED).
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub transition_delay_ms: u64,
    /// The region written into ARNs.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// The 12-digit account written into ARNs.
    #[arg(long, default_value = "123456789012", value_parser = account_id)]
    pub account_id: String,
    /// How many datastores may exist at once.
    #[arg(long, default_value_t = 10)]
    pub datastore_quota: usize,
    /// Keep datastores, image sets, frames and jobs in this folder, across
    /// restarts (default: in memory, gone at exit).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The folder standing for S3: s3://bucket/key is DIR/bucket/key
    /// (default: DATA_DIR/s3, or a temporary folder without --data-dir).
    #[arg(long, value_name = "DIR")]
    pub s3_root: Option<PathBuf>,
    /// The largest file an import reads from the S3 folder; larger ones fail
    /// one by one.
    #[arg(long, default_value_t = healthimaging_emulator::DEFAULT_MAX_OBJECT_BYTES, value_name = "BYTES")]
    pub max_object_bytes: u64,
    /// Seed the emulator with a fixture set at start, in a datastore named
    /// after it, imported through StartDICOMImportJob.
    #[arg(long, value_enum, default_value = "none", value_name = "SET")]
    pub fixtures: FixturesArg,
    /// A Host name (besides loopback names) requests may address, e.g. a
    /// compose service name. Repeatable.
    #[arg(long, value_name = "HOST")]
    pub allowed_host: Vec<String>,
    /// A browser origin allowed to call the emulator (requests from any other
    /// origin are refused). Repeatable.
    #[arg(long, value_name = "ORIGIN")]
    pub allowed_origin: Vec<String>,
    /// A file holding the access key every request must carry, as the access
    /// key ID it is signed with or as `Authorization: Bearer <key>`.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure_no_auth")]
    pub access_key_file: Option<PathBuf>,
    /// Serve off loopback without an access key.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Require every API request (SDK operations and DICOMweb) to carry a
    /// valid SigV4 signature made with AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY (read from this process's environment), for
    /// service medical-imaging in --region.
    #[arg(long)]
    pub verify_sigv4: bool,
    /// A JSON Web Key Set (RSA or P-256 keys): DICOMweb requests to
    /// datastores created with lambdaAuthorizerArn may then carry
    /// `Authorization: Bearer <JWT>` signed by one of its keys (RS256 or
    /// ES256), with exp, nbf and iat checked as the service does.
    #[arg(long, value_name = "FILE")]
    pub oidc_jwks: Option<PathBuf>,
    /// Serve the control API (/_emulator/) on this address instead of beside
    /// the HealthImaging routes.
    #[arg(long, value_name = "ADDR", conflicts_with = "no_control")]
    pub control_listen: Option<String>,
    /// Serve no control API at all.
    #[arg(long)]
    pub no_control: bool,
    /// Let POST /_emulator/reset and /restore replace the --data-dir store
    /// (refused otherwise).
    #[arg(long)]
    pub allow_reset: bool,
    /// Where POST /_emulator/snapshot writes snapshots (default DATA_DIR/snapshots).
    #[arg(long, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// Start from this snapshot folder (one POST /_emulator/snapshot wrote):
    /// its datastores, image sets and jobs replace what the store held.
    #[arg(long, value_name = "DIR")]
    pub restore_snapshot: Option<PathBuf>,
}

fn account_id(value: &str) -> Result<String, String> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err("an account ID is exactly 12 digits".to_owned())
    }
}
