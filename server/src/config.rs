//! Resolving `serve`'s settings from flags, a TOML file and defaults.
//!
//! Flags win over the file, the file over defaults. `read_only` anywhere
//! forces read only. Real AWS is never chosen implicitly: it takes
//! `--backend aws` or `backend = "aws"` in the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::backend::Target;
use crate::cli::{BackendArg, FixturesArg, ServeArgs};
use crate::permissions::Grant;
use crate::sdk::Tuning;

/// The settings `--config` may hold.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `emulator` or `aws`.
    pub backend: Option<BackendArg>,
    /// A HealthImaging-compatible endpoint.
    pub endpoint_url: Option<String>,
    /// The AWS region.
    pub region: Option<String>,
    /// The AWS profile.
    pub profile: Option<String>,
    /// Offer the write tools.
    #[serde(default)]
    pub allow_write: bool,
    /// Offer the delete tools.
    #[serde(default)]
    pub allow_delete: bool,
    /// Offer only the read tools.
    #[serde(default)]
    pub read_only: bool,
    /// The audit log file.
    pub audit_log: Option<PathBuf>,
    /// The embedded emulator's seed.
    pub seed: Option<u64>,
    /// The embedded emulator's data directory.
    pub data_dir: Option<PathBuf>,
    /// The fixture set the embedded emulator holds.
    pub fixtures: Option<FixturesArg>,
    /// Serve the embedded emulator on this loopback address too, behind a key.
    pub expose_emulator: Option<std::net::SocketAddr>,
    /// How long a call waits for a loading fixture set, in seconds.
    pub fixtures_wait_secs: Option<u64>,
    /// Confirmation token lifetime in seconds.
    pub confirmation_ttl_secs: Option<u64>,
    /// The most image sets one call of a bulk tool may change.
    pub bulk_ceiling: Option<usize>,
    /// Where DICOMweb requests go instead of the backend's DICOMweb endpoint.
    pub dicomweb_url: Option<String>,
    /// Where export jobs are kept.
    pub state_dir: Option<PathBuf>,
    /// Destinations export jobs may write to.
    #[serde(default)]
    pub export_destinations: Vec<String>,
    /// The AE title this server calls DICOM nodes with.
    pub ae_title: Option<String>,
}

/// The ceiling of a bulk tool's per-call cap when none is configured.
pub const DEFAULT_BULK_CEILING: usize = 100;
/// The highest ceiling an operator may configure.
pub const MAX_BULK_CEILING: usize = 1000;
/// How long a call waits for a loading fixture set unless configured.
pub const DEFAULT_FIXTURES_WAIT_SECS: u64 = 30;
/// The longest a call may be configured to wait for a loading fixture set.
pub const MAX_FIXTURES_WAIT_SECS: u64 = 600;
/// The longest a confirmation token may live: a day.
pub const MAX_CONFIRMATION_TTL_SECS: u64 = 86_400;

/// Why the settings could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("Could not read the config file '{path}': {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("The config file '{path}' is not valid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The settings contradict each other.
    #[error("{0}")]
    Conflict(String),
}

/// Everything `serve` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeSettings {
    /// The backend.
    pub target: Target,
    /// The tool levels offered.
    pub grant: Grant,
    /// The audit log file; stderr when `None`.
    pub audit_log: Option<PathBuf>,
    /// Confirmation token lifetime.
    pub confirmation_ttl: Duration,
    /// How long a call waits for a loading fixture set.
    pub fixtures_wait: Duration,
    /// The most image sets one call of a bulk tool may change.
    pub bulk_ceiling: usize,
    /// Where DICOMweb requests go instead of the backend's DICOMweb endpoint.
    pub dicomweb_url: Option<String>,
    /// Where export jobs are kept; in memory only when `None`.
    pub state_dir: Option<PathBuf>,
    /// The destinations export jobs may write to.
    pub export: ExportPolicy,
}

/// What export jobs may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPolicy {
    /// Allowed destinations, parsed.
    pub allowed: Vec<crate::export::Destination>,
    /// The AE title this server calls DICOM nodes with.
    pub ae_title: String,
}

