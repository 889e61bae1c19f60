//! The two long-running commands: `serve` and `emulator`.

use std::io::Write;
use std::time::Duration;

use healthimaging_emulator::{Control, Emulator, EmulatorConfig, SigV4Key, Surface};
use rmcp::ServiceExt;

use crate::audit::AuditLog;
use crate::backend::{self, StartupError};
use crate::cli::{
    EmulatorArgs, GenerateArgs, ScenarioListArgs, ScenarioRunArgs, ServeArgs, SetArg,
};
use crate::config::{self, ConfigError, FileConfig};
use crate::server::{HealthImagingServer, ServerOptions};
use healthimaging_fixtures::{FixtureSet, Spec};

/// Why a command stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The settings are wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The backend could not be reached or configured.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The audit log file could not be opened.
    #[error("Could not open the audit log '{path}': {source}")]
    AuditLog {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The MCP session failed.
    #[error("The MCP session failed: {0}")]
    Mcp(String),
    /// The command line is contradictory.
    #[error("{0}")]
    Usage(String),
    /// The fixtures could not be generated.
    #[error(transparent)]
    Fixtures(#[from] healthimaging_fixtures::Error),
    /// Scenarios could not be read.
    #[error(transparent)]
    Scenario(#[from] crate::scenario::LoadError),
    /// Scenarios ran and some failed.
    #[error("{0} of {1} scenario(s) failed")]
    ScenariosFailed(usize, usize),
    /// The report could not be written.
    #[error("Could not write the report into {path}: {source}")]
    Report {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The emulator could not listen.
    #[error("Could not start the emulator on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The key confirmation tokens are sealed with: from `--confirmation-key-file`
/// or `HEALTHIMAGING_MCP_CONFIRMATION_KEY` (replicas share it), else none
/// (one is made at start).
fn confirmation_key(args: &ServeArgs) -> Result<Option<Vec<u8>>, RunError> {
    let key = match &args.confirmation_key_file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            RunError::Usage(format!(
                "Could not read the confirmation key file '{}': {e}",
                path.display()
            ))
        })?,
        None => match std::env::var("HEALTHIMAGING_MCP_CONFIRMATION_KEY") {
            Ok(key) => key,
            Err(_) => return Ok(None),
        },
    };
    let key = key.trim();
    if key.len() < 32 {
        return Err(RunError::Usage(
            "A confirmation key has at least 32 characters (e.g. `openssl rand -hex 32`)"
                .to_owned(),
        ));
    }
    Ok(Some(key.as_bytes().to_vec()))
}

/// The HTTP transport's settings from the flags, checked before anything
/// starts.
async fn http_settings(
    args: &ServeArgs,
) -> Result<Option<(std::net::SocketAddr, crate::http::Guard)>, RunError> {
    let http_only = args.listen.is_some()
        || !args.allowed_host.is_empty()
        || !args.allowed_origin.is_empty()
        || args.auth_token_file.is_some()
        || args.insecure_no_auth
        || args.oauth_issuer.is_some()
        || args.oauth_jwks.is_some()
        || args.oauth_audience.is_some();
    if args.transport != crate::cli::TransportArg::Http {
        if http_only {
            return Err(RunError::Usage(
                "--listen, --allowed-host, --allowed-origin, --auth-token-file, --insecure-no-auth and the --oauth-* flags apply to --transport http".to_owned(),
            ));
        }
        return Ok(None);
    }
    let listen = resolve_address(args.listen.as_deref().unwrap_or("127.0.0.1:8000")).await?;
    let token = match &args.auth_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    RunError::Usage(format!(
                        "Could not read the token file '{}': {e}",
                        path.display()
                    ))
                })?
                .trim()
                .to_owned(),
        ),
        None => std::env::var("HEALTHIMAGING_MCP_TOKEN")
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty()),
    };
    if let Some(token) = &token {
        crate::http::check_token(token).map_err(RunError::Usage)?;
    }
    let oauth = match (&args.oauth_issuer, &args.oauth_jwks, &args.oauth_audience) {
        (None, None, None) => None,
        (Some(issuer), Some(jwks), Some(audience)) => {
            let text = std::fs::read_to_string(jwks).map_err(|e| {
                RunError::Usage(format!(
                    "Could not read the JWKS file '{}': {e}",
                    jwks.display()
                ))
            })?;
            let jwks = healthimaging_emulator::oidc::Jwks::parse(&text).map_err(|e| {
                RunError::Usage(format!(
                    "The JWKS file '{}' is not usable: {e}",
                    jwks.display()
                ))
            })?;
            Some(crate::http::OAuth {
                issuer: issuer.clone(),
                audience: audience.clone(),
                jwks,
            })
        }
        _ => {
            return Err(RunError::Usage(
                "--oauth-issuer, --oauth-jwks and --oauth-audience go together".to_owned(),
            ));
        }
    };
    if !listen.ip().is_loopback() && token.is_none() && oauth.is_none() && !args.insecure_no_auth {
        return Err(RunError::Usage(
            crate::http::HttpError::NeedsToken(listen).to_string(),
        ));
    }
    Ok(Some((
        listen,
        crate::http::Guard {
            allowed_hosts: args.allowed_host.clone(),
            allowed_origins: args.allowed_origin.clone(),
            token,
            oauth,
        },
    )))
}

