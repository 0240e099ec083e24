//! Errors of the profile store.

/// Why a profile operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// Identity resolution failed.
    #[error(transparent)]
    Identity(#[from] tessera_identity::Error),
    /// A stored document does not decode (corruption or a format this build does not know).
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Which kind of document.
        what: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// A merge policy (or a change to one) breaks a rule; nothing was saved.
    #[error("{0}")]
    InvalidPolicy(String),
    /// A concurrent change won; re-read and retry.
    #[error("a concurrent change to the same data won; retry")]
    Conflict,
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
