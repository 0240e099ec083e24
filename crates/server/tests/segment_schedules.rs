#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Segmentation schedules over HTTP: CRUD with AEP's status codes, Quartz validation and the
//! once-a-day rule, one schedule per type and sandbox, and the scheduler firing a segment
//! job when a schedule is due (the clock is passed to `Scheduler::tick`, so the test does
//! not wait for a real occurrence).

mod common;

use common::ingest::{get, post, setup, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use time::OffsetDateTime;

const SCHEDULES: &str = "/data/core/ups/config/schedules";

async fn patch(base: &str, id: &str, ops: Value) -> common::Reply {
    send(
        Method::PATCH,
        &format!("{base}{SCHEDULES}/{id}"),
        &TENANT,
        Some(ops),
    )
    .await
}

async fn delete(base: &str, id: &str) -> common::Reply {
    send(
        Method::DELETE,
        &format!("{base}{SCHEDULES}/{id}"),
        &TENANT,
        None,
    )
    .await
}

fn daily() -> Value {
    json!({"name": "profile-default", "type": "batch_segmentation",
           "properties": {"segments": ["*"]}, "schedule": "0 0 1 * * ?", "state": "inactive"})
}

#[tokio::test]
async fn schedules_are_created_listed_patched_and_deleted() {
    let server = TestServer::start(None).await;
    let base = server.url("");

    let created = post(&base, SCHEDULES, daily()).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let created = created.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["imsOrgId"], common::ingest::ORG);
    assert_eq!(created["sandbox"]["sandboxName"], "prod");
    assert_eq!(created["name"], "profile-default");
    assert_eq!(created["state"], "inactive");
    assert_eq!(created["type"], "batch_segmentation");
    assert_eq!(created["schedule"], "0 0 1 * * ?");
    assert_eq!(created["properties"], json!({"segments": ["*"]}));
    assert!(created["createEpoch"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(created["createEpoch"], created["updateEpoch"]);
    assert!(
        created.get("nextRunEpoch").is_none(),
        "inactive: no next run"
    );

    // One per type and sandbox; another type is fine.
    let second = post(&base, SCHEDULES, daily()).await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.text);
    assert!(second.json()["message"].as_str().unwrap().contains(&id));
    let export = post(
        &base,
        SCHEDULES,
        json!({"name": "exports", "type": "export", "properties": {}, "schedule": "0 0 3 * * ?"}),
    )
    .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    assert_eq!(
        export.json()["state"],
        "inactive",
        "state defaults to inactive"
    );
    let export_id = export.json()["id"].as_str().unwrap().to_owned();

    let list = get(&base, SCHEDULES).await.json();
    assert_eq!(list["_page"], json!({"totalCount": 2, "pageSize": 2}));
    assert_eq!(list["children"][0]["id"], id.as_str());
    assert_eq!(list["_links"], json!({"next": {}}));
    let paged = get(&base, &format!("{SCHEDULES}?limit=1")).await.json();
    assert_eq!(paged["_page"], json!({"totalCount": 2, "pageSize": 1}));
    assert!(paged["_links"]["next"]["href"]
        .as_str()
        .unwrap()
        .contains("start=1"));

    // Activate, then move the time.
    let reply = patch(
        &base,
        &id,
        json!([{"op": "add", "path": "/state", "value": "active"}]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let reply = patch(
        &base,
        &id,
        json!([{"op": "add", "path": "/schedule", "value": "0 0 2 * * ?"}]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let one = get(&base, &format!("{SCHEDULES}/{id}")).await.json();
    assert_eq!(one["state"], "active");
    assert_eq!(one["schedule"], "0 0 2 * * ?");
    let next = one["nextRunEpoch"].as_i64().unwrap();
    assert_eq!(next % 86_400, 2 * 3600, "02:00 UTC");
    assert!(next > OffsetDateTime::now_utc().unix_timestamp());

    // Refused patches change nothing.
    for (ops, fragment) in [
        (
            json!([{"op": "add", "path": "/schedule", "value": "0 0 * * * ?"}]),
            "at most once per 24 hours",
        ),
        (
            json!([{"op": "add", "path": "/state", "value": "paused"}]),
            "active or inactive",
        ),
        (
            json!([{"op": "add", "path": "/type", "value": "export"}]),
            "cannot be changed",
        ),
        (
            json!([{"op": "remove", "path": "/state"}]),
            "add or replace",
        ),
        (json!({"state": "active"}), "JSON Patch array"),
    ] {
        let reply = patch(&base, &id, ops.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{ops}: {}",
            reply.text
        );
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(fragment), "{ops}: {message}");
    }
    assert_eq!(
        get(&base, &format!("{SCHEDULES}/{id}")).await.json()["schedule"],
        "0 0 2 * * ?"
    );
    assert_eq!(
        patch(
            &base,
            "nope",
            json!([{"op": "add", "path": "/state", "value": "active"}])
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // Delete frees the type's slot.
    assert_eq!(delete(&base, &id).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&base, &format!("{SCHEDULES}/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(delete(&base, &id).await.status, StatusCode::NOT_FOUND);
    assert_eq!(post(&base, SCHEDULES, daily()).await.status, StatusCode::OK);
    assert_eq!(
        delete(&base, &export_id).await.status,
        StatusCode::NO_CONTENT
    );
    server.stop().await;
}

#[tokio::test]
async fn invalid_schedules_are_refused_with_the_reason() {
    let server = TestServer::start(None).await;
    let base = server.url("");
    let with = |field: &str, value: Value| {
        let mut body = daily();
        body[field] = value;
        body
    };
    for (body, fragment) in [
        (with("schedule", json!("0 0 * * * ?")), "24 times a day"),
        (
            with("schedule", json!("0 */30 1 * * ?")),
            "at most once per 24 hours",
        ),
        (
            with("schedule", json!("* 0 1 * * ?")),
            "at most once per 24 hours",
        ),
        (with("schedule", json!("0 0 1 * *")), "6 or 7 fields"),
        (with("schedule", json!("0 0 25 * * ?")), "hours"),
        (with("schedule", json!("0 0 1 * * *")), "exactly one"),
        (with("schedule", json!("0 0 1 L * ?")), "not supported"),
        (with("schedule", json!("0 0 1 * * ? 2001")), "never fires"),
        (with("schedule", json!(7)), "must be a string"),
        (with("name", json!("")), "name is required"),
        (
            with("type", json!("streaming")),
            "batch_segmentation or export",
        ),
        (with("state", json!("on")), "active or inactive"),
        (with("properties", json!({})), "properties.segments"),
        (with("properties", json!(null)), "properties is required"),
    ] {
        let reply = post(&base, SCHEDULES, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(fragment), "{body}: {message}");
    }
    // Valid Quartz forms.
    for (i, expression) in [
        "0 0 1 * * ?",
        "0 30 23 ? * MON-FRI",
        "15 5 4 1,15 * ?",
        "0 0 6 ? JAN,JUL 1",
        "0 0 0 1/2 * ? 2098",
    ]
    .iter()
    .enumerate()
    {
        let reply = post(&base, SCHEDULES, with("schedule", json!(expression))).await;
        assert_eq!(reply.status, StatusCode::OK, "{expression}: {}", reply.text);
        let id = reply.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(
            delete(&base, &id).await.status,
            StatusCode::NO_CONTENT,
            "{i}"
        );
    }
    // Without an expression AEP generates one: daily.
    let reply = post(
        &base,
        SCHEDULES,
        json!({"name": "n", "type": "batch_segmentation", "properties": {"segments": ["*"]}}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["schedule"], "0 0 0 * * ?");
    server.stop().await;
}

#[tokio::test]
async fn an_active_schedule_fires_a_segment_job_once_when_due() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let reply = setup
        .stream(setup.profile_message(json!({
            "identityMap": {"CRMID": [{"id": "c1", "primary": true}]}, "homeAddress": {"city": "Basel"}})))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let definition = post(
        &base,
        "/data/core/ups/segment/definitions",
        json!({"name": "basel", "schema": {"name": "_xdm.context.profile"},
               "expression": {"type": "PQL", "format": "pql/text", "value": "homeAddress.city = \"Basel\""}}),
    )
    .await;
    assert_eq!(definition.status, StatusCode::OK, "{}", definition.text);

    let mut body = daily();
    body["state"] = json!("active");
    let created = post(&base, SCHEDULES, body).await.json();
    let id = created["id"].as_str().unwrap().to_owned();

    let scheduler = server
        .state
        .schedules
        .scheduler(server.state.segment_jobs.clone());
    let now = OffsetDateTime::now_utc();
    assert!(scheduler.tick(now).unwrap().is_empty(), "not due yet");
    // Two days on: two occurrences were missed; one catch-up run fires.
    let later = now + time::Duration::days(2);
    let fired = scheduler.tick(later).unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].schedule, id);
    let occurrence = fired[0].occurrence_ms / 1000;
    assert_eq!(occurrence % 86_400, 3600, "the 01:00 UTC occurrence");
    assert!(occurrence <= later.unix_timestamp());
    assert!(
        occurrence > later.unix_timestamp() - 86_400,
        "the latest one"
    );
    assert!(scheduler.tick(later).unwrap().is_empty(), "no double fire");

    let schedule = get(&base, &format!("{SCHEDULES}/{id}")).await.json();
    assert_eq!(schedule["lastRunEpoch"], occurrence);

    // The job runs every segment, reported as started by the scheduler.
    let job_id = fired[0].job.clone();
    let mut job = Value::Null;
    for _ in 0..200 {
        job = get(&base, &format!("/data/core/ups/segment/jobs/{job_id}"))
            .await
            .json();
        if job["status"] == "SUCCEEDED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(job["source"], "scheduler");
    assert_eq!(job["segments"], json!([{"segmentId": "*"}]));

    // Inactive schedules do not fire.
    let reply = patch(
        &base,
        &id,
        json!([{"op": "replace", "path": "/state", "value": "inactive"}]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(scheduler
        .tick(later + time::Duration::days(3))
        .unwrap()
        .is_empty());
    server.stop().await;
}