/// `healthimaging-mcp serve`: the MCP server on stdio until the client
/// leaves, or over HTTP until interrupted.
pub async fn serve(args: ServeArgs) -> Result<(), RunError> {
    let http = http_settings(&args).await?;
    let file = match &args.config {
        Some(path) => config::read_file(path)?,
        None => FileConfig::default(),
    };
    let settings = config::resolve(&args, file)?;
    let audit = match &settings.audit_log {
        Some(path) => AuditLog::file(path).map_err(|source| RunError::AuditLog {
            path: path.clone(),
            source,
        })?,
        None => AuditLog::stderr(),
    };
    let connection = backend::connect(
        &settings.target,
        settings.dicomweb_url.as_deref(),
        settings.tuning(),
    )
    .await?;
    let server = HealthImagingServer::new(
        connection.client.clone(),
        ServerOptions {
            grant: settings.grant,
            confirmation_ttl: settings.confirmation_ttl,
            bulk_ceiling: settings.bulk_ceiling,
            audit,
            backend_description: connection.description.clone(),
            synthetic: connection.synthetic,
            local_s3_root: connection.local_s3_root(),
            dicomweb: Some(connection.dicomweb.clone()),
            state_dir: settings.state_dir.clone(),
            export: settings.export.clone(),
            s3: connection.s3.clone(),
            confirmation_key: confirmation_key(&args)?,
            loading: connection.loading.clone(),
            loading_wait: settings.fixtures_wait,
        },
    );
    if let Some((listen, guard)) = http {
        let cancel = tokio_util::sync::CancellationToken::new();
        let stop = shutdown_signal()?;
        let bound = crate::http::bind(server, listen, guard, args.insecure_no_auth, cancel.clone())
            .await
            .map_err(|e| RunError::Usage(e.to_string()))?;
        eprintln!(
            "healthimaging-mcp: MCP on http://{}/mcp; backend: {}; permissions: {}",
            bound.addr,
            connection.description,
            settings.grant.describe()
        );
        let serving = tokio::spawn(bound.serve(cancel.clone()));
        stop.await;
        cancel.cancel();
        let outcome = match tokio::time::timeout(Duration::from_secs(10), serving).await {
            Ok(Ok(result)) => result.map_err(|e| RunError::Mcp(e.to_string())),
            _ => Ok(()),
        };
        connection.shutdown().await;
        return outcome;
    }
    // stdout carries the protocol; everything for people goes to stderr.
    eprintln!(
        "healthimaging-mcp: MCP on stdio; backend: {}; permissions: {}",
        connection.description,
        settings.grant.describe()
    );
    let io = crate::transport::stdio(tokio::io::stdin(), tokio::io::stdout());
    let outcome = match server.serve((io.reader, io.writer)).await {
        Ok(running) => running
            .waiting()
            .await
            .map(|_| ())
            .map_err(|e| RunError::Mcp(e.to_string())),
        Err(error) => Err(RunError::Mcp(error.to_string())),
    };
    // Every answer written before the process ends.
    let _ = tokio::time::timeout(Duration::from_secs(5), io.output).await;
    connection.shutdown().await;
    outcome
}

/// The scenario folder: `dir`, or the source tree's when `dir` is the
/// default and the working directory has none.
fn scenario_dir(dir: &std::path::Path) -> std::path::PathBuf {
    if dir.exists() || dir != std::path::Path::new("scenarios") {
        return dir.to_owned();
    }
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios")).to_owned()
}

