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
    /// A `property` filter of an event lookup does not parse.
    #[error("property filter {filter:?} is invalid: {reason}")]
    InvalidFilter {
        /// The filter as sent.
        filter: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More `property` filters than an event lookup accepts.
    #[error("at most {max} property filters are allowed, got {count}")]
    TooManyFilters {
        /// Filters sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A page cursor that this server did not issue (or that was altered).
    #[error("the page cursor {cursor:?} is not valid")]
    InvalidCursor {
        /// The cursor as sent.
        cursor: String,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
