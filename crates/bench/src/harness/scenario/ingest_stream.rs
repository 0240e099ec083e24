//! `ingest-stream`: generated events posted one by one to the streaming inlet
//! (`POST /collection/{connectionId}` with the XDM envelope), acknowledged durable, with
//! identity stitching; reports events/s and acknowledgement latency.
//!
//! Not available yet: it needs schemas, datasets and the streaming inlet. When they exist,
//! preparation creates the schemas and datasets of the manifest, and the request source
//! streams `web-events.jsonl` of a generated data set (`--people`, `--seed`) wrapped in
//! envelopes.

use super::Availability;

pub(crate) const MEASURES: &str = "streaming ingestion with stitching, events/s and ack latency";

pub(crate) fn availability() -> Availability {
    Availability::NotAvailable("needs the streaming inlet (POST /collection/{connectionId})")
}
