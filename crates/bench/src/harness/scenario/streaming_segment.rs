//! `streaming-segment`: ingest an event that qualifies a profile, then poll its membership;
//! reports acknowledged → membership-visible latency (DESIGN §7: ≤ 10 ms p99).
//!
//! Not available yet: it needs the streaming inlet and streaming segmentation.

use super::Availability;

pub(crate) const MEASURES: &str = "event acknowledged to membership visible";

pub(crate) fn availability() -> Availability {
    Availability::NotAvailable("needs the streaming inlet and streaming segmentation")
}
