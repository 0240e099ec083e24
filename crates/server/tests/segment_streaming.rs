#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Streaming segmentation end to end: an acknowledged event puts the profile into a
//! continuous segment within moments (no job), and the profile leaves it when the event ages
//! out of the window — by timer, with no further write.

mod common;

use common::ingest::{get, post, setup};
use common::TestServer;
use hyper::StatusCode;
use serde_json::{json, Value};

async fn membership(base: &str, segment: &str) -> Option<String> {
    let reply = get(base, "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=CRMID&entityId=s1").await;
    if reply.status != StatusCode::OK {
        return None;
    }
    let body = reply.json();
    let entity = &body.as_object().unwrap().values().next().unwrap()["entity"];
    entity["segmentMembership"]["ups"][segment]["status"]
        .as_str()
        .map(str::to_owned)
}

async fn wait_for(base: &str, segment: &str, status: &str, within_ms: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(within_ms);
    while std::time::Instant::now() < deadline {
        if membership(base, segment).await.as_deref() == Some(status) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn events_enter_and_time_exits_a_continuous_segment() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let record = json!({"identityMap": {"CRMID": [{"id": "s1", "primary": true}]}, "homeAddress": {"city": "Basel"}});
    assert_eq!(
        setup.stream(setup.profile_message(record)).await.status,
        StatusCode::OK
    );
    let created = post(&base, "/data/core/ups/segment/definitions", json!({
        "name": "Viewed a page in the last 4 seconds",
        "schema": {"name": "_xdm.context.profile"},
        "expression": {"type": "PQL", "format": "pql/text", "value": "xEvent[timestamp occurs <= 4 seconds before now].count() > 0"},
        "evaluationInfo": {"batch": {"enabled": false}, "continuous": {"enabled": true}, "synchronous": {"enabled": false}}
    })).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let segment = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(membership(&base, &segment).await, None);

    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let view: Value = json!({"_id": "v1", "timestamp": now, "identityMap": {"CRMID": [{"id": "s1", "primary": true}]},
        "web": {"webPageDetails": {"name": "home"}}});
    assert_eq!(
        setup.stream(setup.event_message(view)).await.status,
        StatusCode::OK
    );
    assert!(
        wait_for(&base, &segment, "realized", 2_000).await,
        "no membership after the event"
    );
    // The membership entry reached the change feed.
    let feed = setup.feed().await;
    assert!(feed
        .iter()
        .any(|e| e["kind"] == "membership" && e["segment"]["segmentId"] == segment.as_str()));
    // Nothing else is written; the event leaves the 4-second window and the timer exits it.
    assert!(
        wait_for(&base, &segment, "exited", 8_000).await,
        "still a member after the window"
    );
    server.stop().await;
}
