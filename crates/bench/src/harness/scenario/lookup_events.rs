//! `lookup-events`: experience events of a random person's profile
//! (`GET /data/core/ups/access/entities` with `schema.name=_xdm.context.experienceevent`).
//!
//! Not available yet: it needs ingestion and the events read path.

use super::Availability;

pub(crate) const MEASURES: &str = "experience events of a profile by identity";

pub(crate) fn availability() -> Availability {
    Availability::NotAvailable("needs ingestion and the experience-event access API")
}
