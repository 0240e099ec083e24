//! Server configuration: one struct, built once at start from the config file, environment
//! (read by the CLI, which lists every `TESSERA_*` variable) and flags, then validated.
//!
//! File format (TOML, unknown fields rejected so typos fail loudly):
//!
//! ```toml
//! version = 1
//! [server]
//! listen = "0.0.0.0:8080"
//! data_dir = "/var/lib/tessera"
//! durability = "sync"          # or "relaxed"
//! cache_mb = 256                # block cache of the embedded store (at least 8)
//! row_cache_mb = 512            # row cache of identities, graphs, views (0 turns it off)
//!
//! [[auth.keys]]
//! client_id = "tessera-0123456789abcdef"
//! secret_hash = "sha256$<salt hex>$<digest hex>"
//! grants = [{ org = "ACME@AdobeOrg", sandboxes = ["*"], role = "admin" }]
//!
//! [retention]
//! sweep_interval_secs = 600    # how often expired events are deleted (at least 1)
//!
//! [segmentation]
//! preview_sample_size = 1000000 # previews read every profile up to this many, then sample
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tessera_model::{OrgId, SandboxName};
use tessera_store::Durability;

use crate::auth::{ApiKey, AuthMode, Grant, KeyRing, Role, SandboxSet, SecretHash};

/// The only config file version this build reads.
const CONFIG_VERSION: u32 = 1;

/// A configuration that cannot be used; the message says which setting and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Parser message with line and column.
        message: String,
    },
    /// A value is not acceptable.
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        /// Dotted path of the setting.
        setting: String,
        /// Why.
        reason: String,
    },
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default = "default_version")]
    version: u32,
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    retention: FileRetention,
    #[serde(default)]
    segmentation: FileSegmentation,
}

/// `[segmentation]`: previews and estimates.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSegmentation {
    preview_sample_size: Option<u64>,
}

/// `[retention]`: the sweeper deleting events past their dataset's profile TTL.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRetention {
    sweep_interval_secs: Option<u64>,
}

/// `[limits]`: ingestion and identity-graph limits (AEP's defaults when absent).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_record_bytes: Option<usize>,
    max_event_bytes: Option<usize>,
    max_identities_per_record: Option<usize>,
    max_graph_identities: Option<usize>,
    recent_events: Option<usize>,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            version: CONFIG_VERSION,
            server: FileServer::default(),
            auth: FileAuth::default(),
            limits: FileLimits::default(),
            retention: FileRetention::default(),
            segmentation: FileSegmentation::default(),
        }
    }
}

fn default_version() -> u32 {
    CONFIG_VERSION
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    durability: Option<Durability>,
    cache_mb: Option<u64>,
    row_cache_mb: Option<u64>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    #[serde(default)]
    keys: Vec<FileKey>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    client_id: String,
    secret_hash: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    grants: Vec<FileGrant>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGrant {
    org: String,
    sandboxes: Vec<String>,
    role: Role,
}

/// Values given on the command line or in the environment; they override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen` / `TESSERA_LISTEN`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir` / `TESSERA_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--durability` / `TESSERA_DURABILITY`.
    pub durability: Option<Durability>,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Embedded store directory.
    pub data_dir: PathBuf,
    /// Commit acknowledgement rule.
    pub durability: Durability,
    /// Block cache of the embedded store, in bytes.
    pub cache_bytes: u64,
    /// Row cache of the embedded store, in bytes (0: none).
    pub row_cache_bytes: u64,
    /// Authentication.
    pub auth: AuthMode,
    /// Ingestion and identity-graph limits.
    pub limits: tessera_ingest::Limits,
    /// Retention sweeping.
    pub retention: RetentionConfig,
    /// Previews and estimates (sampling).
    pub preview: crate::previews::PreviewConfig,
}

/// How the retention sweeper runs (reads hide expired events whatever these say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Time between periodic sweeps; setting or changing a TTL also starts one.
    pub sweep_interval: std::time::Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            sweep_interval: crate::retention::DEFAULT_SWEEP_INTERVAL,
        }
    }
}

