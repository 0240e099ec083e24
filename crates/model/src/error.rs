//! Errors raised while validating the shared vocabulary types.

/// A value that cannot become one of the model's validated types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The organisation id is empty, too long or contains control characters.
    #[error("invalid organization id {value:?}: {reason}")]
    InvalidOrgId {
        /// The value as received.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The sandbox name breaks the `[a-z0-9-]{1,64}` rule.
    #[error("invalid sandbox name {value:?}: {reason}")]
    InvalidSandboxName {
        /// The value as received.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
