//! `streaming-segment`: acknowledged event → membership visible in a profile lookup.
//!
//! Preparation generates the data set, loads the CRM profiles (CRMID primary) through
//! `/collection/batch`, and creates a continuous segment "purchased in the last hour". The
//! load is page-view events (which qualify nobody) for random people at the requested rate,
//! each re-evaluated by the streaming consumer like any event. Beside it a probe, 20 times a
//! second, sends a purchase for a person who is not yet a member and, from the moment the
//! event is acknowledged, polls that person's profile every millisecond until it shows the
//! membership (`realized`, or `existing` when a load event re-evaluated it first): that
//! interval is the figure (DESIGN: p99 ≤ 10 ms at 1,000 events/s).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::Method;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::ingest_stream::call;
use super::lookup::{dataset_for, encode, load, set_up, Loaded};
use super::{Availability, ScenarioContext};
use crate::error::{Error, Result};
use crate::generate::{GroundTruthPerson, PERSONS_FILE};
use crate::harness::client::{Connection, RequestSource, RequestSpec, Target};

pub(crate) const MEASURES: &str =
    "event acknowledged to membership visible in a lookup (probe), under page-view load";

/// Probes per second.
const PROBE_RATE: u64 = 20;
/// Give up on one probe after this long (counted as a timeout).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// What `probe_once` answers for a person whose profile already is a member.
const SKIPPED: Duration = Duration::MAX;

