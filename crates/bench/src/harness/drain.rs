//! After an ingestion load: waits until the change-feed consumers that keep derived data
//! current (computed attributes, streaming segmentation) have handled every entry, and
//! reports the ingestion rate including that wait.
//!
//! Acknowledged events/s alone would flatter a server whose consumers fall behind: the work
//! is only deferred. Counting the drain charges it to the run. The lag comes from the
//! server's `/metrics` (`tessera_change_feed_consumer_lag{consumer}`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::{Connection, RequestSpec, Target};
use super::cpu::CpuSample;
use super::load::LoadOutcome;
use crate::error::{Error, Result};

/// Consumers that follow ingestion; a run is done when each has caught up.
const WATCHED: [&str; 2] = ["computed-attributes", "segment-streaming"];
/// Pause between two readings of the lag.
const POLL: Duration = Duration::from_millis(10);

/// The change-feed head and each consumer's lag, from a Prometheus text exposition.
fn parse(text: &str) -> (u64, BTreeMap<String, u64>) {
    let mut head = 0;
    let mut lags = BTreeMap::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("tessera_change_feed_head ") {
            head = value.trim().parse().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("tessera_change_feed_consumer_lag{consumer=\"")
        {
            if let Some((name, value)) = rest.split_once("\"} ") {
                lags.insert(name.to_owned(), value.trim().parse().unwrap_or(0));
            }
        }
    }
    (head, lags)
}

/// Lag of every watched consumer; one without a checkpoint yet has read nothing.
fn watched_lags(head: u64, lags: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    WATCHED
        .iter()
        .map(|name| ((*name).to_owned(), lags.get(*name).copied().unwrap_or(head)))
        .collect()
}

/// Reads `/metrics`: the change-feed head and every consumer's lag.
async fn metrics(
    connection: &mut Connection,
    target: &Target,
) -> Result<(u64, BTreeMap<String, u64>)> {
    let response = connection
        .send(target, &RequestSpec::get("/metrics"))
        .await?;
    if !response.status.is_success() {
        return Err(Error::Http {
            addr: target.url(),
            reason: format!("GET /metrics answered {}", response.status),
        });
    }
    Ok(parse(&String::from_utf8_lossy(&response.body)))
}

/// The change feed's head now.
pub(crate) async fn head(target: &Target) -> Result<u64> {
    let mut connection = Connection::open(target).await?;
    Ok(metrics(&mut connection, target).await?.0)
}

/// CPU a spawned server spent per change-feed entry written between two samples (the load
/// and the drain): the whole process, and each thread name (threads sharing one summed;
/// Linux keeps 15 bytes of a name). `tessera-segment` runs the consumers, `tessera` (the
/// runtime's workers) the HTTP requests and ingestion, `fjall:worker` the store's flushes and compactions: a
/// difference between two configurations shows where it arises.
pub(crate) fn cpu_per_entry(before: &CpuSample, after: &CpuSample, entries: u64) -> Value {
    let spent = after.since(before);
    let per_entry = |seconds: f64| seconds * 1e6 / (entries.max(1) as f64);
    let threads: serde_json::Map<String, Value> = spent
        .threads
        .iter()
        .map(|(name, seconds)| (name.clone(), json!(per_entry(*seconds))))
        .collect();
    json!({
        "entries": entries,
        "processSeconds": spent.process_seconds,
        "processMicrosPerEntry": per_entry(spent.process_seconds),
        "threadMicrosPerEntry": threads,
    })
}

/// Waits (at most `limit`) until every watched consumer has caught up; reports the lag when
/// the load ended, the drain time and the rates with and without it.
pub(crate) async fn wait(
    target: &Target,
    outcome: &LoadOutcome,
    records_per_request: usize,
    limit: Duration,
) -> Result<Value> {
    let started = Instant::now();
    let mut connection = Connection::open(target).await?;
    let mut at_end: Option<BTreeMap<String, u64>> = None;
    loop {
        let (head, lags) = metrics(&mut connection, target).await?;
        let lags = watched_lags(head, &lags);
        let behind: u64 = lags.values().sum();
        let first = at_end.get_or_insert_with(|| lags.clone()).clone();
        if behind == 0 || started.elapsed() >= limit {
            let drain = started.elapsed().as_secs_f64();
            let events = outcome.ok as f64 * records_per_request as f64;
            let window = outcome.window.as_secs_f64();
            return Ok(json!({
                "name": "change-feed consumers catching up after the load",
                "caughtUp": behind == 0,
                "lagAtEnd": first,
                "drainSeconds": drain,
                "eventsPerSecond": events / window.max(f64::EPSILON),
                "eventsPerSecondIncludingDrain": events / (window + drain).max(f64::EPSILON),
            }));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_head_and_lags_from_the_exposition() {
        let text = "# HELP tessera_change_feed_head x\n# TYPE tessera_change_feed_head gauge\n\
                    tessera_change_feed_head 120\n\
                    tessera_change_feed_consumer_lag{consumer=\"computed-attributes\"} 7\n\
                    tessera_http_requests_total{method=\"GET\"} 3\n# EOF\n";
        let (head, lags) = parse(text);
        assert_eq!(head, 120);
        assert_eq!(lags.get("computed-attributes"), Some(&7));
        let watched = watched_lags(head, &lags);
        assert_eq!(watched.get("computed-attributes"), Some(&7));
        assert_eq!(
            watched.get("segment-streaming"),
            Some(&120),
            "a consumer that never saved a checkpoint has read nothing"
        );
    }
}
