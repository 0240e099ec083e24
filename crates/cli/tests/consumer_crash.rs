#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! The change-feed consumers commit without waiting for the disk (their states and
//! checkpoint are derived from the feed and commit together), so a crash may lose their last
//! passes but must never leave states and checkpoint apart. On the real binary: events
//! stream in while the computed-attribute and streaming-segmentation consumers run, the
//! server is SIGKILLed, and after restart, once the consumers caught up, every profile's
//! count equals its events on the feed (nothing counted twice, nothing missed) and its
//! membership agrees with that count.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{StreamingClients, Tessera};
use serde_json::{json, Value};

const ORG: &str = "CONSUMERS@AdobeOrg";
const CLIENTS: usize = 4;
const PEOPLE_PER_CLIENT: usize = 5;

fn call(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    common::call(addr, ORG, method, path, body)
}

fn crmid(client: usize, person: usize) -> String {
    format!("k{client}-{person}")
}

fn event(client: usize, n: usize) -> String {
    let at = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    json!({
        "header": {},
        "body": {"xdmEntity": {
            "_id": format!("k{client}-e{n}"),
            "timestamp": at,
            "eventType": "web.webpagedetails.pageViews",
            "identityMap": {"CRMID": [{"id": crmid(client, n % PEOPLE_PER_CLIENT), "primary": true}]},
            "web": {"webPageDetails": {"name": "home"}}
        }}
    })
    .to_string()
}

/// Waits until both consumers have handled every feed entry.
fn wait_caught_up(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, text) = common::http(addr, "GET", "/metrics", &[], None);
        assert_eq!(status, 200, "{text}");
        let lag = |consumer: &str| {
            let prefix = format!("tessera_change_feed_consumer_lag{{consumer=\"{consumer}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .map(|v| v.trim().to_owned())
        };
        let caught_up = ["computed-attributes", "segment-streaming"]
            .iter()
            .all(|c| lag(c).as_deref() == Some("0"));
        if caught_up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "consumers never caught up:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `ComputedAttributes` group of a merged profile, wherever its tenant field is.
fn computed(entity: &Value) -> Value {
    entity
        .as_object()
        .unwrap()
        .values()
        .find_map(|v| v.get("ComputedAttributes").cloned())
        .unwrap_or(Value::Null)
}

#[test]
fn consumers_recover_exactly_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Tessera::start(dir.path(), &[]);
    let addr = server.addr.clone();
    common::dataset_with_inlet(
        &addr,
        ORG,
        &[
            "https://ns.adobe.com/xdm/context/experienceevent",
            "https://ns.adobe.com/xdm/context/experienceevent-web",
            "https://ns.adobe.com/xdm/context/identitymap",
        ],
        "consumer-inlet",
    );
    // Lookups answer for profiles: each person gets a profile record besides the events.
    common::dataset_with_inlet(
        &addr,
        ORG,
        &[
            "https://ns.adobe.com/xdm/context/profile",
            "https://ns.adobe.com/xdm/context/identitymap",
        ],
        "profile-inlet",
    );
    for client in 0..CLIENTS {
        for person in 0..PEOPLE_PER_CLIENT {
            let record = json!({"header": {}, "body": {"xdmEntity": {
                "identityMap": {"CRMID": [{"id": crmid(client, person), "primary": true}]}
            }}});
            let (status, body) = common::http(
                &addr,
                "POST",
                "/collection/profile-inlet",
                &[("content-type", "application/json")],
                Some(&record.to_string()),
            );
            assert_eq!(status, 200, "{body}");
        }
    }
    let (status, attribute) = call(
        &addr,
        "POST",
        "/data/core/ca/attributes",
        Some(json!({
            "name": "events7d", "displayName": "events7d", "description": "crash test",
            "expression": {"type": "PQL", "format": "pql/text", "value": "xEvent.count()"},
            "duration": {"count": 7, "unit": "DAYS"}, "status": "NEW"
        })),
    );
    assert_eq!(status, 200, "{attribute}");
    let attribute_id = attribute["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while call(
        &addr,
        "GET",
        &format!("/data/core/ca/attributes/{attribute_id}"),
        None,
    )
    .1["status"]
        != "PROCESSED"
    {
        assert!(Instant::now() < deadline, "attribute never processed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, segment) = call(
        &addr,
        "POST",
        "/data/core/ups/segment/definitions",
        Some(json!({
            "name": "Three visits this week",
            "schema": {"name": "_xdm.context.profile"},
            "expression": {"type": "PQL", "format": "pql/text",
                "value": "xEvent[timestamp occurs <= 7 days before now].count() >= 3"},
            "evaluationInfo": {"batch": {"enabled": false}, "continuous": {"enabled": true}, "synchronous": {"enabled": false}}
        })),
    );
    assert_eq!(status, 200, "{segment}");
    let segment_id = segment["id"].as_str().unwrap().to_owned();

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&acknowledged);
    let clients = StreamingClients::start(
        &addr,
        "/collection/consumer-inlet",
        CLIENTS,
        event,
        move |_, _, _| {
            counter.fetch_add(1, Ordering::Relaxed);
        },
    );
    // Far enough in that the consumers have committed passes, then kill mid-stream.
    while acknowledged.load(Ordering::Relaxed) < 600 {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill_9();
    clients.stop();

    let restarted = Tessera::start(dir.path(), &[]);
    let addr = restarted.addr.clone();
    wait_caught_up(&addr);
    let (status, feed) = call(
        &addr,
        "GET",
        "/data/core/ups/system/changefeed?limit=10000",
        None,
    );
    assert_eq!(status, 200, "{feed}");
    let mut checked = 0;
    for client in 0..CLIENTS {
        for person in 0..PEOPLE_PER_CLIENT {
            let id = crmid(client, person);
            let events = feed["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "event" && e["id"] == id.as_str())
                .count() as u64;
            let (status, reply) = call(
                &addr,
                "GET",
                &format!("/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=CRMID&entityId={id}&withCA=true"),
                None,
            );
            assert_eq!(status, 200, "{reply}");
            let entity = &reply.as_object().unwrap().values().next().unwrap()["entity"];
            assert_eq!(
                computed(entity)["events7d"],
                json!(events),
                "{id}: count after recovery against {events} events on the feed"
            );
            let status = entity["segmentMembership"]["ups"][&segment_id]["status"].as_str();
            let qualified = matches!(status, Some("realized" | "existing"));
            assert_eq!(
                qualified,
                events >= 3,
                "{id}: membership {status:?} with {events} events"
            );
            checked += events;
        }
    }
    assert!(checked >= 600, "only {checked} events found on the feed");
    let (status, log) = restarted.terminate();
    assert!(status.success(), "{log}");
}
