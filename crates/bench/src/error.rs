//! The crate's one error type. Variants carry the facts a caller needs (path, field, address),
//! not prose; the command entry points wrap them in `anyhow` for the user.

use std::path::PathBuf;

/// Everything the generator and the harness can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A generator or harness setting is out of range.
    #[error("invalid setting {field}: {reason}")]
    InvalidConfig {
        /// The flag or config field at fault.
        field: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("i/o on {}: {source}", path.display())]
    Io {
        /// The file or directory being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding a record or report as JSON failed.
    #[error("json encoding: {0}")]
    Json(#[from] serde_json::Error),
    /// The server URL could not be used.
    #[error("invalid server url {url}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Connecting to or talking with the server failed.
    #[error("http to {addr}: {reason}")]
    Http {
        /// `host:port` of the server.
        addr: String,
        /// What went wrong, from the transport.
        reason: String,
    },
    /// Starting the server process failed.
    #[error("spawning {}: {source}", exe.display())]
    Spawn {
        /// The executable that was started.
        exe: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The spawned or targeted server never answered `GET /ready` with 200.
    #[error("server at {addr} not ready after {waited_ms} ms: {last}")]
    NotReady {
        /// `host:port` of the server.
        addr: String,
        /// How long we waited.
        waited_ms: u64,
        /// The last observation (status, connection error or exit status, and log tail).
        last: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
