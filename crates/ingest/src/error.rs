//! Errors of catalog and ingestion operations, and the per-record rejection that explains
//! why one record was refused.

use std::fmt;

/// Why a catalog or ingestion call failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// The profile store failed.
    #[error(transparent)]
    Profile(#[from] tessera_profile::Error),
    /// The identity graph failed.
    #[error(transparent)]
    Identity(#[from] tessera_identity::Error),
    /// The schema registry failed or the schema is unknown.
    #[error(transparent)]
    Schema(#[from] tessera_schema::Error),
    /// No dataset with this id in the sandbox.
    #[error("dataset {id} does not exist")]
    DatasetNotFound {
        /// Requested id.
        id: String,
    },
    /// No batch with this id in the sandbox.
    #[error("batch {id} does not exist")]
    BatchNotFound {
        /// Requested id.
        id: String,
    },
    /// No streaming connection (inlet) with this id.
    #[error("streaming connection {id} does not exist")]
    InletNotFound {
        /// Requested id.
        id: String,
    },
    /// A request field is missing or invalid.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Dotted path of the field in the request.
        field: String,
        /// Why.
        reason: String,
    },
    /// The object exists already.
    #[error("{what} {id} already exists")]
    AlreadyExists {
        /// Kind of object.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The operation does not fit the object's state.
    #[error("{0}")]
    InvalidState(String),
    /// A stored document does not decode.
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Kind of document.
        what: &'static str,
        /// Decoder message.
        reason: String,
    },
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Stable codes for refused records; clients may match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// The message is not JSON or not the XDM envelope.
    MalformedMessage,
    /// `header.imsOrgId` names another organisation than the inlet's.
    OrgMismatch,
    /// The dataset named by the message (or the inlet) does not exist.
    UnknownDataset,
    /// The message's schema is not the dataset's schema.
    SchemaMismatch,
    /// The record failed schema validation (see violations).
    ValidationFailed,
    /// The record is larger than the configured limit.
    TooLarge,
    /// The record carries more identities than allowed.
    TooManyIdentities,
    /// No primary identity can be determined.
    MissingPrimaryIdentity,
    /// An identity value is empty or malformed.
    InvalidIdentity,
}

impl RejectionCode {
    /// The code as sent to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::MalformedMessage => "malformed_message",
            RejectionCode::OrgMismatch => "org_mismatch",
            RejectionCode::UnknownDataset => "unknown_dataset",
            RejectionCode::SchemaMismatch => "schema_mismatch",
            RejectionCode::ValidationFailed => "validation_failed",
            RejectionCode::TooLarge => "too_large",
            RejectionCode::TooManyIdentities => "too_many_identities",
            RejectionCode::MissingPrimaryIdentity => "missing_primary_identity",
            RejectionCode::InvalidIdentity => "invalid_identity",
        }
    }
}

/// One problem in a refused record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldProblem {
    /// JSON pointer into the record (`""` for the record itself).
    pub path: String,
    /// Machine code of the problem.
    pub code: String,
    /// Human-readable reason.
    pub message: String,
}

/// Why one record was refused. Nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    /// Stable code.
    pub code: RejectionCode,
    /// Summary.
    pub message: String,
    /// Field-level problems, when the code is about fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<FieldProblem>,
}

impl Rejection {
    /// A rejection without field problems.
    pub fn new(code: RejectionCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    /// A rejection about one field.
    pub fn field(code: RejectionCode, path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code,
            problems: vec![FieldProblem {
                path: path.to_owned(),
                code: code.as_str().to_owned(),
                message: message.clone(),
            }],
            message,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        for problem in &self.problems {
            write!(
                f,
                "; {} {} ({})",
                problem.path, problem.message, problem.code
            )?;
        }
        Ok(())
    }
}
