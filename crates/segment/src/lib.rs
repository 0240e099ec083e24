//! Segmentation: audiences defined in PQL, evaluated over profiles.
//!
//! - [`definition`]: segment definitions as stored (the `/segment/definitions` resource), and
//!   their validated creation, change and deletion.
//! - [`dependency`]: segment of segments — the `inSegment` graph, kept acyclic, with stored
//!   reverse edges (who depends on a definition).
//! - [`membership`]: per profile (identity graph) and segment, `realized` / `existing` /
//!   `exited` with the last qualification time; transitions are a pure function.
//! - [`batch`]: evaluation of many segments over every profile of a sandbox in one pass (one
//!   merge per profile and merge policy), the engine behind `/segment/jobs`.
//! - [`computed`]: computed attributes — definitions, incremental per-profile state kept by
//!   a change-feed consumer, backfill, and the values segment evaluation reads.
//! - [`streaming`]: the change-feed consumer re-evaluating continuous segments of each touched
//!   profile, and timers re-evaluating when a time window flips.
//!
//! Layering: above `profile` (merged profiles, events, merge policies) and beside `ingest`,
//! whose change feed carries membership changes to consumers (activation) — the one sideways
//! dependency, because the change feed is the system's single ordered log.

pub mod batch;
pub mod computed;
pub mod definition;
pub mod dependency;
pub mod edge;
mod error;
pub mod lookback;
pub mod membership;
pub mod streaming;

pub use error::{Error, Result};