impl ServerConfig {
    /// Default listen address: loopback only.
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:8080";
    /// Default data directory, relative to the working directory.
    pub const DEFAULT_DATA_DIR: &'static str = "./tessera-data";

    /// Reads `path` (if any), applies `overrides`, and validates the result.
    pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        Self::resolve(file, overrides)
    }

    /// Parses config text (for tests and tools).
    pub fn from_toml(text: &str, overrides: Overrides) -> Result<Self, ConfigError> {
        let file = toml::from_str::<FileConfig>(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<inline>"),
            message: e.to_string(),
        })?;
        Self::resolve(file, overrides)
    }

    fn resolve(file: FileConfig, overrides: Overrides) -> Result<Self, ConfigError> {
        if file.version != CONFIG_VERSION {
            return Err(invalid(
                "version",
                format!(
                    "this build reads version {CONFIG_VERSION}, found {}",
                    file.version
                ),
            ));
        }
        let default_listen: SocketAddr = Self::DEFAULT_LISTEN
            .parse()
            .map_err(|_| invalid("server.listen", "built-in default does not parse".into()))?;
        let listen = overrides
            .listen
            .or(file.server.listen)
            .unwrap_or(default_listen);
        let data_dir = overrides
            .data_dir
            .or(file.server.data_dir)
            .unwrap_or_else(|| PathBuf::from(Self::DEFAULT_DATA_DIR));
        let durability = overrides
            .durability
            .or(file.server.durability)
            .unwrap_or_default();
        let cache_bytes = match file.server.cache_mb {
            Some(mb) if mb < 8 => {
                return Err(invalid("server.cache_mb", "must be at least 8".into()))
            }
            Some(mb) => mb.saturating_mul(1024 * 1024),
            None => tessera_store::StoreOptions::default().cache_bytes,
        };
        let row_cache_bytes = file.server.row_cache_mb.map_or(
            tessera_store::StoreOptions::default().row_cache_bytes,
            |mb| mb.saturating_mul(1024 * 1024),
        );
        let keys = file
            .auth
            .keys
            .into_iter()
            .enumerate()
            .map(|(index, key)| parse_key(index, key))
            .collect::<Result<Vec<_>, _>>()?;
        let auth = if keys.is_empty() {
            if !listen.ip().is_loopback() {
                return Err(invalid(
                    "server.listen",
                    format!(
                        "{listen} is not a loopback address; without [[auth.keys]] the server runs \
                         in dev mode and only binds loopback (create a key with `tessera keys new`)"
                    ),
                ));
            }
            AuthMode::Dev
        } else {
            AuthMode::Keys(KeyRing::new(keys).map_err(|reason| invalid("auth.keys", reason))?)
        };
        let defaults = tessera_ingest::Limits::default();
        let positive = |setting: &str, value: Option<usize>, default: usize| match value {
            Some(0) => Err(invalid(setting, "must be at least 1".into())),
            Some(value) => Ok(value),
            None => Ok(default),
        };
        let limits = tessera_ingest::Limits {
            max_record_bytes: positive(
                "limits.max_record_bytes",
                file.limits.max_record_bytes,
                defaults.max_record_bytes,
            )?,
            max_event_bytes: positive(
                "limits.max_event_bytes",
                file.limits.max_event_bytes,
                defaults.max_event_bytes,
            )?,
            max_identities: positive(
                "limits.max_identities_per_record",
                file.limits.max_identities_per_record,
                defaults.max_identities,
            )?,
            max_graph_identities: positive(
                "limits.max_graph_identities",
                file.limits.max_graph_identities,
                defaults.max_graph_identities,
            )?,
            recent_events: file.limits.recent_events.unwrap_or(defaults.recent_events),
            ..defaults
        };
        let retention = match file.retention.sweep_interval_secs {
            Some(0) => {
                return Err(invalid(
                    "retention.sweep_interval_secs",
                    "must be at least 1".into(),
                ))
            }
            Some(secs) => RetentionConfig {
                sweep_interval: std::time::Duration::from_secs(secs),
            },
            None => RetentionConfig::default(),
        };
        let preview = match file.segmentation.preview_sample_size {
            Some(0) => {
                return Err(invalid(
                    "segmentation.preview_sample_size",
                    "must be at least 1".into(),
                ))
            }
            Some(sample_size) => crate::previews::PreviewConfig { sample_size },
            None => crate::previews::PreviewConfig::default(),
        };
        Ok(Self {
            listen,
            data_dir,
            durability,
            cache_bytes,
            row_cache_bytes,
            auth,
            limits,
            retention,
            preview,
        })
    }
}