pub(crate) fn availability() -> Availability {
    Availability::Available
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn event_message(dataset: &str, id: &str, kind: &str, crm: &str) -> Value {
    json!({"header": {"datasetId": dataset}, "body": {"xdmEntity": {
        "_id": id, "timestamp": now_rfc3339(), "eventType": kind,
        "identityMap": {"CRMID": [{"id": crm, "primary": true}]}
    }}})
}

/// Page views for random people; the probe runs beside it.
pub(crate) struct StreamingSegment {
    path: String,
    dataset: String,
    crm_ids: Vec<String>,
    next: AtomicU64,
    probe: Arc<Probe>,
}

/// Latencies the probe measured.
struct Probe {
    histogram: Mutex<Histogram<u64>>,
    timeouts: AtomicU64,
    /// The first people whose membership never showed (for diagnosis).
    missed: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Drop for StreamingSegment {
    fn drop(&mut self) {
        self.probe.stop.store(true, Ordering::Relaxed);
    }
}

impl RequestSource for StreamingSegment {
    fn next_request(&self, rng: &mut ChaCha8Rng) -> RequestSpec {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let crm = self
            .crm_ids
            .get(rng.gen_range(0..self.crm_ids.len().max(1)))
            .cloned()
            .unwrap_or_default();
        let body = event_message(
            &self.dataset,
            &format!("bench-view-{n}"),
            "web.webpagedetails.pageViews",
            &crm,
        );
        RequestSpec {
            method: Method::POST,
            path: self.path.clone(),
            body: Some(Bytes::from(body.to_string())),
        }
    }

    fn probe_report(&self) -> Option<Value> {
        self.probe.stop.store(true, Ordering::Relaxed);
        let histogram = self.probe.histogram.lock().ok()?;
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1_000.0;
        Some(json!({
            "name": "ack to membership visible",
            "probes": histogram.len(),
            "timeouts": self.probe.timeouts.load(Ordering::Relaxed),
            "missed": self.probe.missed.lock().map(|m| m.clone()).unwrap_or_default(),
            "p50Ms": ms(0.5), "p90Ms": ms(0.9), "p99Ms": ms(0.99), "maxMs": histogram.max() as f64 / 1_000.0,
        }))
    }
}

/// Sends one purchase for `crm` and waits until the lookup shows the membership.
async fn probe_once(
    connection: &mut Connection,
    target: &Target,
    inlet_path: &str,
    dataset: &str,
    segment: &str,
    crm: &str,
    n: u64,
) -> Result<Option<Duration>> {
    let lookup = RequestSpec::get(format!(
        "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=CRMID&entityId={}",
        encode(crm)
    ));
    // People of one household can share a profile (the generator's shared identities): a
    // profile that already is a member cannot show a new membership, so it is skipped.
    let before = connection.send(target, &lookup).await?;
    if String::from_utf8_lossy(&before.body).contains(&format!("\"{segment}\"")) {
        return Ok(Some(SKIPPED));
    }
    let body = event_message(
        dataset,
        &format!("bench-probe-{n}"),
        "commerce.purchases",
        crm,
    );
    let spec = RequestSpec {
        method: Method::POST,
        path: inlet_path.to_owned(),
        body: Some(Bytes::from(body.to_string())),
    };
    let response = connection.send(target, &spec).await?;
    if !response.status.is_success() {
        return Err(Error::Http {
            addr: target.url(),
            reason: format!("probe event answered {}", response.status),
        });
    }
    let acknowledged = Instant::now();
    loop {
        let reply = connection.send(target, &lookup).await?;
        // `existing` counts too: the profile was no member before the purchase, and an
        // event of the load for the same person evaluated right after it turns `realized`
        // into `existing` (still qualifying), sometimes before the next poll (about one
        // probe in a thousand; it used to count as a timeout).
        if matches!(
            membership_status(&reply.body, segment).as_deref(),
            Some("realized" | "existing")
        ) {
            return Ok(Some(acknowledged.elapsed()));
        }
        if acknowledged.elapsed() > PROBE_TIMEOUT {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The status of `segment` in the profile a lookup answered, if it lists the segment.
fn membership_status(body: &[u8], segment: &str) -> Option<String> {
    let reply: Value = serde_json::from_slice(body).ok()?;
    let pointer = format!("/entity/segmentMembership/ups/{segment}/status");
    reply.as_object()?.values().find_map(|profile| {
        profile
            .pointer(&pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

/// Generates, loads, creates the segment, starts the probe, returns the load source.
pub(crate) async fn prepare(context: &ScenarioContext) -> Result<StreamingSegment> {
    let Loaded {
        dir,
        manifest,
        mut connection,
        inlet,
    } = set_up(context, "streaming").await?;
    let target = Arc::clone(&context.target);
    let mut datasets = std::collections::HashMap::new();
    // People with a CRM profile: only they have a profile to look up.
    let mut profiled = std::collections::HashSet::new();
    for spec in manifest
        .datasets
        .iter()
        .filter(|d| d.name == "crm-profiles" || d.name == "web-events")
    {
        let id = dataset_for(&mut connection, &target, spec).await?;
        if spec.name == "crm-profiles" {
            let path = dir.join(&spec.file);
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            for line in &lines {
                let record: Value = serde_json::from_str(line)?;
                if let Some(ids) = record
                    .pointer("/identityMap/CRMID")
                    .and_then(Value::as_array)
                {
                    profiled.extend(
                        ids.iter()
                            .filter_map(|i| i.get("id").and_then(Value::as_str))
                            .map(str::to_owned),
                    );
                }
            }
            load(&mut connection, &target, &inlet, &id, &lines).await?;
        }
        datasets.insert(spec.name.clone(), id);
    }
    let segment = call(&mut connection, &target, "/data/core/ups/segment/definitions", json!({
        "name": "Purchased in the last hour",
        "schema": {"name": "_xdm.context.profile"},
        "expression": {"type": "PQL", "format": "pql/text",
            "value": "xEvent[eventType = \"commerce.purchases\" and timestamp occurs <= 1 hours before now].count() > 0"},
        "evaluationInfo": {"batch": {"enabled": false}, "continuous": {"enabled": true}, "synchronous": {"enabled": false}}
    })).await?;
    let segment = segment
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let persons_path = dir.join(PERSONS_FILE);
    let persons = std::fs::read_to_string(&persons_path).map_err(|source| Error::Io {
        path: persons_path.clone(),
        source,
    })?;
    let mut crm_ids = Vec::new();
    for line in persons.lines() {
        let person: GroundTruthPerson = serde_json::from_str(line)?;
        if let Some(crm) = person
            .identities
            .iter()
            .find(|i| i.namespace == "CRMID" && profiled.contains(&i.id))
        {
            crm_ids.push(crm.id.clone());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let dataset = datasets.get("web-events").cloned().unwrap_or_default();
    let path = format!("/collection/{inlet}");
    let probe = Arc::new(Probe {
        histogram: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| {
            Error::InvalidConfig {
                field: "histogram",
                reason: e.to_string(),
            }
        })?),
        timeouts: AtomicU64::new(0),
        missed: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    // The probe walks through people in order: each is a new member when probed. It starts
    // after the default warm-up so the figure reflects the steady state.
    let probe_state = Arc::clone(&probe);
    let probe_people = crm_ids.clone();
    let probe_path = path.clone();
    let probe_dataset = dataset.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Ok(mut connection) = Connection::open(&target).await else {
            return;
        };
        let mut n = 0u64;
        let interval = Duration::from_millis(1_000 / PROBE_RATE);
        for crm in probe_people.iter().cycle() {
            if probe_state.stop.load(Ordering::Relaxed) {
                return;
            }
            let started = Instant::now();
            n += 1;
            match probe_once(
                &mut connection,
                &target,
                &probe_path,
                &probe_dataset,
                &segment,
                crm,
                n,
            )
            .await
            {
                Ok(Some(SKIPPED)) => continue,
                Ok(Some(latency)) => {
                    if let Ok(mut h) = probe_state.histogram.lock() {
                        let _ = h.record(
                            u64::try_from(latency.as_micros())
                                .unwrap_or(u64::MAX)
                                .max(1),
                        );
                    }
                }
                Ok(None) => {
                    probe_state.timeouts.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut missed) = probe_state.missed.lock() {
                        if missed.len() < 5 {
                            missed.push(crm.clone());
                        }
                    }
                }
                Err(_) => return,
            }
            if let Some(rest) = interval.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    });
    Ok(StreamingSegment {
        path,
        dataset,
        crm_ids,
        next: AtomicU64::new(0),
        probe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_membership_is_read_from_the_profile_a_lookup_answers() {
        let reply = |status: &str| {
            json!({"Q1JN": {"entityId": "Q1JN", "entity": {"segmentMembership": {"ups": {
                "s-1": {"lastQualificationTime": "2026-11-24T18:20:12Z", "status": status}}}}}})
            .to_string()
        };
        assert_eq!(
            membership_status(reply("existing").as_bytes(), "s-1").as_deref(),
            Some("existing")
        );
        assert_eq!(
            membership_status(reply("realized").as_bytes(), "s-1").as_deref(),
            Some("realized")
        );
        assert_eq!(membership_status(reply("realized").as_bytes(), "s-2"), None);
        assert_eq!(membership_status(b"{}", "s-1"), None);
        assert_eq!(membership_status(b"not json", "s-1"), None);
    }
}
