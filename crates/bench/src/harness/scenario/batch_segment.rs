//! `batch-segment`: a segment job over every profile of a loaded data set
//! (DESIGN §7: 1,000,000 profiles × 20 segments ≤ 60 s); reports job duration.
//!
//! Not available yet: it needs ingestion, segment definitions and segment jobs.

use super::Availability;

pub(crate) const MEASURES: &str = "batch segmentation job duration";

pub(crate) fn availability() -> Availability {
    Availability::NotAvailable("needs segment definitions and segment jobs")
}
