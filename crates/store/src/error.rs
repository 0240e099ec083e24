//! Storage errors. Each variant says whether the caller may retry.

use crate::table::Table;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The underlying engine failed (I/O, corruption).
    #[error("storage engine error: {0}")]
    Engine(String),
    /// An fsync or journal write failed earlier; the store refuses writes until restart
    /// rather than acknowledge data it cannot promise to keep.
    #[error("store is poisoned after a failed write; restart required")]
    Poisoned,
    /// A precondition of a write batch did not hold; nothing was written. Retry after
    /// re-reading.
    #[error("write conflict on table {table:?}: a precondition no longer holds")]
    Conflict {
        /// The table whose key changed underneath the writer.
        table: Table,
    },
    /// A stored key did not decode as the caller expected.
    #[error("malformed key at byte {offset}: {reason}")]
    MalformedKey {
        /// Offset into the key where decoding failed.
        offset: usize,
        /// What was expected there.
        reason: &'static str,
    },
    /// The data directory was written by a newer, incompatible format.
    #[error(
        "data directory format version {found} is not supported (this build reads {supported})"
    )]
    UnsupportedFormat {
        /// Version found on disk.
        found: u32,
        /// Version this build writes.
        supported: u32,
    },
}

impl From<fjall::Error> for Error {
    fn from(error: fjall::Error) -> Self {
        match error {
            fjall::Error::Poisoned => Self::Poisoned,
            other => Self::Engine(other.to_string()),
        }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
