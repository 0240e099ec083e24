//! `health`: `GET /health`, the server's cheapest endpoint (no store access, tiny JSON body).
//! Its throughput and latency are the ceiling every other scenario is compared with: the cost
//! of HTTP, routing, middleware and the load tool itself on this machine.

use rand_chacha::ChaCha8Rng;

use super::Availability;
use crate::harness::client::{RequestSource, RequestSpec};

pub(crate) const MEASURES: &str = "GET /health, the reference ceiling";

pub(crate) fn availability() -> Availability {
    Availability::Available
}

/// Always the same request.
pub(crate) struct Health;

impl RequestSource for Health {
    fn next_request(&self, _rng: &mut ChaCha8Rng) -> RequestSpec {
        RequestSpec::get("/health")
    }
}