/// `healthimaging-mcp scenario list`.
pub fn scenario_list(args: ScenarioListArgs) -> Result<(), RunError> {
    let scenarios = crate::scenario::load_dir(&scenario_dir(&args.dir))?;
    for scenario in &scenarios {
        println!(
            "{}  ({}, {} set, {} steps)\n  {}\n  {}\n",
            scenario.name(),
            scenario.level.name(),
            scenario.fixtures,
            scenario.steps.len(),
            scenario.title,
            scenario
                .story
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(())
}

/// `healthimaging-mcp scenario run`.
pub async fn scenario_run(args: ScenarioRunArgs) -> Result<(), RunError> {
    use crate::scenario::run::{Backend, Options};
    let dir = scenario_dir(&args.dir);
    let scenarios = if args.all {
        crate::scenario::load_dir(&dir)?
    } else {
        args.scenarios
            .iter()
            .map(|name| {
                let path = std::path::Path::new(name);
                let path = if path.extension().is_some_and(|e| e == "toml") {
                    path.to_owned()
                } else {
                    dir.join(format!("{name}.toml"))
                };
                crate::scenario::Scenario::load(&path)
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let backend = match (&args.endpoint_url, &args.server_command) {
        (Some(url), _) => Backend::Endpoint(url.clone()),
        (None, Some(command)) => {
            Backend::Command(command.split_whitespace().map(str::to_owned).collect())
        }
        (None, None) => Backend::Embedded,
    };
    let options = Options {
        backend: backend.clone(),
        allow_writes_on_real_data: args.allow_writes_on_real_data,
        fixture_cache: true,
        print: true,
    };
    let records = crate::scenario::run::run_all(&scenarios, &options).await;
    if let Some(report) = &args.report {
        crate::scenario::report::write(report, &records, &crate::scenario::run::describe(&backend))
            .map_err(|source| RunError::Report {
                path: report.clone(),
                source,
            })?;
        println!("\nreport: {}", report.join("index.html").display());
    }
    let failed = records.iter().filter(|r| !r.passed()).count();
    println!(
        "\n{} of {} scenario(s) passed",
        records.len() - failed,
        records.len()
    );
    if failed > 0 {
        return Err(RunError::ScenariosFailed(failed, records.len()));
    }
    Ok(())
}

/// `healthimaging-mcp fixtures generate`: a fixture set into a folder.
pub fn generate_fixtures(args: GenerateArgs) -> Result<(), RunError> {
    let set = match args.set {
        SetArg::Ci => FixtureSet::Ci,
        SetArg::Demo => FixtureSet::Demo,
        SetArg::Scale => FixtureSet::Scale,
    };
    if args.patients.is_some() && set != FixtureSet::Scale {
        return Err(RunError::Usage(
            "--patients applies to the scale set only".to_owned(),
        ));
    }
    let spec = Spec {
        set,
        seed: args.seed,
        patients: args.patients.map(|n| n as usize),
    };
    let started = std::time::Instant::now();
    let manifest = healthimaging_fixtures::write(&spec, &args.out)?;
    let totals = &manifest.totals;
    println!(
        "wrote the {} set (seed {}) to {}: {} patients, {} studies, {} series, {} instances, {} files, {:.1} MB in {:.1} s",
        set.name(),
        spec.seed,
        args.out.display(),
        totals.patients,
        totals.studies,
        totals.series,
        totals.instances,
        totals.files,
        totals.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `healthimaging-mcp emulator`: the emulator over HTTP until interrupted.
pub async fn emulator(args: EmulatorArgs) -> Result<(), RunError> {
    let listen = resolve_address(&args.listen).await?;
    let control = match (&args.control_listen, args.no_control) {
        (_, true) => Control::Off,
        (Some(addr), false) => Control::Listen(resolve_address(addr).await?),
        (None, false) => Control::SamePort,
    };
    let access_key = match &args.access_key_file {
        Some(path) => Some(read_key(path)?),
        None => std::env::var("HEALTHIMAGING_EMULATOR_ACCESS_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
    };
    let sigv4 = if args.verify_sigv4 {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => Some(SigV4Key {
                access_key_id,
                secret_access_key,
                region: args.region.clone(),
            }),
            _ => {
                return Err(RunError::Usage(
                    "--verify-sigv4 checks signatures made with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both in the emulator's environment".to_owned(),
                ));
            }
        }
    } else {
        None
    };
    let surface = Surface {
        allowed_hosts: args.allowed_host,
        allowed_origins: args.allowed_origin,
        access_key,
        sigv4,
        insecure_no_auth: args.insecure_no_auth,
        control,
        ..Surface::default()
    };
    let oidc_jwks = match &args.oidc_jwks {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                RunError::Usage(format!(
                    "Could not read the JWKS file '{}': {e}",
                    path.display()
                ))
            })?;
            Some(
                healthimaging_emulator::oidc::Jwks::parse(&text).map_err(|why| {
                    RunError::Usage(format!(
                        "The JWKS file '{}' is not usable: {why}",
                        path.display()
                    ))
                })?,
            )
        }
        None => None,
    };
    let oidc = match &args.oidc_jwks {
        Some(path) => format!(
            "; DICOMweb bearer tokens checked against {}",
            path.display()
        ),
        None => String::new(),
    };
    let config = EmulatorConfig {
        seed: args.seed,
        oidc_jwks,
        transition_delay: Duration::from_millis(args.transition_delay_ms),
        region: args.region,
        account_id: args.account_id,
        datastore_quota: args.datastore_quota,
        data_dir: args.data_dir,
        s3_root: args.s3_root,
        max_object_bytes: args.max_object_bytes,
        allow_reset: args.allow_reset,
        snapshot_dir: args.snapshot_dir,
        restore_snapshot: args.restore_snapshot,
        ..EmulatorConfig::default()
    };
    let checks = format!("{}{oidc}", describe_surface(&surface));
    let emulator = Emulator::bind_with(listen, config, surface)
        .await
        .map_err(|source| RunError::Listen {
            addr: listen,
            source,
        })?;
    // Installed before anything is announced: a SIGTERM right after the
    // ready line stops the emulator cleanly instead of killing it.
    let stop = shutdown_signal()?;
    eprintln!(
        "healthimaging-mcp: the emulator's S3 folder is {} (s3://bucket/key is <folder>/bucket/key); {checks}",
        emulator.s3_root().display()
    );
    if let Some(set) = args.fixtures.set() {
        let client = backend::embedded_client(emulator.service(), crate::sdk::Tuning::default());
        let seeded = crate::seed::seed(&client, emulator.s3_root(), set, crate::seed::FIXTURE_SEED)
            .await
            .map_err(|e| RunError::Startup(StartupError::Seed(e)))?;
        eprintln!(
            "healthimaging-mcp: datastore {} ({}) holds the {} set: {} image sets",
            set.name(),
            seeded.datastore_id,
            set.name(),
            seeded.image_sets
        );
    }
    // Scripts wait for this exact line before they connect: it comes once
    // the fixtures are in.
    println!("listening on {}", emulator.url());
    let _ = std::io::stdout().flush();
    stop.await;
    eprintln!("healthimaging-mcp: stopping the emulator");
    emulator
        .shutdown()
        .await
        .map_err(|source| RunError::Listen {
            addr: listen,
            source,
        })
}

/// `host:port`, resolved; the first address wins (loopback names resolve to
/// loopback).
async fn resolve_address(text: &str) -> Result<std::net::SocketAddr, RunError> {
    let unusable = |why: String| RunError::Usage(format!("Cannot listen on '{text}': {why}"));
    let mut found = tokio::net::lookup_host(text)
        .await
        .map_err(|e| unusable(e.to_string()))?;
    found
        .next()
        .ok_or_else(|| unusable("the name resolves to no address".to_owned()))
}

fn read_key(path: &std::path::Path) -> Result<String, RunError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        RunError::Usage(format!(
            "Could not read the access key file '{}': {e}",
            path.display()
        ))
    })?;
    let key = text.trim().to_owned();
    if key.len() < 16 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RunError::Usage(format!(
            "The access key in '{}' must be at least 16 printable characters",
            path.display()
        )));
    }
    Ok(key)
}

/// One line saying which checks the listener makes.
fn describe_surface(surface: &Surface) -> String {
    let key = if surface.access_key.is_some() {
        "an access key is required"
    } else {
        "no access key (loopback only)"
    };
    let control = match surface.control {
        Control::SamePort => "control API at /_emulator/".to_owned(),
        Control::Listen(addr) => format!("control API on {addr}"),
        Control::Off => "no control API".to_owned(),
    };
    let sigv4 = match &surface.sigv4 {
        Some(key) => format!(
            "SigV4 signatures verified (access key {}, region {})",
            key.access_key_id, key.region
        ),
        None => "SigV4 signatures are not verified (--verify-sigv4 to verify them)".to_owned(),
    };
    format!("checks: Host, browser Origin and Content-Type; {key}; {control}; {sigv4}")
}

/// Resolves on Ctrl-C or SIGTERM; the handlers are installed when this
/// returns, so a signal that arrives later is never missed.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, RunError> {
    let installed = |e: std::io::Error| RunError::Usage(format!("Cannot handle signals: {e}"));
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).map_err(installed)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(installed)?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        let _ = installed;
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
