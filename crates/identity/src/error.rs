//! Errors of the identity service.

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// A stored identity or graph document does not decode.
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Kind of document.
        what: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// An XID that does not decode.
    #[error("invalid XID {0:?}")]
    InvalidXid(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
