//! Shared state handed to every handler through axum's `State`.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use tessera_ingest::{BatchService, Ingestor, Limits};
use tessera_schema::SchemaRegistry;
use tessera_store::Store;

use crate::auth::AuthMode;
use crate::batch_worker::{self, BatchKick};
use crate::export_jobs::ExportJobs;
use crate::metrics::Metrics;
use crate::retention::Retention;
use crate::system_jobs::SystemJobs;

/// Everything a handler may need: one shared [`Services`], so the clone every request makes
/// (axum's `State` extractor) is one reference count, not one per service and channel.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct Services {
    /// The storage backend.
    pub store: Arc<dyn Store>,
    /// How callers are authenticated.
    pub auth: Arc<AuthMode>,
    /// HTTP metrics registry.
    pub metrics: Metrics,
    /// XDM schema registry.
    pub schemas: SchemaRegistry,
    /// Catalog and ingestion.
    pub ingest: Ingestor,
    /// Batch ingestion.
    pub batches: BatchService,
    /// Wakes the batch worker.
    pub batch_kick: BatchKick,
    /// Merge policies per sandbox, revalidated on each use.
    pub policies: Arc<tessera_profile::policy::PolicyCache>,
    /// Profile system jobs (dataset and batch deletion).
    pub system_jobs: SystemJobs,
    /// Profile export jobs.
    pub export_jobs: ExportJobs,
    /// Wakes the retention sweeper (expired events).
    pub retention: Retention,
    /// Segment jobs (batch evaluation).
    pub segment_jobs: crate::segment_jobs::SegmentJobs,
    /// Compiled synchronous (edge) segments per sandbox, evaluated on lookup.
    pub edge_segments: Arc<tessera_segment::edge::EdgeSegments>,
    /// Segmentation schedules.
    pub schedules: crate::schedules::Schedules,
    /// Segment previews and estimates.
    pub previews: crate::previews::Previews,
    /// Wakes the computed-attribute backfill worker.
    pub computed: crate::computed_worker::ComputedKick,
}

/// What the background workers wait on; [`crate::Server::bind`] hands each to its worker.
pub struct Wakes {
    /// Batch ingestion worker (see [`crate::batch_worker::spawn`]).
    pub batches: Receiver<()>,
    /// System-job worker (see [`crate::system_jobs::spawn`]).
    pub system_jobs: Receiver<()>,
    /// Export-job worker (see [`crate::export_jobs::spawn`]).
    pub export_jobs: Receiver<()>,
    /// Retention sweeper (see [`crate::retention::spawn`]).
    pub retention: Receiver<()>,
    /// Segment-job worker (see [`crate::segment_jobs::spawn`]).
    pub segment_jobs: Receiver<()>,
    /// Streaming-segmentation worker (see [`crate::segment_stream::spawn`]).
    pub segment_stream: Receiver<()>,
    /// Kicks that worker: the backfill worker does once attributes became live, so the
    /// computed-attribute consumer hands ingestion their digester before the next events.
    pub segment_stream_kick: crate::segment_stream::StreamKick,
    /// Scheduler (see [`crate::schedules::spawn`]).
    pub schedules: Receiver<()>,
    /// Preview runner (see [`crate::previews::spawn`]).
    pub previews: crate::previews::Wake,
    /// Computed-attribute backfill worker (see [`crate::computed_worker::spawn`]).
    pub computed: Receiver<()>,
}

impl AppState {
    /// Builds the state around an opened store; uploaded batch files go to `files_dir`,
    /// profile exports to `exports_dir`. Returns what the background workers wait on.
    pub fn new(
        store: Arc<dyn Store>,
        auth: AuthMode,
        files_dir: PathBuf,
        exports_dir: PathBuf,
        limits: Limits,
        preview: crate::previews::PreviewConfig,
    ) -> (Self, Wakes) {
        let schemas = SchemaRegistry::new(Arc::clone(&store));
        let usage_store = Arc::clone(&store);
        schemas.set_usage_check(Arc::new(move |tenant, schema_id| {
            // Refusing a delete is the safe answer when the catalog cannot be read.
            tessera_ingest::dataset::uses_schema(usage_store.as_ref(), tenant, schema_id)
                .unwrap_or(true)
        }));
        let max_graph_identities = limits.max_graph_identities;
        let ingest = Ingestor::new(Arc::clone(&store), schemas.clone(), limits);
        // Applied records wake the streaming-segmentation worker at once; it also keeps
        // computed attributes current, before evaluating segments that may read them.
        let (stream_kick, segment_stream_wake) = crate::segment_stream::channel();
        let segment_stream_kick = stream_kick.clone();
        ingest.set_on_applied(Box::new(move || stream_kick.kick()));
        let (batch_kick, batches_wake) = batch_worker::channel();
        let (system_jobs, system_jobs_wake) = SystemJobs::new(Arc::clone(&store));
        let (export_jobs, export_jobs_wake) = ExportJobs::new(Arc::clone(&store), exports_dir);
        let (retention, retention_wake) = Retention::new(Arc::clone(&store));
        let (segment_jobs, segment_jobs_wake) =
            crate::segment_jobs::SegmentJobs::new(Arc::clone(&store), max_graph_identities);
        let (schedules, schedules_wake) = crate::schedules::Schedules::new(Arc::clone(&store));
        let (previews, previews_wake) =
            crate::previews::Previews::new(Arc::clone(&store), max_graph_identities, preview);
        let (computed, computed_wake) = crate::computed_worker::channel();
        let metrics = Metrics::new(Arc::clone(&store), ingest.recent_events());
        let state = Self(Arc::new(Services {
            schedules,
            previews,
            computed,
            system_jobs,
            export_jobs,
            retention,
            segment_jobs,
            edge_segments: Arc::new(tessera_segment::edge::EdgeSegments::new()),
            batches: BatchService::new(ingest.clone(), files_dir),
            batch_kick,
            ingest,
            schemas,
            store,
            auth: Arc::new(auth),
            metrics,
            policies: Arc::new(tessera_profile::policy::PolicyCache::new()),
        }));
        let wakes = Wakes {
            batches: batches_wake,
            system_jobs: system_jobs_wake,
            export_jobs: export_jobs_wake,
            retention: retention_wake,
            segment_jobs: segment_jobs_wake,
            segment_stream: segment_stream_wake,
            segment_stream_kick,
            schedules: schedules_wake,
            previews: previews_wake,
            computed: computed_wake,
        };
        (state, wakes)
    }
}
