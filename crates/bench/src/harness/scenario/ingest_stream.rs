//! `ingest-stream`: generated web events posted one per request to the streaming inlet
//! (`POST /collection/{connectionId}` with the DCS envelope), each acknowledged only once
//! durable (fsync, group commit) with its identities extracted; reports events/s and
//! acknowledgement latency.
//!
//! Preparation generates the data set (`--people`, `--seed`), creates an ExperienceEvent
//! schema with the field groups the generator uses, a profile-enabled dataset, an inlet
//! bound to it and the first `--computed-attributes` of
//! [`crate::workload::COMPUTED_ATTRIBUTES`]. Requests cycle through the generated events; after the first pass each
//! `_id` gets a pass suffix so every request is a new event, never an idempotent replay.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hyper::Method;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::{Availability, ScenarioContext};
use crate::error::{Error, Result};
use crate::generate::{generate, GenerateConfig};
use crate::harness::client::{Connection, RequestSource, RequestSpec, Target};

pub(crate) const MEASURES: &str = "streaming ingestion with stitching, events/s and ack latency";

/// Most events kept in memory as request templates.
const MAX_TEMPLATES: usize = 200_000;

pub(crate) fn availability() -> Availability {
    Availability::Available
}

/// One event's envelope split around its `_id` value, so a request body is three copies.
struct Template {
    before_id: Bytes,
    id: String,
    after_id: Bytes,
}

/// Streams the generated events through the inlet.
pub(crate) struct IngestStream {
    path: String,
    templates: Vec<Template>,
    next: AtomicU64,
    per_request: usize,
}

impl IngestStream {
    /// Appends the next event's envelope (a fresh `_id` every time) to `body`.
    fn push_next(&self, body: &mut Vec<u8>) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.templates.len().max(1) as u64;
        let index = usize::try_from(n % count).unwrap_or(0);
        let pass = n / count;
        if let Some(t) = self.templates.get(index) {
            let id = if pass == 0 {
                t.id.clone()
            } else {
                format!("{}-p{pass}", t.id)
            };
            body.extend_from_slice(&t.before_id);
            body.extend_from_slice(id.as_bytes());
            body.extend_from_slice(&t.after_id);
        }
    }
}

impl RequestSource for IngestStream {
    fn next_request(&self, _rng: &mut ChaCha8Rng) -> RequestSpec {
        let mut body = Vec::with_capacity(self.per_request * 600);
        if self.per_request == 1 {
            self.push_next(&mut body);
        } else {
            body.extend_from_slice(b"{\"messages\":[");
            for i in 0..self.per_request {
                if i > 0 {
                    body.push(b',');
                }
                self.push_next(&mut body);
            }
            body.extend_from_slice(b"]}");
        }
        RequestSpec {
            method: Method::POST,
            path: self.path.clone(),
            body: Some(Bytes::from(body)),
        }
    }
}

