//! Which HealthImaging the server talks to, and the one SDK client for it.
//!
//! Three targets, chosen by configuration alone: an emulator embedded in this
//! process (the default, synthetic data only), real AWS through the standard
//! credential and region chain (only when asked for), or any compatible
//! endpoint. Problems the chain would otherwise report on the first call
//! (no region, no credentials) are found at start and reported plainly.

use std::sync::Arc;
use std::time::Duration;

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_medicalimaging::Client;
use healthimaging_emulator::{Emulator, EmulatorConfig, Service, Surface};

use crate::dicomweb::DicomWeb;
use crate::permissions::Grant;
use crate::sdk::{self, StripRuntimePrefix, Tuning};

/// Where the server's HealthImaging calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An emulator started inside this process, on synthetic data.
    EmbeddedEmulator {
        /// Seed of the emulator's identifiers.
        seed: Option<u64>,
        /// Where the emulator keeps its state; in memory when `None`.
        data_dir: Option<std::path::PathBuf>,
        /// The fixture set it holds, in a datastore named after the set.
        fixtures: Option<healthimaging_fixtures::FixtureSet>,
        /// Serve it over HTTP on this address too, behind a per-process key.
        expose: Option<std::net::SocketAddr>,
    },
    /// AWS HealthImaging, through the standard credential and region chain.
    Aws {
        /// A region overriding the chain's.
        region: Option<String>,
        /// A named profile overriding `AWS_PROFILE`.
        profile: Option<String>,
    },
    /// Any HealthImaging-compatible endpoint, such as a standalone emulator.
    Endpoint {
        /// The endpoint URL.
        url: String,
        /// A region overriding the chain's (default `us-east-1`).
        region: Option<String>,
        /// A named profile overriding `AWS_PROFILE`.
        profile: Option<String>,
    },
}

