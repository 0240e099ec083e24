//! Prometheus metrics: of the HTTP layer, `tessera_http_requests_total` and
//! `tessera_http_request_duration_seconds`, labelled by method, route template and status; of
//! the change feed, read from the store at each scrape, `tessera_change_feed_head` (number of
//! the newest entry) and `tessera_change_feed_consumer_lag{consumer}` (entries a consumer —
//! computed attributes, streaming segmentation, ... — has not handled yet): a lag that keeps
//! growing means a consumer cannot keep up with ingestion. Of the events ingestion hands the
//! computed-attribute consumer in memory (`tessera_ingest::recent`):
//! `tessera_recent_events_held`, `tessera_recent_events_taken_total{found}` (found `false`:
//! read back from the store), `tessera_recent_events_evicted_total`, and the waits of
//! ingestion for that consumer, `tessera_ingest_consumer_waits_total{outcome}` and
//! `tessera_ingest_consumer_wait_seconds_total`: waits mean acknowledgements were held back
//! because the consumer lagged; `stalled` ones mean it stopped moving.
//!
//! The registry lives in [`Metrics`] (held by the app state), not in a global, so tests can
//! run servers side by side.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tessera_ingest::recent::RecentEvents;
use tessera_store::Store;

/// Labels of every HTTP series. `route` is the matched route template (not the raw path),
/// so ids in paths do not explode cardinality.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Route template, e.g. `/data/foundation/sandbox-management/sandboxes/{name}`.
    pub route: String,
    /// Status code.
    pub status: u16,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~3.3 s in ×2 steps: the lookup path lives in the first buckets.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_05, 2.0, 17,
    ))
}

/// The server's metric registry and handles.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

/// Labels of a change-feed consumer's series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ConsumerLabels {
    consumer: String,
}

/// Reads the change feed's head and every consumer's checkpoint at each scrape.
struct FeedCollector {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for FeedCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FeedCollector")
    }
}

impl Collector for FeedCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let read = tessera_ingest::change_feed::head(self.store.as_ref()).and_then(|head| {
            tessera_ingest::change_feed::consumers(self.store.as_ref()).map(|c| (head, c))
        });
        let (head, consumers) = match read {
            Ok(read) => read,
            Err(error) => {
                // A scrape must still answer with the HTTP series; the gap shows the failure.
                tracing::warn!(%error, "change feed metrics unreadable");
                return Ok(());
            }
        };
        let gauge = ConstGauge::new(i64::try_from(head).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(
            "change_feed_head",
            "Number of the newest change-feed entry",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)?;
        let mut family = encoder.encode_descriptor(
            "change_feed_consumer_lag",
            "Change-feed entries a consumer has not handled yet",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (consumer, checkpoint) in consumers {
            let lag =
                ConstGauge::new(i64::try_from(head.saturating_sub(checkpoint)).unwrap_or(i64::MAX));
            let labels = ConsumerLabels { consumer };
            lag.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Labels of a count by outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Labels of the consumer's takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FoundLabels {
    found: &'static str,
}

/// Reads the hand-over buffer's counts at each scrape.
#[derive(Debug)]
struct RecentCollector {
    recent: Arc<RecentEvents>,
}

impl Collector for RecentCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.recent.stats();
        let held = ConstGauge::new(i64::try_from(stats.held).unwrap_or(i64::MAX));
        held.encode(encoder.encode_descriptor(
            "recent_events_held",
            "Applied events held in memory for the computed-attribute consumer",
            None,
            held.metric_type(),
        )?)?;
        counters(
            &mut encoder,
            "recent_events_taken",
            "Events the computed-attribute consumer looked for in memory, by whether it found them",
            [("true", stats.hits), ("false", stats.misses)]
                .map(|(found, n)| (FoundLabels { found }, n)),
        )?;
        let evicted = ConstCounter::new(stats.evicted);
        evicted.encode(encoder.encode_descriptor(
            "recent_events_evicted",
            "Events dropped from memory before the computed-attribute consumer took them",
            None,
            evicted.metric_type(),
        )?)?;
        counters(
            &mut encoder,
            "ingest_consumer_waits",
            "Acknowledgements held back for the computed-attribute consumer, by outcome",
            [
                ("caught_up", stats.caught_up),
                ("bounded", stats.bounded),
                ("stalled", stats.stalled),
            ]
            .map(|(outcome, n)| (OutcomeLabels { outcome }, n)),
        )?;
        let seconds = ConstCounter::new(stats.waited_micros as f64 / 1e6);
        seconds.encode(encoder.encode_descriptor(
            "ingest_consumer_wait_seconds",
            "Time acknowledgements were held back for the computed-attribute consumer",
            None,
            seconds.metric_type(),
        )?)?;
        Ok(())
    }
}

/// One counter family, a series per label set.
fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (labels, n) in series {
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Metrics {
    /// Creates and registers every series; the change-feed series read `store`, the
    /// hand-over series `recent`.
    pub fn new(store: Arc<dyn Store>, recent: Arc<RecentEvents>) -> Self {
        let mut registry = Registry::with_prefix("tessera");
        registry.register_collector(Box::new(FeedCollector { store }));
        registry.register_collector(Box::new(RecentCollector { recent }));
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_requests",
            "HTTP requests handled, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency inside the server, by method, route and status",
            latency.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            latency,
        }
    }

    /// Records one finished request.
    pub fn observe_request(&self, labels: &RequestLabels, seconds: f64) {
        self.requests.get_or_create(labels).inc();
        self.latency.get_or_create(labels).observe(seconds);
    }

    /// Renders the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
