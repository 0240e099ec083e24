#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Batch segmentation over HTTP: `POST /segment/jobs`, status and metrics, memberships in
//! the profile lookup and in the change feed, listing, bulk-get, cancel, validation.

mod common;

use common::segments::store_definition;

use common::ingest::{get, post, setup, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const JOBS: &str = "/data/core/ups/segment/jobs";

async fn finished(base: &str, id: &str) -> Value {
    for _ in 0..200 {
        let job = get(base, &format!("{JOBS}/{id}")).await.json();
        if ["SUCCEEDED", "FAILED", "CANCELLED"].contains(&job["status"].as_str().unwrap()) {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("segment job {id} did not finish");
}

#[tokio::test]
async fn a_batch_job_evaluates_segments_and_memberships_show_in_lookups() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    for (crm, city) in [("c1", "Basel"), ("c2", "Basel"), ("c3", "Bern")] {
        let record = json!({"identityMap": {"CRMID": [{"id": crm, "primary": true}]}, "homeAddress": {"city": city}});
        assert_eq!(
            setup.stream(setup.profile_message(record)).await.status,
            StatusCode::OK
        );
    }
    store_definition(&server, "basel", r#"homeAddress.city = "Basel""#);
    store_definition(&server, "bern", r#"homeAddress.city = "Bern""#);

    let created = post(
        &base,
        JOBS,
        json!([{"segmentId": "basel"}, {"segmentId": "bern"}]),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let created = created.json();
    assert_eq!(created["status"], "NEW");
    assert_eq!(
        created["segments"],
        json!([{"segmentId": "basel"}, {"segmentId": "bern"}])
    );
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["_links"]["checkStatus"]["href"],
        format!("/segment/jobs/{id}")
    );

    let job = finished(&base, &id).await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    let metrics = &job["metrics"];
    assert_eq!(metrics["totalProfiles"], 3);
    assert_eq!(
        metrics["segmentedProfileCounter"],
        json!({"basel": 2, "bern": 1})
    );
    assert_eq!(
        metrics["segmentedProfileByStatusCounter"]["basel"]["realized"],
        2
    );
    assert_eq!(
        metrics["segmentedProfileByNamespaceCounter"]["bern"]["CRMID"],
        1
    );
    assert!(metrics["totalTime"]["totalTimeInMs"].as_i64().unwrap() >= 0);

    // The lookup shows the membership; a profile in no segment has none.
    let lookup = "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=CRMID&entityId=";
    let c1 = get(&base, &format!("{lookup}c1")).await.json();
    let entity = &c1.as_object().unwrap().values().next().unwrap()["entity"];
    assert_eq!(
        entity["segmentMembership"]["ups"]["basel"]["status"],
        "realized"
    );
    assert!(
        entity["segmentMembership"]["ups"]["basel"]["lastQualificationTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        entity["homeAddress"]["city"], "Basel",
        "the rest of the profile is intact"
    );
    let c3 = get(&base, &format!("{lookup}c3")).await.json();
    assert!(
        c3.as_object().unwrap().values().next().unwrap()["entity"]["segmentMembership"]["ups"]
            .get("basel")
            .is_none()
    );

    // Membership changes are in the change feed.
    let feed = setup.feed().await;
    let memberships: Vec<&Value> = feed.iter().filter(|e| e["kind"] == "membership").collect();
    assert_eq!(memberships.len(), 3, "{memberships:?}");
    assert!(memberships
        .iter()
        .all(|e| e["segment"]["status"] == "realized"));

    // c2 moves to Bern; a second job over every segment (`*`) exits it from basel.
    let moved = json!({"identityMap": {"CRMID": [{"id": "c2", "primary": true}]}, "homeAddress": {"city": "Bern"}});
    assert_eq!(
        setup.stream(setup.profile_message(moved)).await.status,
        StatusCode::OK
    );
    let again = post(
        &base,
        JOBS,
        json!({"schema": {"name": "_xdm.context.profile"}, "segments": [{"segmentId": "*"}]}),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["segments"], json!([{"segmentId": "*"}]));
    let second = finished(&base, again.json()["id"].as_str().unwrap()).await;
    assert_eq!(
        second["metrics"]["segmentedProfileCounter"],
        json!({"basel": 1, "bern": 2})
    );
    let c2 = get(&base, &format!("{lookup}c2")).await.json();
    let ups =
        &c2.as_object().unwrap().values().next().unwrap()["entity"]["segmentMembership"]["ups"];
    assert_eq!(ups["basel"]["status"], "exited");
    assert_eq!(ups["bern"]["status"], "realized");
    let c1 = get(&base, &format!("{lookup}c1")).await.json();
    assert_eq!(
        c1.as_object().unwrap().values().next().unwrap()["entity"]["segmentMembership"]["ups"]
            ["basel"]["status"],
        "existing"
    );

    // An export of the Basel segment's current members only (profile export jobs' segment
    // filter): c1 (still in Basel), not c2 (exited) nor c3.
    let export = post(&base, "/data/core/ups/export/jobs", json!({
        "schema": {"name": "_xdm.context.profile"},
        "fields": "homeAddress",
        "filter": {"segments": [{"segmentId": "basel", "segmentNs": "ups", "status": ["realized", "existing"]}]},
        "destination": {"datasetId": setup.profile_dataset}
    })).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    let export_id = export.json()["id"].as_u64().unwrap();
    let mut lines = String::new();
    for _ in 0..200 {
        let file = get(
            &base,
            &format!("/data/core/ups/export/jobs/{export_id}/file"),
        )
        .await;
        if file.status == StatusCode::OK {
            lines = file.text;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let exported: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), 1, "{lines}");
    assert_eq!(exported[0]["homeAddress"]["city"], "Basel");
    // The exited ones, asked for explicitly.
    let exited = post(
        &base,
        "/data/core/ups/export/jobs",
        json!({
            "schema": {"name": "_xdm.context.profile"},
            "filter": {"segments": [{"segmentId": "basel", "status": ["exited"]}]},
            "destination": {"datasetId": setup.profile_dataset}
        }),
    )
    .await;
    let exited_id = exited.json()["id"].as_u64().unwrap();
    let mut lines = String::new();
    for _ in 0..200 {
        let file = get(
            &base,
            &format!("/data/core/ups/export/jobs/{exited_id}/file"),
        )
        .await;
        if file.status == StatusCode::OK {
            lines = file.text;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains("Bern"), "{lines}");

    // Listing, filters, bulk-get, cancel of a finished job, 404s and 400s.
    let list = get(&base, &format!("{JOBS}?status=succeeded")).await.json();
    assert_eq!(list["_page"]["totalCount"], 2);
    assert_eq!(list["children"][0]["id"], second["id"], "newest first");
    let bulk = post(
        &base,
        &format!("{JOBS}/bulk-get"),
        json!({"ids": [{"id": id}]}),
    )
    .await;
    assert_eq!(bulk.status, StatusCode::MULTI_STATUS);
    assert_eq!(bulk.json()["results"][&id]["status"], "SUCCEEDED");
    let cancel = send(Method::DELETE, &format!("{base}{JOBS}/{id}"), &TENANT, None).await;
    assert_eq!(cancel.status, StatusCode::OK);
    assert!(cancel.json()["message"]
        .as_str()
        .unwrap()
        .contains("already finished"));
    assert_eq!(
        get(&base, &format!("{JOBS}/nope")).await.status,
        StatusCode::NOT_FOUND
    );
    for body in [
        json!([]),
        json!([{"segmentId": "unknown"}]),
        json!({"x": 1}),
        json!([{"id": "basel"}]),
    ] {
        let reply = post(&base, JOBS, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
    }
    server.stop().await;
}
