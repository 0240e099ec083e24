//! The schema registry's one error type. Variants carry the facts a caller (and the HTTP
//! error mapping) needs — ids, JSON pointers, the schemas involved — rather than prose.

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No schema, class, field group, union or descriptor has this id in the tenant.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// `schema`, `class`, `field group`, `union` or `descriptor`.
        kind: &'static str,
        /// The id as given (`$id`, `meta:altId` or `@id`).
        id: String,
    },
    /// The resource (for example a schema title) already exists.
    #[error("{kind} {id:?} already exists")]
    AlreadyExists {
        /// What kind of resource.
        kind: &'static str,
        /// Its id or title.
        id: String,
    },
    /// A schema document is not acceptable; `path` is a JSON pointer into the request body.
    #[error("invalid schema at {path}: {reason}")]
    InvalidSchema {
        /// JSON pointer into the submitted document (`""` for the whole document).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A descriptor is not acceptable.
    #[error("invalid descriptor at {path}: {reason}")]
    InvalidDescriptor {
        /// JSON pointer into the submitted descriptor.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A JSON Patch could not be applied.
    #[error("json patch operation {index} ({op} {path}) failed: {reason}")]
    InvalidPatch {
        /// Index of the failing operation in the patch array.
        index: usize,
        /// The operation name.
        op: String,
        /// Its target pointer.
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// Two parts of one schema (class and field groups, or tenant fields) define the same
    /// field with different types.
    #[error("field {path} is defined as {first_type} by {first} and as {second_type} by {second}")]
    FieldConflict {
        /// JSON pointer of the field (record path, e.g. `/person/name`).
        path: String,
        /// The part that defined it first.
        first: String,
        /// Its type there.
        first_type: String,
        /// The part that redefines it.
        second: String,
        /// Its type there.
        second_type: String,
    },
    /// Two profile-enabled schemas of the same class disagree on a field's type, so their
    /// union cannot exist. Boxed: it is the largest variant and rare.
    #[error("{0}")]
    UnionConflict(Box<UnionConflict>),
    /// The schema is still used (by a dataset) and cannot be deleted.
    #[error("schema {id} is used by a dataset and cannot be deleted")]
    InUse {
        /// The schema `$id`.
        id: String,
    },
    /// The change is not allowed in the resource's current state (e.g. removing the
    /// immutable `union` tag, or changing the tenant id after schemas exist).
    #[error("{0}")]
    InvalidState(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// A stored document did not decode; the data directory holds something this build
    /// does not understand.
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// The decode error.
        reason: String,
    },
}

/// The facts of a union conflict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("union conflict on {class} at {path}: schema {existing} has {existing_type}, schema {incoming} has {incoming_type}")]
pub struct UnionConflict {
    /// The class whose union would break.
    pub class: String,
    /// JSON pointer of the field.
    pub path: String,
    /// The schema already in the union.
    pub existing: String,
    /// Its field type.
    pub existing_type: String,
    /// The schema being added or changed.
    pub incoming: String,
    /// Its field type.
    pub incoming_type: String,
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