pub(crate) async fn call(
    connection: &mut Connection,
    target: &Target,
    path: &str,
    body: Value,
) -> Result<Value> {
    let spec = RequestSpec {
        method: Method::POST,
        path: path.to_owned(),
        body: Some(Bytes::from(body.to_string())),
    };
    let response = connection.send(target, &spec).await?;
    if !response.status.is_success() {
        return Err(Error::Http {
            addr: target.url(),
            reason: format!(
                "POST {path} answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ),
        });
    }
    Ok(serde_json::from_slice(&response.body)?)
}

fn template(entity: &Value, marker: &str) -> Result<Template> {
    let id = entity
        .get("_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut with_marker = entity.clone();
    if let Some(object) = with_marker.as_object_mut() {
        object.insert("_id".to_owned(), Value::String(marker.to_owned()));
    }
    let envelope = json!({ "header": {}, "body": { "xdmEntity": with_marker } }).to_string();
    let (before, after) = envelope
        .split_once(marker)
        .ok_or_else(|| Error::InvalidConfig {
            field: "ingest-stream",
            reason: "event template lost its _id marker".into(),
        })?;
    Ok(Template {
        before_id: Bytes::from(before.to_owned()),
        id,
        after_id: Bytes::from(after.to_owned()),
    })
}

/// Generates data, creates schema, dataset and inlet, and loads the request templates.
pub(crate) async fn prepare(context: &ScenarioContext) -> Result<IngestStream> {
    let dir = std::env::temp_dir().join(format!(
        "tessera-bench-ingest-{}-{}",
        std::process::id(),
        context.seed
    ));
    // The last week, as a live stream's events are: computed attributes' windows (a day to
    // six months) then hold them, so upkeep does the work it does in production rather than
    // skipping events that fell out of every window.
    let today = time::OffsetDateTime::now_utc().date();
    let config = GenerateConfig {
        people: context.people,
        seed: context.seed,
        start: today.saturating_sub(time::Duration::days(7)),
        days: 7,
        ..GenerateConfig::default()
    };
    let out = dir.clone();
    tokio::task::spawn_blocking(move || generate(&config, &out))
        .await
        .map_err(|e| Error::InvalidConfig {
            field: "generate",
            reason: e.to_string(),
        })??;
    let events_path = dir.join("web-events.jsonl");
    let text = std::fs::read_to_string(&events_path).map_err(|source| Error::Io {
        path: events_path.clone(),
        source,
    })?;
    let marker = "__TESSERA_BENCH_ID__";
    let templates = text
        .lines()
        .take(MAX_TEMPLATES)
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .map_err(Error::from)
                .and_then(|v| template(&v, marker))
        })
        .collect::<Result<Vec<_>>>()?;
    let _ = std::fs::remove_dir_all(&dir);

    let target = &context.target;
    let mut connection = Connection::open(target).await?;
    let schema = call(
        &mut connection,
        target,
        "/data/foundation/schemaregistry/tenant/schemas",
        json!({
            "type": "object",
            "title": "Bench web events",
            "allOf": [
                {"$ref": "https://ns.adobe.com/xdm/context/experienceevent"},
                {"$ref": "https://ns.adobe.com/xdm/context/experienceevent-web"},
                {"$ref": "https://ns.adobe.com/xdm/context/experienceevent-commerce"},
                {"$ref": "https://ns.adobe.com/xdm/context/experienceevent-environment-details"},
                {"$ref": "https://ns.adobe.com/xdm/context/identitymap"}
            ],
            "meta:immutableTags": ["union"]
        }),
    )
    .await?;
    let schema_id = schema.get("$id").cloned().unwrap_or(Value::Null);
    let dataset = call(
        &mut connection,
        target,
        "/data/foundation/catalog/dataSets",
        json!({
            "name": "Bench web events",
            "schemaRef": {"id": schema_id, "contentType": "application/vnd.adobe.xed-full+json;version=1"},
            "tags": {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]}
        }),
    )
    .await?;
    let dataset_id = dataset
        .get(0)
        .and_then(Value::as_str)
        .map(|r| r.trim_start_matches("@/dataSets/").to_owned())
        .unwrap_or_default();
    let inlet = call(
        &mut connection,
        target,
        "/data/foundation/flowservice/connections",
        json!({"name": "Bench inlet", "auth": {"params": {"datasetId": dataset_id, "authenticationRequired": false}}}),
    )
    .await?;
    let inlet_id = inlet
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    for (name, pql, count, unit) in crate::workload::COMPUTED_ATTRIBUTES
        .iter()
        .take(context.computed_attributes)
    {
        call(
            &mut connection,
            target,
            "/data/core/ca/attributes",
            json!({
                "name": name,
                "displayName": name,
                "description": "tessera bench",
                "expression": {"type": "PQL", "format": "pql/text", "value": pql},
                "duration": {"count": count, "unit": unit},
                "status": "NEW",
            }),
        )
        .await?;
    }
    let per_request = context.records_per_request.max(1);
    let path = if per_request == 1 {
        format!("/collection/{inlet_id}")
    } else {
        format!("/collection/batch/{inlet_id}")
    };
    Ok(IngestStream {
        path,
        templates,
        next: AtomicU64::new(0),
        per_request,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn source(per_request: usize) -> IngestStream {
        let events = [
            json!({"_id": "a", "timestamp": "t"}),
            json!({"_id": "b", "timestamp": "t"}),
        ];
        let templates = events
            .iter()
            .map(|e| template(e, "__M__").unwrap())
            .collect();
        IngestStream {
            path: "/p".into(),
            templates,
            next: AtomicU64::new(0),
            per_request,
        }
    }

    fn ids(body: &Value) -> Vec<String> {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"]["xdmEntity"]["_id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn every_request_carries_new_event_ids() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let single = source(1);
        let first: Value =
            serde_json::from_slice(single.next_request(&mut rng).body.as_ref().unwrap()).unwrap();
        assert_eq!(first["body"]["xdmEntity"]["_id"], "a");
        single.next_request(&mut rng);
        let third: Value =
            serde_json::from_slice(single.next_request(&mut rng).body.as_ref().unwrap()).unwrap();
        assert_eq!(
            third["body"]["xdmEntity"]["_id"], "a-p1",
            "second pass gets a pass suffix"
        );

        let batch = source(3);
        let one: Value =
            serde_json::from_slice(batch.next_request(&mut rng).body.as_ref().unwrap()).unwrap();
        let two: Value =
            serde_json::from_slice(batch.next_request(&mut rng).body.as_ref().unwrap()).unwrap();
        assert_eq!(ids(&one), ["a", "b", "a-p1"]);
        assert_eq!(ids(&two), ["b-p1", "a-p2", "b-p2"]);
    }
}
