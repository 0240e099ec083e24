//! The benchmark scenarios, one module each. A scenario says what it measures, whether the
//! server has what it needs ([`Availability`]), and, when it runs, prepares the server (loads
//! data) and returns the [`RequestSource`] the load generator draws from. Scenarios whose
//! feature does not exist yet report "not available"; later issues fill them in.

mod batch_segment;
mod health;
mod ingest_stream;
mod lookup;
mod lookup_events;
mod streaming_segment;

use std::sync::Arc;

use super::client::{RequestSource, Target};
use crate::error::Result;

/// Whether a scenario can run against this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// It can run.
    Available,
    /// Its feature is missing; the reason says which.
    NotAvailable(&'static str),
}

/// The scenarios of `tessera bench --scenario`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// `GET /health`: the reference ceiling.
    Health,
    /// Generated events through the streaming inlet.
    IngestStream,
    /// Profile lookup by a random identity of a random person.
    Lookup,
    /// Experience events of a profile.
    LookupEvents,
    /// Batch segmentation job.
    BatchSegment,
    /// Ingest, then membership visible.
    StreamingSegment,
}

/// What scenario preparation may use.
#[derive(Debug, Clone)]
pub struct ScenarioContext {
    /// The server.
    pub target: Arc<Target>,
    /// People in the data set to load.
    pub people: u64,
    /// Seed of the data set.
    pub seed: u64,
    /// Records per request, for scenarios that send records.
    pub records_per_request: usize,
    /// Computed attributes `ingest-stream` defines before the load.
    pub computed_attributes: usize,
}

impl Scenario {
    /// Every scenario, in documentation order.
    pub const ALL: [Scenario; 6] = [
        Scenario::Health,
        Scenario::IngestStream,
        Scenario::Lookup,
        Scenario::LookupEvents,
        Scenario::BatchSegment,
        Scenario::StreamingSegment,
    ];

    /// The `--scenario` value.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Health => "health",
            Scenario::IngestStream => "ingest-stream",
            Scenario::Lookup => "lookup",
            Scenario::LookupEvents => "lookup-events",
            Scenario::BatchSegment => "batch-segment",
            Scenario::StreamingSegment => "streaming-segment",
        }
    }

    /// One line on what the scenario measures.
    pub fn measures(self) -> &'static str {
        match self {
            Scenario::Health => health::MEASURES,
            Scenario::IngestStream => ingest_stream::MEASURES,
            Scenario::Lookup => lookup::MEASURES,
            Scenario::LookupEvents => lookup_events::MEASURES,
            Scenario::BatchSegment => batch_segment::MEASURES,
            Scenario::StreamingSegment => streaming_segment::MEASURES,
        }
    }

    /// Whether this build can run it.
    pub fn availability(self) -> Availability {
        match self {
            Scenario::Health => health::availability(),
            Scenario::IngestStream => ingest_stream::availability(),
            Scenario::Lookup => lookup::availability(),
            Scenario::LookupEvents => lookup_events::availability(),
            Scenario::BatchSegment => batch_segment::availability(),
            Scenario::StreamingSegment => streaming_segment::availability(),
        }
    }

    /// Prepares the server and returns the request source. Only called when
    /// [`Scenario::availability`] is `Available`; `None` otherwise.
    pub async fn prepare(
        self,
        context: &ScenarioContext,
    ) -> Result<Option<Arc<dyn RequestSource>>> {
        Ok(match self {
            Scenario::Health => Some(Arc::new(health::Health)),
            Scenario::IngestStream => Some(Arc::new(ingest_stream::prepare(context).await?)),
            Scenario::Lookup => Some(Arc::new(lookup::prepare(context).await?)),
            Scenario::LookupEvents => Some(Arc::new(lookup_events::prepare(context).await?)),
            Scenario::StreamingSegment => {
                Some(Arc::new(streaming_segment::prepare(context).await?))
            }
            Scenario::BatchSegment => None,
        })
    }
}
