//! Errors of segmentation.

/// Why a segmentation operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// Reading profiles failed.
    #[error(transparent)]
    Profile(#[from] tessera_profile::Error),
    /// Identity resolution failed.
    #[error(transparent)]
    Identity(#[from] tessera_identity::Error),
    /// Writing to the change feed failed.
    #[error(transparent)]
    Ingest(#[from] tessera_ingest::Error),
    /// A definition (or a change to one) is invalid; nothing was saved.
    #[error("{message}")]
    Invalid {
        /// Field at fault, e.g. `expression.value`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No such segment definition.
    #[error("segment definition {0} does not exist")]
    NotFound(String),
    /// The expression reads `inSegment("{id}")` and no definition `id` exists in the sandbox.
    #[error("inSegment references segment definition {id}, which does not exist in this sandbox")]
    UnknownDependency {
        /// The referenced id.
        id: String,
    },
    /// Saving would make segments depend on themselves through `inSegment`.
    #[error("inSegment would make a dependency cycle: {}", .path.join(" -> "))]
    Cycle {
        /// The cycle, starting and ending with the definition being saved.
        path: Vec<String>,
    },
    /// The definition cannot be deleted while other definitions read it with `inSegment`.
    #[error("segment definition {id} is used by {} through inSegment; change or delete them first", .dependents.join(", "))]
    InUse {
        /// The definition that was to be deleted.
        id: String,
        /// The definitions that depend on it.
        dependents: Vec<String>,
    },
    /// No such computed attribute.
    #[error("computed attribute {0} does not exist")]
    AttributeNotFound(String),
    /// A PATCH asks for a status change the lifecycle does not allow.
    #[error("status cannot change from {from} to {to}")]
    Transition {
        /// Current status.
        from: &'static str,
        /// Requested status.
        to: &'static str,
    },
    /// Only DRAFT computed attributes can be deleted.
    #[error("computed attribute {id} is {status}; only DRAFT attributes can be deleted (disable it instead)")]
    NotDeletable {
        /// The attribute.
        id: String,
        /// Its status.
        status: &'static str,
    },
    /// A concurrent change won; re-read and retry.
    #[error("a concurrent change to the same data won; retry")]
    Conflict,
    /// A stored document does not decode.
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Which kind of document.
        what: &'static str,
        /// Decoder message.
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
