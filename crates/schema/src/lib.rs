//! Tessera's XDM schema registry: what data *is*.
//!
//! What lives here: the built-in XDM classes (Individual Profile, ExperienceEvent) and
//! standard field groups, shipped as JSON documents under `xdm/`; tenant schemas composed
//! from a class, field groups and custom fields under `_{TENANT_ID}`; identity descriptors;
//! union schemas per class; and the compiled validator ingestion runs every record through.
//! What does not: HTTP (the server crate renders [`Error`] and the documents), datasets and
//! ingestion (the ingest crate calls [`SchemaRegistry::compiled`]).
//!
//! Invariant upheld (DESIGN.md §6): 6, bad input changes nothing — a record is validated
//! before anything is written and every violation names its JSON pointer, a stable code and
//! a reason; a schema change that would break a union is refused as a whole.
//!
//! Validation rules are documented in `README.md` and in [`validator`]'s module docs:
//! unknown fields are rejected, `null` counts as absent, XDM integer types have ranges.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::json;
//! use tessera_model::Tenant;
//! use tessera_schema::{SchemaRegistry, ViolationCode};
//!
//! let dir = tempfile::tempdir()?;
//! let store = tessera_store::EmbeddedStore::open(dir.path(), Default::default())?;
//! let registry = SchemaRegistry::new(Arc::new(store));
//! let tenant = Tenant::parse("ACME@AdobeOrg", "prod")?;
//! let schema = registry.create_schema(&tenant, json!({
//!     "title": "Web events",
//!     "allOf": [
//!         {"$ref": "https://ns.adobe.com/xdm/context/experienceevent"},
//!         {"$ref": "https://ns.adobe.com/xdm/context/experienceevent-web"}
//!     ]
//! }))?;
//! let compiled = registry.compiled(&tenant, schema["meta:altId"].as_str().unwrap_or_default())?;
//! let violations = compiled
//!     .validate(&json!({"_id": "e1", "web": {"webPageDetails": {"URL": "not a uri"}}}))
//!     .unwrap_err();
//! assert_eq!(violations[0].path, "/web/webPageDetails/URL");
//! assert_eq!(violations[0].code, ViolationCode::BadFormat);
//! assert_eq!(violations[1].path, "/timestamp");
//! assert_eq!(violations[1].code, ViolationCode::MissingRequired);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builtin;
mod compose;
mod descriptor;
mod error;
mod format;
pub mod ids;
pub mod patch;
mod registry;
mod schema;
pub mod validator;
mod violation;

pub use builtin::{
    Builtin, Builtins, EXPERIENCE_EVENT_CLASS, IDENTITY_MAP_FIELD_GROUP, PROFILE_CLASS,
    SEGMENTATION_FIELD_GROUP,
};
pub use descriptor::{IdentityDescriptor, IDENTITY_DESCRIPTOR};
pub use error::{Error, Result, UnionConflict};
pub use registry::{builtin_full_form, SchemaRegistry, UsageCheck};
pub use schema::{CompiledSchema, XdmClass};
pub use violation::{Violation, ViolationCode};