fn invalid(setting: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_owned(),
        reason,
    }
}

fn parse_key(index: usize, key: FileKey) -> Result<ApiKey, ConfigError> {
    let at = |field: &str| format!("auth.keys[{index}].{field}");
    if key.client_id.trim().is_empty() {
        return Err(invalid(&at("client_id"), "must not be empty".into()));
    }
    let secret = SecretHash::parse(&key.secret_hash).map_err(|r| invalid(&at("secret_hash"), r))?;
    if key.grants.is_empty() {
        return Err(invalid(
            &at("grants"),
            "a key needs at least one grant".into(),
        ));
    }
    let grants = key
        .grants
        .into_iter()
        .enumerate()
        .map(|(g, grant)| {
            let org = OrgId::parse(&grant.org)
                .map_err(|e| invalid(&at(&format!("grants[{g}].org")), e.to_string()))?;
            let sandboxes = if grant.sandboxes.iter().any(|s| s == "*") {
                SandboxSet::All
            } else if grant.sandboxes.is_empty() {
                return Err(invalid(
                    &at(&format!("grants[{g}].sandboxes")),
                    "list sandbox names or \"*\"".into(),
                ));
            } else {
                SandboxSet::Only(
                    grant
                        .sandboxes
                        .iter()
                        .map(|s| SandboxName::parse(s))
                        .collect::<Result<_, _>>()
                        .map_err(|e| {
                            invalid(&at(&format!("grants[{g}].sandboxes")), e.to_string())
                        })?,
                )
            };
            Ok(Grant {
                org,
                sandboxes,
                role: grant.role,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ApiKey {
        client_id: key.client_id,
        secret,
        grants,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_dev_mode_on_loopback() {
        let config = ServerConfig::load(None, Overrides::default()).unwrap();
        assert!(matches!(config.auth, AuthMode::Dev));
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.durability, Durability::Sync);
    }

    #[test]
    fn dev_mode_refuses_public_address() {
        let overrides = Overrides {
            listen: Some("0.0.0.0:8080".parse().unwrap()),
            ..Overrides::default()
        };
        let error = ServerConfig::load(None, overrides).unwrap_err().to_string();
        assert!(error.contains("loopback"), "{error}");
    }

    #[test]
    fn keys_allow_public_address_and_flags_override_file() {
        let hash = SecretHash::new("s").encode();
        let text = format!(
            "[server]\nlisten = \"0.0.0.0:9000\"\ndurability = \"relaxed\"\n\
             [[auth.keys]]\nclient_id = \"c1\"\nsecret_hash = \"{hash}\"\n\
             grants = [{{ org = \"A@AdobeOrg\", sandboxes = [\"*\"], role = \"admin\" }}]\n"
        );
        let config = ServerConfig::from_toml(&text, Overrides::default()).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.durability, Durability::Relaxed);
        assert!(matches!(config.auth, AuthMode::Keys(ref ring) if ring.len() == 1));
        let overridden = ServerConfig::from_toml(
            &text,
            Overrides {
                listen: Some("127.0.0.1:1".parse().unwrap()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(overridden.listen.port(), 1);
    }

    #[test]
    fn errors_name_the_setting() {
        let unknown = ServerConfig::from_toml("[server]\nlisen = \"x\"\n", Overrides::default());
        assert!(unknown.unwrap_err().to_string().contains("lisen"));
        let bad_hash = ServerConfig::from_toml(
            "[[auth.keys]]\nclient_id = \"c\"\nsecret_hash = \"plain\"\n\
             grants = [{ org = \"A@AdobeOrg\", sandboxes = [\"*\"], role = \"read\" }]\n",
            Overrides::default(),
        );
        assert!(bad_hash
            .unwrap_err()
            .to_string()
            .contains("auth.keys[0].secret_hash"));
        let bad_sandbox = ServerConfig::from_toml(
            &format!(
                "[[auth.keys]]\nclient_id = \"c\"\nsecret_hash = \"{}\"\n\
                 grants = [{{ org = \"A@AdobeOrg\", sandboxes = [\"Prod\"], role = \"read\" }}]\n",
                SecretHash::new("s").encode()
            ),
            Overrides::default(),
        );
        assert!(bad_sandbox
            .unwrap_err()
            .to_string()
            .contains("auth.keys[0].grants[0].sandboxes"));
        let zero =
            ServerConfig::from_toml("[limits]\nmax_graph_identities = 0\n", Overrides::default());
        assert!(zero
            .unwrap_err()
            .to_string()
            .contains("limits.max_graph_identities"));
        let set = ServerConfig::from_toml(
            "[limits]\nmax_graph_identities = 150\n",
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(set.limits.max_graph_identities, 150);
        assert_eq!(
            set.limits.recent_events,
            tessera_ingest::recent::DEFAULT_CAPACITY
        );
        let none_held =
            ServerConfig::from_toml("[limits]\nrecent_events = 0\n", Overrides::default()).unwrap();
        assert_eq!(none_held.limits.recent_events, 0, "0 holds no events");
        assert_eq!(
            set.limits.max_event_bytes,
            10 * 1024,
            "unset limits keep AEP's defaults"
        );
        let zero_interval = ServerConfig::from_toml(
            "[retention]\nsweep_interval_secs = 0\n",
            Overrides::default(),
        );
        assert!(zero_interval
            .unwrap_err()
            .to_string()
            .contains("retention.sweep_interval_secs"));
        let interval = ServerConfig::from_toml(
            "[retention]\nsweep_interval_secs = 30\n",
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(interval.retention.sweep_interval.as_secs(), 30);
        let small_cache = ServerConfig::from_toml("[server]\ncache_mb = 4\n", Overrides::default());
        assert!(small_cache
            .unwrap_err()
            .to_string()
            .contains("server.cache_mb"));
        let cache =
            ServerConfig::from_toml("[server]\ncache_mb = 1024\n", Overrides::default()).unwrap();
        assert_eq!(cache.cache_bytes, 1024 * 1024 * 1024);
        let rows =
            ServerConfig::from_toml("[server]\nrow_cache_mb = 0\n", Overrides::default()).unwrap();
        assert_eq!(rows.row_cache_bytes, 0, "0 turns the row cache off");
        assert_eq!(
            cache.row_cache_bytes,
            tessera_store::StoreOptions::default().row_cache_bytes
        );
        assert_eq!(
            interval.cache_bytes,
            tessera_store::StoreOptions::default().cache_bytes,
            "the store's block cache by default"
        );
        assert_eq!(
            interval.preview.sample_size, 1_000_000,
            "AEP's sample size by default"
        );
        let zero_sample = ServerConfig::from_toml(
            "[segmentation]\npreview_sample_size = 0\n",
            Overrides::default(),
        );
        assert!(zero_sample
            .unwrap_err()
            .to_string()
            .contains("segmentation.preview_sample_size"));
        let sample = ServerConfig::from_toml(
            "[segmentation]\npreview_sample_size = 5\n",
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(sample.preview.sample_size, 5);
        let bad_version = ServerConfig::from_toml("version = 2\n", Overrides::default());
        assert!(bad_version.unwrap_err().to_string().contains("version"));
    }
}