impl Target {
    /// The permissions granted when the operator passes no permission flag:
    /// everything on the embedded emulator, read only anywhere else.
    pub fn default_grant(&self) -> Grant {
        match self {
            Target::EmbeddedEmulator { .. } => Grant::ALL,
            Target::Aws { .. } | Target::Endpoint { .. } => Grant::READ_ONLY,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// The AWS backend has no region.
    #[error(
        "No AWS region is configured. Set AWS_REGION (or AWS_DEFAULT_REGION), set a region in the AWS profile, or pass --region."
    )]
    NoRegion,
    /// The AWS backend has no usable credentials.
    #[error(
        "No AWS credentials were found: {0}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary keys), or AWS_PROFILE naming a profile in ~/.aws/config (for SSO, run `aws sso login --profile NAME` first), or run where a container or instance role provides them; then start again."
    )]
    NoCredentials(String),
    /// The embedded emulator did not start.
    #[error("Could not start the embedded emulator: {0}")]
    Emulator(#[source] std::io::Error),
    /// The embedded emulator could not be given its fixtures.
    #[error("Could not load the fixtures into the embedded emulator: {0}")]
    Seed(#[source] crate::seed::SeedError),
}

/// A connected SDK client and what it is connected to.
#[derive(Debug)]
pub struct Connection {
    /// The SDK client, built once and shared by every tool.
    pub client: Client,
    /// One sentence naming the backend, for the log and the instructions.
    pub description: String,
    /// Whether the data behind it is the emulator's synthetic data.
    pub synthetic: bool,
    /// The embedded emulator, kept running as long as the connection lives.
    pub embedded: Option<Embedded>,
    /// The DICOMweb client for the same backend.
    pub dicomweb: DicomWeb,
    /// The region and credentials requests are signed with.
    signing: (String, SharedCredentialsProvider),
    /// S3 for export destinations, where there is an S3 to use.
    pub s3: Option<aws_sdk_s3::Client>,
    /// The fixture set loading into the embedded emulator.
    pub loading: Option<Arc<crate::loading::Loading>>,
}

/// An emulator inside this process.
#[derive(Debug)]
pub struct Embedded {
    /// The emulator.
    pub service: Arc<Service>,
    /// Its HTTP listener, when `--expose-emulator` asked for one.
    pub exposed: Option<Emulator>,
    /// The task loading the fixture set (and then writing the fixture
    /// cache), finished before the process ends once the set is loaded.
    pub loader: Option<tokio::task::JoinHandle<()>>,
}

impl Connection {
    /// The embedded emulator's S3 folder, if there is one.
    pub fn local_s3_root(&self) -> Option<std::path::PathBuf> {
        self.embedded
            .as_ref()
            .map(|e| e.service.s3.path().to_owned())
    }

    /// Stops the embedded emulator's listener, if there is one, and lets
    /// a fixture cache being written finish.
    pub async fn shutdown(self) {
        let Some(embedded) = self.embedded else {
            return;
        };
        if let Some(loader) = embedded.loader {
            // A load cut short is lost with the in-memory store (a data
            // directory's import job resumes at the next start); a cache
            // being written is finished.
            if self.loading.as_ref().is_some_and(|l| !l.settled()) {
                loader.abort();
            }
            let _ = loader.await;
        }
        if let Some(emulator) = embedded.exposed
            && let Err(error) = emulator.shutdown().await
        {
            tracing::warn!(%error, "the embedded emulator's listener did not stop cleanly");
        }
    }
}

/// Loads `loading`'s fixture set through `client`, says how it went, and
/// keeps a first import in `cache` for the next start.
async fn load(
    loading: Arc<crate::loading::Loading>,
    client: Client,
    service: Arc<Service>,
    cache: Option<std::path::PathBuf>,
    restored: bool,
) {
    let set = loading.set();
    let outcome = crate::seed::seed_observed(
        &client,
        service.s3.path(),
        set,
        crate::seed::FIXTURE_SEED,
        loading.clone(),
    )
    .await;
    loading.finish(&outcome);
    let took = loading.took().unwrap_or_default().as_secs_f64();
    let seeded = match outcome {
        Ok(seeded) => seeded,
        Err(error) => {
            eprintln!(
                "healthimaging-mcp: the {} set could not be loaded: {error}",
                set.name()
            );
            return;
        }
    };
    eprintln!(
        "healthimaging-mcp: datastore {} ({}) holds the {} set: {} image sets{}",
        set.name(),
        seeded.datastore_id,
        set.name(),
        seeded.image_sets,
        if seeded.reused && restored {
            format!(" (restored from the cache in {took:.2} s)")
        } else if seeded.reused {
            " (kept from the data directory)".to_owned()
        } else {
            format!(", imported in {took:.1} s")
        }
    );
    if let Some(dir) = cache.filter(|_| !seeded.reused) {
        let save = move || crate::seed::save_cache(&service, &dir);
        match tokio::task::spawn_blocking(save).await {
            Ok(Err(error)) => tracing::warn!(%error, "the fixture cache could not be written"),
            Err(error) => tracing::warn!(%error, "the fixture cache could not be written"),
            Ok(Ok(())) => {}
        }
    }
}

/// Connects to `target`; DICOMweb requests go to `dicomweb_url` when given,
/// to the same backend otherwise.
pub async fn connect(
    target: &Target,
    dicomweb_url: Option<&str>,
    tuning: Tuning,
) -> Result<Connection, StartupError> {
    let mut connection = connect_sdk(target, tuning).await?;
    if let Some(url) = dicomweb_url {
        let (region, credentials) = connection.signing.clone();
        connection.dicomweb = DicomWeb::for_endpoint(Some(url), &region, credentials, tuning);
        connection.description = format!("{}; DICOMweb at {url}", connection.description);
    }
    Ok(connection)
}

async fn connect_sdk(target: &Target, tuning: Tuning) -> Result<Connection, StartupError> {
    match target {
        Target::EmbeddedEmulator {
            seed,
            data_dir,
            fixtures,
            expose,
        } => {
            // In memory, an imported fixture set is kept in the user's cache
            // folder after the first start, and later starts restore it.
            let cache = match (data_dir, fixtures) {
                (None, Some(set)) => crate::seed::cache_dir(*set, *seed),
                _ => None,
            };
            let restore = cache.as_ref().filter(|dir| crate::seed::cached(dir));
            let config = EmulatorConfig {
                seed: *seed,
                data_dir: data_dir.clone(),
                restore_snapshot: restore.map(|dir| dir.join("store")),
                ..EmulatorConfig::default()
            };
            let service = Service::start(config).map_err(StartupError::Emulator)?;
            if let Some(dir) = restore
                && let Err(error) = crate::seed::restore_s3(dir, service.s3.path())
            {
                tracing::warn!(%error, "the cached fixture files could not be restored");
            }
            let client = embedded_client(&service, tuning);
            // The set loads beside the server, which answers at once: a
            // restored cache or a full data directory settles in
            // milliseconds, a first start in seconds.
            let restored = restore.is_some();
            let (loading, loader) = match *fixtures {
                Some(set) => {
                    let loading = crate::loading::Loading::new(set, service.clone());
                    let task = load(
                        loading.clone(),
                        client.clone(),
                        service.clone(),
                        cache.filter(|_| !restored),
                        restored,
                    );
                    (Some(loading), Some(tokio::spawn(task)))
                }
                None => (None, None),
            };
            let exposed = match expose {
                None => None,
                Some(addr) => Some(expose_emulator(&service, *addr).await?),
            };
            let reach = match &exposed {
                Some(listener) => format!("in this process, also served at {}", listener.url()),
                None => "in this process, with no network port".to_owned(),
            };
            let dicomweb = embedded_dicomweb(&service, tuning);
            Ok(Connection {
                client,
                dicomweb,
                signing: (
                    "us-east-1".to_owned(),
                    SharedCredentialsProvider::new(placeholder_credentials()),
                ),
                // The emulator's S3 folder takes s3:// destinations.
                s3: None,
                description: format!(
                    "the embedded HealthImaging emulator ({reach}; synthetic data only; no real patient data)"
                ),
                synthetic: true,
                loading,
                embedded: Some(Embedded {
                    service,
                    exposed,
                    loader,
                }),
            })
        }
        Target::Aws { region, profile } => {
            let sdk_config = load_chain(region.as_deref(), profile.as_deref(), None, tuning).await;
            let region = sdk_config
                .region()
                .ok_or(StartupError::NoRegion)?
                .to_string();
            let credentials = credentials(&sdk_config)
                .await
                .map_err(StartupError::NoCredentials)?;
            let account = credentials
                .account_id()
                .map(|a| format!(", account {}", a.as_str()))
                .unwrap_or_default();
            // AWS_ENDPOINT_URL redirects every service; the prefix fix must follow it.
            let (client, where_to) = match sdk_config.endpoint_url() {
                Some(url) => (
                    endpoint_client(&sdk_config, url),
                    format!(" through the endpoint override {url}"),
                ),
                None => (Client::new(&sdk_config), String::new()),
            };
            let provider = sdk_config
                .credentials_provider()
                .ok_or_else(|| StartupError::NoCredentials("no credentials provider".to_owned()))?;
            Ok(Connection {
                dicomweb: DicomWeb::for_endpoint(
                    sdk_config.endpoint_url(),
                    &region,
                    provider.clone(),
                    tuning,
                ),
                signing: (region.clone(), provider),
                s3: Some(aws_sdk_s3::Client::new(&sdk_config)),
                loading: None,
                client,
                description: format!("AWS HealthImaging in region {region}{account}{where_to}"),
                synthetic: false,
                embedded: None,
            })
        }
        Target::Endpoint {
            url,
            region,
            profile,
        } => {
            let sdk_config = load_local(region.as_deref(), profile.as_deref(), url, tuning).await;
            let mut builder = endpoint_client(&sdk_config, url).config().to_builder();
            let region = sdk_config
                .region()
                .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
            let mut note = String::new();
            let mut provider = sdk_config
                .credentials_provider()
                .unwrap_or_else(|| SharedCredentialsProvider::new(placeholder_credentials()));
            if credentials(&sdk_config).await.is_err() {
                // An emulator does not check signatures; a real service behind
                // a custom endpoint will refuse, and the call will say so.
                eprintln!(
                    "healthimaging-mcp: no AWS credentials in the environment or the profile files; signing with placeholder credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, if the endpoint checks them)"
                );
                builder = builder.credentials_provider(placeholder_credentials());
                provider = SharedCredentialsProvider::new(placeholder_credentials());
                note = ", placeholder credentials".to_owned();
            }
            let client = Client::from_conf(builder.build());
            Ok(Connection {
                dicomweb: DicomWeb::for_endpoint(Some(url), &region, provider.clone(), tuning),
                s3: s3_for_endpoint(&region, provider.clone()),
                loading: None,
                signing: (region.clone(), provider),
                client,
                description: format!(
                    "the HealthImaging-compatible endpoint {url} (region {region}{note})"
                ),
                synthetic: false,
                embedded: None,
            })
        }
    }
}

/// An SDK client whose requests the emulator `service` answers in this
/// process ([`crate::in_process`]).
pub fn embedded_client(service: &Arc<Service>, tuning: Tuning) -> Client {
    let config = aws_sdk_medicalimaging::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(placeholder_credentials())
        .endpoint_url(crate::in_process::ENDPOINT)
        .http_client(crate::in_process::InProcess::client(
            healthimaging_emulator::router(service.clone()),
        ))
        .retry_config(tuning.retry_config())
        .timeout_config(tuning.timeout_config())
        .build();
    Client::from_conf(config)
}

/// S3 beside a custom HealthImaging endpoint: only where the environment
/// names an S3-compatible endpoint (`AWS_ENDPOINT_URL_S3`).
fn s3_for_endpoint(
    region: &str,
    credentials: SharedCredentialsProvider,
) -> Option<aws_sdk_s3::Client> {
    let url = std::env::var("AWS_ENDPOINT_URL_S3")
        .ok()
        .filter(|u| !u.is_empty())?;
    Some(s3_at_endpoint(&url, region, credentials))
}

/// An S3 client for an S3-compatible service at `url`: path-style
/// addressing, and checksums only where the API requires them (which every
/// S3-compatible service takes).
pub fn s3_at_endpoint(
    url: &str,
    region: &str,
    credentials: SharedCredentialsProvider,
) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .endpoint_url(url)
        .force_path_style(true)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .http_client(sdk::http_client())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A DICOMweb client whose requests the emulator `service` answers in this
/// process.
pub fn embedded_dicomweb(service: &Arc<Service>, tuning: Tuning) -> DicomWeb {
    DicomWeb::with_connector(
        crate::in_process::InProcess::connector(healthimaging_emulator::router(service.clone())),
        crate::in_process::ENDPOINT,
        tuning,
    )
}

/// Serves the embedded emulator on `addr` behind a key made for this
/// process, and tells the operator how to use it.
async fn expose_emulator(
    service: &Arc<Service>,
    addr: std::net::SocketAddr,
) -> Result<Emulator, StartupError> {
    let key = healthimaging_emulator::surface::generate_access_key();
    let surface = Surface {
        access_key: Some(key.clone()),
        ..Surface::default()
    };
    let listener = Emulator::expose(service.clone(), addr, surface)
        .await
        .map_err(StartupError::Emulator)?;
    eprintln!(
        "healthimaging-mcp: the embedded emulator is also served at {}; clients must use the access key ID {key} (any secret key), e.g. AWS_ACCESS_KEY_ID={key}",
        listener.url()
    );
    Ok(listener)
}

/// A client for an emulator at `url`: fixed region and placeholder credentials.
pub fn emulator_client(url: &str, tuning: Tuning) -> Client {
    let config = aws_sdk_medicalimaging::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(placeholder_credentials())
        .endpoint_url(url)
        .http_client(sdk::http_client())
        .retry_config(tuning.retry_config())
        .timeout_config(tuning.timeout_config())
        .interceptor(StripRuntimePrefix::for_endpoint(url))
        .build();
    Client::from_conf(config)
}

fn endpoint_client(sdk_config: &SdkConfig, url: &str) -> Client {
    let config = aws_sdk_medicalimaging::config::Builder::from(sdk_config)
        .endpoint_url(url)
        .interceptor(StripRuntimePrefix::for_endpoint(url))
        .build();
    Client::from_conf(config)
}

fn placeholder_credentials() -> Credentials {
    Credentials::new(
        "emulator",
        "emulator",
        None,
        None,
        "healthimaging-mcp-placeholder",
    )
}

async fn load_chain(
    region: Option<&str>,
    profile: Option<&str>,
    endpoint_url: Option<&str>,
    tuning: Tuning,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(sdk::http_client())
        .retry_config(tuning.retry_config())
        .timeout_config(tuning.timeout_config());
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The configuration for a custom endpoint: region and credentials from
/// the flags, the environment and the profile files only. The default
/// chains would ask the EC2 instance metadata service, a network probe no
/// local endpoint ever needs.
async fn load_local(
    region: Option<&str>,
    profile: Option<&str>,
    endpoint_url: &str,
    tuning: Tuning,
) -> SdkConfig {
    // Profiles that name another source (an assumed role) call STS through
    // this provider configuration, with the same HTTP client.
    let provider_config =
        aws_config::provider_config::ProviderConfig::default().with_http_client(sdk::http_client());
    let mut profile_region = ProfileFileRegionProvider::builder().configure(&provider_config);
    let mut profile_credentials =
        ProfileFileCredentialsProvider::builder().configure(&provider_config);
    if let Some(profile) = profile {
        profile_region = profile_region.profile_name(profile);
        profile_credentials = profile_credentials.profile_name(profile);
    }
    let regions = RegionProviderChain::first_try(region.map(|r| Region::new(r.to_owned())))
        .or_else(EnvironmentVariableRegionProvider::new())
        .or_else(profile_region.build())
        .or_else(Region::new("us-east-1"));
    let credentials = CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else("Profile", profile_credentials.build());
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(sdk::http_client())
        .retry_config(tuning.retry_config())
        .timeout_config(tuning.timeout_config())
        .region(regions)
        .credentials_provider(credentials)
        .endpoint_url(endpoint_url)
        .load()
        .await
}

/// Resolves credentials once, so that a missing or broken chain is reported
/// at start. Bounded in time: the chain may probe an instance metadata
/// service that is not there.
async fn credentials(sdk_config: &SdkConfig) -> Result<Credentials, String> {
    let provider = sdk_config
        .credentials_provider()
        .ok_or_else(|| "no credentials provider is configured".to_owned())?;
    match tokio::time::timeout(Duration::from_secs(10), provider.provide_credentials()).await {
        Ok(Ok(credentials)) => Ok(credentials),
        // Every provider of the chain found nothing: the chain's own
        // account of each attempt is long and says nothing more.
        Ok(Err(CredentialsError::CredentialsNotLoaded(_))) => Err(
            "no provider found any (environment, profile, web identity, container or instance metadata)"
                .to_owned(),
        ),
        // A provider that was configured and failed (an expired SSO session,
        // a broken profile) says why.
        Ok(Err(error)) => {
            Err(aws_sdk_medicalimaging::error::DisplayErrorContext(&error).to_string())
        }
        Err(_) => Err("resolving credentials took longer than 10 seconds".to_owned()),
    }
}
