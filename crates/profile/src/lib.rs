//! Profile data at rest: the fragment each dataset holds per identity, and the experience
//! events keyed by identity and time.
//!
//! What lives here: key layouts, stored document formats, the upsert deep-merge, the write
//! operations ingestion adds to its atomic batch, the paged, filtered read of a profile's
//! events (`event_query`, `event_filter`), merge policies and the merged profile with its
//! materialized view (`policy`, `merged`, `lookup`, `view`), erasure of a person (`erase`),
//! chunked deletion of a dataset's or a batch's data or of expired events (`purge`), the
//! retention cutoffs of event reads (`event_query`), whole-tenant statistics (`stats`), a
//! resumable walk over every profile (`walk`) and the export of one profile as a projected
//! JSON line (`export`, with `projection` shared by every `fields` parameter). What does not:
//! identity resolution (`identity` crate), export jobs and their files, HTTP (server).
//!
//! Invariants: 1 (the ops returned here are applied in the caller's single atomic batch, so a
//! record, its idempotency index entry and its change-feed entry land together) and 3 (the
//! upsert merge is a pure function of the stored fragment and the patch).

pub mod erase;
mod error;
pub mod event;
pub mod event_filter;
pub mod event_query;
pub mod export;
pub mod fragment;

pub mod lookup;
pub mod merge;
pub mod merged;
pub mod policy;
pub mod projection;
pub mod purge;
pub mod stats;
pub mod view;
pub mod walk;

pub use error::{Error, Result};
pub use tessera_identity::IdentityKey;