impl Default for ExportPolicy {
    fn default() -> Self {
        Self {
            allowed: Vec::new(),
            ae_title: DEFAULT_AE_TITLE.to_owned(),
        }
    }
}

/// The calling AE title when none is configured.
pub const DEFAULT_AE_TITLE: &str = "HEALTHIMAGING";

/// The default state directory: `$XDG_STATE_HOME/healthimaging-mcp`, else
/// `~/.local/state/healthimaging-mcp`.
pub fn default_state_dir() -> Option<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("XDG_STATE_HOME")
        .or_else(|| from("HOME").map(|home| home.join(".local").join("state")))
        .map(|dir| dir.join("healthimaging-mcp"))
}

impl ServeSettings {
    /// SDK retry and timeout settings for this backend: quick retries
    /// against the in-process emulator, the SDK's defaults elsewhere.
    pub fn tuning(&self) -> Tuning {
        match self.target {
            Target::EmbeddedEmulator { .. } => Tuning {
                initial_backoff: Duration::from_millis(50),
                ..Tuning::default()
            },
            _ => Tuning::default(),
        }
    }
}

/// Reads the `--config` file.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Combines flags and file into settings.
pub fn resolve(args: &ServeArgs, file: FileConfig) -> Result<ServeSettings, ConfigError> {
    let backend = args.backend.or(file.backend);
    let endpoint_url = args.endpoint_url.clone().or(file.endpoint_url);
    let region = args.region.clone().or(file.region);
    let profile = args.profile.clone().or(file.profile);
    let target = match (backend, endpoint_url) {
        (Some(BackendArg::Emulator), Some(url)) => {
            return Err(ConfigError::Conflict(format!(
                "The embedded emulator was chosen, but an endpoint URL ({url}) is set too (flag, config file or AWS_ENDPOINT_URL_MEDICAL_IMAGING). Choose one."
            )));
        }
        (_, Some(url)) => Target::Endpoint {
            url,
            region,
            profile,
        },
        (Some(BackendArg::Aws), None) => Target::Aws { region, profile },
        (Some(BackendArg::Emulator) | None, None) => Target::EmbeddedEmulator {
            seed: args.seed.or(file.seed),
            data_dir: args.data_dir.clone().or(file.data_dir),
            fixtures: args
                .fixtures
                .or(file.fixtures)
                .unwrap_or(FixturesArg::Demo)
                .set(),
            expose: args.expose_emulator.or(file.expose_emulator),
        },
    };
    let embedded_only =
        args.data_dir.is_some() || args.fixtures.is_some() || args.expose_emulator.is_some();
    if embedded_only && !matches!(target, Target::EmbeddedEmulator { .. }) {
        return Err(ConfigError::Conflict(
            "--data-dir, --fixtures and --expose-emulator configure the embedded emulator; they do not apply to another backend".to_owned(),
        ));
    }
    let default = target.default_grant();
    let grant = if args.read_only || file.read_only {
        Grant::READ_ONLY
    } else {
        Grant {
            write: default.write || args.allow_write || file.allow_write,
            delete: default.delete || args.allow_delete || file.allow_delete,
        }
    };
    let ttl = args
        .confirmation_ttl_secs
        .or(file.confirmation_ttl_secs)
        .unwrap_or(300);
    if !(1..=MAX_CONFIRMATION_TTL_SECS).contains(&ttl) {
        return Err(ConfigError::Conflict(format!(
            "confirmation_ttl_secs must be between 1 and {MAX_CONFIRMATION_TTL_SECS} (a day), not {ttl}"
        )));
    }
    let fixtures_wait = args
        .fixtures_wait_secs
        .or(file.fixtures_wait_secs)
        .unwrap_or(DEFAULT_FIXTURES_WAIT_SECS);
    if fixtures_wait > MAX_FIXTURES_WAIT_SECS {
        return Err(ConfigError::Conflict(format!(
            "fixtures_wait_secs must be at most {MAX_FIXTURES_WAIT_SECS}, not {fixtures_wait}"
        )));
    }
    let bulk_ceiling = args
        .bulk_ceiling
        .or(file.bulk_ceiling)
        .unwrap_or(DEFAULT_BULK_CEILING);
    if !(1..=MAX_BULK_CEILING).contains(&bulk_ceiling) {
        return Err(ConfigError::Conflict(format!(
            "bulk_ceiling must be between 1 and {MAX_BULK_CEILING}, not {bulk_ceiling}"
        )));
    }
    let mut allowed = Vec::new();
    for uri in args
        .export_destinations
        .iter()
        .chain(&file.export_destinations)
    {
        let destination = crate::export::Destination::parse(uri).map_err(|e| {
            ConfigError::Conflict(format!("The export destination '{uri}' is not usable: {e}"))
        })?;
        allowed.push(destination);
    }
    let ae_title = args
        .ae_title
        .clone()
        .or(file.ae_title)
        .unwrap_or_else(|| DEFAULT_AE_TITLE.to_owned());
    crate::export::dimse::check_ae_title(&ae_title).map_err(|e| {
        ConfigError::Conflict(format!("The AE title '{ae_title}' is not usable: {e}"))
    })?;
    let dicomweb_url = args.dicomweb_url.clone().or(file.dicomweb_url);
    if let Some(url) = &dicomweb_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(ConfigError::Conflict(format!(
            "The DICOMweb URL must start with http:// or https://, not '{url}'"
        )));
    }
    Ok(ServeSettings {
        target,
        grant,
        audit_log: args.audit_log.clone().or(file.audit_log),
        confirmation_ttl: Duration::from_secs(ttl),
        fixtures_wait: Duration::from_secs(fixtures_wait),
        bulk_ceiling,
        dicomweb_url,
        state_dir: args
            .state_dir
            .clone()
            .or(file.state_dir)
            .or_else(default_state_dir),
        export: ExportPolicy { allowed, ae_title },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_args(args: ServeArgs) -> ServeSettings {
        resolve(&args, FileConfig::default()).unwrap()
    }

    #[test]
    fn the_default_is_the_embedded_emulator_with_every_tool() {
        let settings = resolve_args(ServeArgs::default());
        assert_eq!(
            settings.target,
            Target::EmbeddedEmulator {
                seed: None,
                data_dir: None,
                fixtures: Some(healthimaging_fixtures::FixtureSet::Demo),
                expose: None,
            }
        );
        assert_eq!(settings.grant, Grant::ALL);
        assert_eq!(settings.confirmation_ttl, Duration::from_secs(300));
        assert_eq!(settings.bulk_ceiling, DEFAULT_BULK_CEILING);
    }

    #[test]
    fn the_bulk_ceiling_comes_from_the_flag_or_the_file_and_is_bounded() {
        let file = || FileConfig {
            bulk_ceiling: Some(40),
            ..FileConfig::default()
        };
        assert_eq!(
            resolve(&ServeArgs::default(), file()).unwrap().bulk_ceiling,
            40
        );
        let flag = ServeArgs {
            bulk_ceiling: Some(7),
            ..ServeArgs::default()
        };
        assert_eq!(
            resolve(&flag, file()).unwrap().bulk_ceiling,
            7,
            "the flag wins"
        );
        for bad in [0, MAX_BULK_CEILING + 1] {
            let args = ServeArgs {
                bulk_ceiling: Some(bad),
                ..ServeArgs::default()
            };
            let error = resolve(&args, FileConfig::default())
                .unwrap_err()
                .to_string();
            assert!(error.contains("bulk_ceiling"), "{error}");
        }
    }

    #[test]
    fn aws_is_read_only_unless_allowed() {
        let aws = || ServeArgs {
            backend: Some(BackendArg::Aws),
            ..ServeArgs::default()
        };
        assert_eq!(resolve_args(aws()).grant, Grant::READ_ONLY);
        let write = resolve_args(ServeArgs {
            allow_write: true,
            ..aws()
        });
        assert_eq!(
            write.grant,
            Grant {
                write: true,
                delete: false
            }
        );
        let delete = resolve_args(ServeArgs {
            allow_delete: true,
            ..aws()
        });
        assert_eq!(
            delete.grant,
            Grant {
                write: false,
                delete: true
            }
        );
    }

    #[test]
    fn read_only_forces_read_only_even_on_the_emulator_and_from_the_file() {
        let settings = resolve_args(ServeArgs {
            read_only: true,
            ..ServeArgs::default()
        });
        assert_eq!(settings.grant, Grant::READ_ONLY);
        let file = FileConfig {
            read_only: true,
            ..FileConfig::default()
        };
        let settings = resolve(&ServeArgs::default(), file).unwrap();
        assert_eq!(settings.grant, Grant::READ_ONLY);
    }

    #[test]
    fn an_endpoint_url_selects_the_endpoint_target_read_only() {
        let settings = resolve_args(ServeArgs {
            endpoint_url: Some("http://127.0.0.1:4566".into()),
            ..ServeArgs::default()
        });
        assert!(
            matches!(settings.target, Target::Endpoint { ref url, .. } if url == "http://127.0.0.1:4566")
        );
        assert_eq!(settings.grant, Grant::READ_ONLY);
    }

    #[test]
    fn emulator_and_endpoint_together_is_an_error() {
        let error = resolve(
            &ServeArgs {
                backend: Some(BackendArg::Emulator),
                endpoint_url: Some("http://x".into()),
                ..ServeArgs::default()
            },
            FileConfig::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("Choose one"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: FileConfig = toml::from_str(
            "backend = \"aws\"\nregion = \"eu-west-1\"\nallow_write = true\nconfirmation_ttl_secs = 60\n",
        )
        .unwrap();
        let args = ServeArgs {
            region: Some("us-west-2".into()),
            ..ServeArgs::default()
        };
        let settings = resolve(&args, file).unwrap();
        assert_eq!(
            settings.target,
            Target::Aws {
                region: Some("us-west-2".into()),
                profile: None
            }
        );
        assert_eq!(
            settings.grant,
            Grant {
                write: true,
                delete: false
            }
        );
        assert_eq!(settings.confirmation_ttl, Duration::from_secs(60));
    }

    #[test]
    fn the_embedded_emulator_takes_a_data_dir_and_fixtures_from_the_file() {
        let file: FileConfig =
            toml::from_str("data_dir = \"/var/lib/hi\"\nfixtures = \"none\"\n").unwrap();
        let settings = resolve(&ServeArgs::default(), file).unwrap();
        assert_eq!(
            settings.target,
            Target::EmbeddedEmulator {
                seed: None,
                data_dir: Some(PathBuf::from("/var/lib/hi")),
                fixtures: None,
                expose: None,
            }
        );
        let aws = ServeArgs {
            backend: Some(BackendArg::Aws),
            data_dir: Some(PathBuf::from("/tmp/x")),
            ..ServeArgs::default()
        };
        let error = resolve(&aws, FileConfig::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("--data-dir"), "{error}");
    }

    #[test]
    fn the_confirmation_ttl_is_at_least_a_second_and_at_most_a_day() {
        for (ttl, ok) in [
            (0, false),
            (1, true),
            (86_400, true),
            (86_401, false),
            (u64::MAX, false),
        ] {
            let args = ServeArgs {
                confirmation_ttl_secs: Some(ttl),
                ..ServeArgs::default()
            };
            assert_eq!(resolve(&args, FileConfig::default()).is_ok(), ok, "{ttl}");
        }
    }

    #[test]
    fn the_fixtures_wait_defaults_to_half_a_minute_and_is_capped() {
        let settings = resolve(&ServeArgs::default(), FileConfig::default()).unwrap();
        assert_eq!(settings.fixtures_wait, Duration::from_secs(30));
        for (secs, ok) in [(0, true), (600, true), (601, false), (u64::MAX, false)] {
            let args = ServeArgs {
                fixtures_wait_secs: Some(secs),
                ..ServeArgs::default()
            };
            assert_eq!(resolve(&args, FileConfig::default()).is_ok(), ok, "{secs}");
        }
        let file = FileConfig {
            fixtures_wait_secs: Some(5),
            ..FileConfig::default()
        };
        let settings = resolve(&ServeArgs::default(), file).unwrap();
        assert_eq!(settings.fixtures_wait, Duration::from_secs(5));
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected() {
        let dir = std::env::temp_dir().join(format!("hi-mcp-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "backend = \"aws\"\nallow_writes = true\n").unwrap();
        let error = read_file(&path).unwrap_err().to_string();
        assert!(error.contains("allow_writes"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
