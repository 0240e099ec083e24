//! `lookup`: `GET /data/core/ups/access/entities` by a random identity of a random person of
//! the generated data set: merge-on-read latency (DESIGN §7: p99 ≤ 2 ms at 1,000 req/s).
//!
//! Not available yet: it needs ingestion (to load the data) and the profile access API. When
//! they exist, preparation loads a generated data set and the request source draws identities
//! from its ground truth.

use super::Availability;

pub(crate) const MEASURES: &str = "profile lookup by any identity (merge on read)";

pub(crate) fn availability() -> Availability {
    Availability::NotAvailable("needs ingestion and the profile access API")
}
