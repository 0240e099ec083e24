#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]
//! Profile export jobs: stitched profiles exported as one line each, projection, ingest-time
//! filters, event-only profiles, event lists, a merge policy by id, validation, paging,
//! cancel and the file endpoint over HTTP; and, at the worker level, an export interrupted
//! mid-file that resumes after a restart without losing or repeating a line, and a cancel.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ingest::{dataset, get, post, setup, Setup, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_identity::{GraphConfig, GraphTxn};
use tessera_model::Tenant;
use tessera_profile::export::Spec;
use tessera_profile::fragment::{self, WriteMode};
use tessera_profile::policy::{self, PROFILE_CLASS};
use tessera_profile::IdentityKey;
use tessera_server::export_jobs::{ExportError, ExportJobs, ExportStatus, NewExport};
use tessera_store::{EmbeddedStore, Store, StoreOptions, WriteBatch};

const JOBS: &str = "/data/core/ups/export/jobs";

async fn wait_done(base: &str, id: u64) -> Value {
    for _ in 0..400 {
        let reply = get(base, &format!("{JOBS}/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let job = reply.json();
        if matches!(
            job["status"].as_str(),
            Some("SUCCEEDED" | "FAILED" | "CANCELLED")
        ) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("export job {id} did not finish");
}

/// Runs an export to completion and returns its lines.
async fn export(base: &str, body: Value) -> (Value, Vec<Value>) {
    let created = post(base, JOBS, body.clone()).await;
    assert_eq!(created.status, StatusCode::OK, "{body}: {}", created.text);
    let id = created.json()["id"].as_u64().unwrap();
    let job = wait_done(base, id).await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    let file = get(base, &format!("{JOBS}/{id}/file")).await;
    assert_eq!(file.status, StatusCode::OK, "{}", file.text);
    assert_eq!(file.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = file
        .text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(job["metrics"]["profileCount"], lines.len(), "{job}");
    (job, lines)
}

fn body(dataset: &str, extra: Value) -> Value {
    let mut body = json!({
        "destination": {"datasetId": dataset, "segmentPerBatch": false},
        "schema": {"name": "_xdm.context.profile"}
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// The line whose identityMap holds `namespace`/`id`.
fn line_of<'a>(lines: &'a [Value], namespace: &str, id: &str) -> &'a Value {
    lines
        .iter()
        .find(|line| {
            line["identityMap"][namespace]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|e| e["id"] == id))
        })
        .unwrap_or_else(|| panic!("no line for {namespace}/{id} in {lines:?}"))
}

fn web_event(id: &str, identity_map: Value, page: &str) -> Value {
    json!({
        "_id": id,
        "timestamp": "2025-03-01T10:00:00Z",
        "eventType": "web.webpagedetails.pageViews",
        "identityMap": identity_map,
        "web": {"webPageDetails": {"name": page, "URL": "https://example.com/"}}
    })
}

async fn stream_ok(setup: &Setup, message: Value) {
    let reply = setup.stream(message).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn exports_stitched_profiles_projected_filtered_with_events_and_policies() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let crm = setup.profile_dataset.clone();
    let loyalty = dataset(&base, "Loyalty", &setup.profile_schema, false).await;

    // Jane: a CRM record under her CRMID (with her email) and a newer loyalty record under
    // her email; a web event under an ECID that also carries her email.
    stream_ok(
        &setup,
        setup.profile_message(json!({
            "identityMap": {"CRMID": [{"id": "jane-1", "primary": true}], "Email": [{"id": "jane@example.com"}]},
            "person": {"name": {"firstName": "Jane", "lastName": "Doe"}}})),
    )
    .await;
    let mut message = setup.profile_message(json!({
        "identityMap": {"Email": [{"id": "jane@example.com", "primary": true}]},
        "person": {"name": {"lastName": "Smith"}}, "homeAddress": {"city": "Basel"}}));
    message["header"]["datasetId"] = json!(loyalty);
    stream_ok(&setup, message).await;
    stream_ok(
        &setup,
        setup.event_message(web_event(
            "jane-ev-1",
            json!({"ECID": [{"id": "11111111111111111111111111111111111111", "primary": true}], "Email": [{"id": "jane@example.com"}]}),
            "home",
        )),
    )
    .await;
    // Bob: CRM only. An anonymous visitor: events only.
    stream_ok(
        &setup,
        setup.profile_message(json!({
            "identityMap": {"Email": [{"id": "bob@example.com", "primary": true}]},
            "person": {"name": {"firstName": "Bob"}}})),
    )
    .await;
    stream_ok(
        &setup,
        setup.event_message(web_event(
            "anon-ev-1",
            json!({"ECID": [{"id": "22222222222222222222222222222222222222", "primary": true}]}),
            "pricing",
        )),
    )
    .await;

    // 1. Everything, default policy: Jane is ONE line with both datasets' fields.
    let created = post(&base, JOBS, body(&crm, json!({}))).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let job = created.json();
    assert!(job["id"].is_u64(), "{job}");
    assert_eq!(job["profileInstanceId"], "ups");
    assert_eq!(job["jobType"], "BATCH");
    assert_eq!(job["status"], "NEW");
    assert_eq!(job["schema"]["name"], "_xdm.context.profile");
    assert_eq!(
        job["mergePolicy"],
        json!({"id": "timestampOrdered-pdg", "version": 1})
    );
    assert_eq!(job["computeGatewayJobId"], json!({}));
    assert!(!job["requestId"].as_str().unwrap().is_empty());
    assert_eq!(job["destination"]["dataSetId"], crm.as_str());
    assert_eq!(job["destination"]["segmentPerBatch"], false);
    assert_eq!(job["destination"]["batchId"].as_str().unwrap().len(), 32);
    assert_eq!(job["imsOrgId"], common::ingest::ORG);
    assert_eq!(
        job["metrics"]["totalTime"]["startTimeInMs"],
        job["creationTime"]
    );
    assert!(job["updateTime"].as_i64().unwrap() >= job["creationTime"].as_i64().unwrap());
    let first_id = job["id"].as_u64().unwrap();
    let done = wait_done(&base, first_id).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    for metric in ["totalTime", "profileExportTime", "aCPDatasetWriteTime"] {
        let span = &done["metrics"][metric];
        assert_eq!(
            span["totalTimeInMs"].as_i64().unwrap(),
            span["endTimeInMs"].as_i64().unwrap() - span["startTimeInMs"].as_i64().unwrap(),
            "{metric}: {done}"
        );
    }
    let (_, lines) = export(&base, body(&crm, json!({}))).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    let jane = line_of(&lines, "CRMID", "jane-1");
    assert_eq!(jane["person"]["name"]["firstName"], "Jane");
    assert_eq!(
        jane["person"]["name"]["lastName"], "Smith",
        "loyalty is newer"
    );
    assert_eq!(jane["homeAddress"]["city"], "Basel");
    assert_eq!(jane["identityMap"]["Email"][0]["id"], "jane@example.com");
    assert_eq!(
        jane["identityMap"]["ECID"][0]["id"],
        "11111111111111111111111111111111111111"
    );
    assert!(jane.get("timeSeriesEvents").is_none());
    assert_eq!(
        line_of(&lines, "Email", "bob@example.com")["person"]["name"]["firstName"],
        "Bob"
    );

    // 2. Projection, event-only profiles, events projected (keeping _id and timestamp).
    let (_, lines) = export(
        &base,
        body(
            &crm,
            json!({"fields": "person.name.firstName", "filter": {"emptyProfiles": true},
                "additionalFields": {"eventList": {"fields": "web.webPageDetails.name"}}}),
        ),
    )
    .await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    let jane = line_of(&lines, "CRMID", "jane-1");
    assert_eq!(jane["person"], json!({"name": {"firstName": "Jane"}}));
    assert!(jane.get("homeAddress").is_none());
    assert_eq!(
        jane["timeSeriesEvents"],
        json!([{"_id": "jane-ev-1", "timestamp": "2025-03-01T10:00:00Z",
            "web": {"webPageDetails": {"name": "home"}}}])
    );
    let anonymous = line_of(&lines, "ECID", "22222222222222222222222222222222222222");
    assert!(anonymous.get("person").is_none());
    assert_eq!(anonymous["timeSeriesEvents"][0]["_id"], "anon-ev-1");
    assert_eq!(
        line_of(&lines, "Email", "bob@example.com")["timeSeriesEvents"],
        json!([])
    );

    // 3. fromIngestTimestamp: only what changed since; the event list has its own filter.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = now_rfc3339();
    tokio::time::sleep(Duration::from_millis(20)).await;
    stream_ok(
        &setup,
        setup.profile_message(json!({
            "identityMap": {"Email": [{"id": "bob@example.com", "primary": true}]},
            "person": {"name": {"firstName": "Robert"}}})),
    )
    .await;
    stream_ok(
        &setup,
        setup.event_message(web_event(
            "jane-ev-2",
            json!({"ECID": [{"id": "11111111111111111111111111111111111111", "primary": true}]}),
            "cart",
        )),
    )
    .await;
    let (_, lines) = export(
        &base,
        body(&crm, json!({"filter": {"fromIngestTimestamp": since}})),
    )
    .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["person"]["name"]["firstName"], "Robert");
    let (_, lines) = export(
        &base,
        body(
            &crm,
            json!({"fields": "identityMap", "additionalFields": {"eventList": {"filter": {"fromIngestTimestamp": since}}}}),
        ),
    )
    .await;
    let jane = line_of(&lines, "CRMID", "jane-1");
    let events = jane["timeSeriesEvents"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{jane}");
    assert_eq!(events[0]["_id"], "jane-ev-2");
    assert_eq!(events[0]["eventType"], "web.webpagedetails.pageViews");
    assert!(jane.get("person").is_none());

    // 4. A dataSetPrecedence policy by id: CRM wins over the newer loyalty record.
    let policy = post(
        &base,
        "/data/core/ups/config/mergePolicies",
        json!({"name": "crm-first", "schema": {"name": "_xdm.context.profile"},
            "identityGraph": {"type": "pdg"},
            "attributeMerge": {"type": "dataSetPrecedence", "order": [crm, loyalty]}}),
    )
    .await;
    assert_eq!(policy.status, StatusCode::OK, "{}", policy.text);
    let policy_id = policy.json()["id"].as_str().unwrap().to_owned();
    let (job, lines) = export(
        &base,
        body(
            &crm,
            json!({"mergePolicy": {"id": policy_id, "version": 1}}),
        ),
    )
    .await;
    assert_eq!(job["mergePolicy"]["id"], policy_id.as_str());
    let jane = line_of(&lines, "CRMID", "jane-1");
    assert_eq!(jane["person"]["name"]["lastName"], "Doe");
    assert_eq!(
        jane["homeAddress"]["city"], "Basel",
        "loyalty still fills the rest"
    );

    // 5. Validation: 400 in the Profile error shape, nothing created.
    let before = get(&base, &format!("{JOBS}?limit=1000")).await.json()["records"]
        .as_array()
        .unwrap()
        .len();
    for (request, needle) in [
        (json!({"destination": {"datasetId": crm}}), "schema.name"),
        (
            body(
                &crm,
                json!({"schema": {"name": "_xdm.context.experienceevent"}}),
            ),
            "schema.name",
        ),
        (
            json!({"schema": {"name": "_xdm.context.profile"}}),
            "destination.datasetId",
        ),
        (body("no-such-dataset", json!({})), "does not exist"),
        (
            body(
                &crm,
                json!({"filter": {"segments": [{"segmentId": "s", "segmentNs": "ups", "status": ["realized"]}]}}),
            ),
            "segment s does not exist",
        ),
        (
            body(
                &crm,
                json!({"filter": {"segments": [{"segmentId": "s", "segmentNs": "aam"}]}}),
            ),
            "segmentNs",
        ),
        (
            // One batch per segment needs segments to split by.
            body(
                &crm,
                json!({"destination": {"datasetId": crm, "segmentPerBatch": true}}),
            ),
            "segmentPerBatch=true needs filter.segments",
        ),
        (
            body(
                &crm,
                json!({"filter": {"fromIngestTimestamp": "yesterday"}}),
            ),
            "RFC 3339",
        ),
        (
            body(
                &crm,
                json!({"additionalFields": {"eventList": {"filter": {"fromIngestTimestamp": "2018-13-45"}}}}),
            ),
            "eventList",
        ),
        (
            body(&crm, json!({"mergePolicy": {"id": "nope", "version": 1}})),
            "does not exist",
        ),
        (
            body(
                &crm,
                json!({"mergePolicy": {"id": policy_id, "version": 7}}),
            ),
            "version",
        ),
        (json!({"fields": 3}), ""),
    ] {
        let reply = post(&base, JOBS, request.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{request}: {}",
            reply.text
        );
        let problem = reply.json();
        assert_eq!(problem["statusCode"], "400", "{problem}");
        assert!(
            problem["message"].as_str().unwrap().contains(needle),
            "{request}: {problem}"
        );
    }
    let after = get(&base, &format!("{JOBS}?limit=1000")).await.json()["records"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);

    // 6. Unknown jobs are 404 on every endpoint.
    for path in [
        format!("{JOBS}/9999"),
        format!("{JOBS}/not-a-number"),
        format!("{JOBS}/9999/file"),
    ] {
        let reply = get(&base, &path).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.text
        );
        assert_eq!(reply.json()["statusCode"], "404");
    }
    let reply = send(Method::DELETE, &format!("{base}{JOBS}/9999"), &TENANT, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    // 7. List: newest first, paged by `link.next`.
    let first = get(&base, &format!("{JOBS}?limit=2")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let first = first.json();
    assert_eq!(first["page"]["sortField"], "createdTime");
    assert_eq!(first["page"]["sort"], "desc");
    assert_eq!(first["page"]["pageSize"], 2);
    assert_eq!(first["page"]["pageOffset"], "0");
    let ids: Vec<u64> = first["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert!(ids[0] > ids[1], "{ids:?}");
    let mut seen: Vec<u64> = ids.clone();
    let mut next = first["link"]["next"].as_str().unwrap().to_owned();
    assert_eq!(next, format!("{JOBS}?start=2&limit=2"));
    while !next.is_empty() {
        let page = get(&base, &next).await.json();
        seen.extend(
            page["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_u64().unwrap()),
        );
        next = page["link"]["next"].as_str().unwrap().to_owned();
    }
    let expected: Vec<u64> = (first_id..first_id + seen.len() as u64).rev().collect();
    assert_eq!(seen, expected);

    // 8. DELETE: a finished job keeps its status; an unfinished one is cancelled and stays
    //    visible; the file is served only for a job that succeeded.
    let reply = send(
        Method::DELETE,
        &format!("{base}{JOBS}/{first_id}"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.text.is_empty());
    assert_eq!(
        get(&base, &format!("{JOBS}/{first_id}")).await.json()["status"],
        "SUCCEEDED"
    );
    let racing = post(&base, JOBS, body(&crm, json!({}))).await.json();
    let racing_id = racing["id"].as_u64().unwrap();
    let reply = send(
        Method::DELETE,
        &format!("{base}{JOBS}/{racing_id}"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let finished = wait_done(&base, racing_id).await;
    let file = get(&base, &format!("{JOBS}/{racing_id}/file")).await;
    match finished["status"].as_str().unwrap() {
        // The worker was faster than the cancel.
        "SUCCEEDED" => assert_eq!(file.status, StatusCode::OK),
        "CANCELLED" => {
            assert_eq!(file.status, StatusCode::CONFLICT, "{}", file.text);
            assert!(file.json()["message"]
                .as_str()
                .unwrap()
                .contains("CANCELLED"));
        }
        other => panic!("unexpected status {other}"),
    }

    // Another sandbox of the organisation sees none of it.
    let other = send(
        Method::GET,
        &format!("{base}{JOBS}/{first_id}"),
        &[
            ("x-gw-ims-org-id", common::ingest::ORG),
            ("x-sandbox-name", "dev"),
        ],
        None,
    )
    .await;
    assert_ne!(other.status, StatusCode::OK, "{}", other.text);
    server.stop().await;
}

fn tenant() -> Tenant {
    Tenant::parse("ACME@AdobeOrg", "prod").unwrap()
}

/// `graphs` people stitched from an email and a CRM id (a fragment under each), and
/// `loose` graph-less identities with one fragment each.
fn seed(store: &dyn Store, graphs: usize, loose: usize) {
    let mut txn = GraphTxn::new(store, tenant(), GraphConfig::default(), |_| 0);
    for n in 0..graphs {
        let pair = [
            IdentityKey::new("Email", format!("p{n}@example.com")),
            IdentityKey::new("CRMID", format!("c{n}")),
        ];
        txn.link(&pair, 1, "crm", "1:n:1").unwrap();
    }
    let mut batch = WriteBatch::new();
    txn.finish(&mut batch).unwrap();
    let mut write = |dataset: &str, who: IdentityKey, record: Value| {
        fragment::write(
            store,
            &mut batch,
            &tenant(),
            dataset,
            &who,
            record.as_object().unwrap().clone(),
            WriteMode::Replace,
            1,
            "1:n:1",
        )
        .unwrap();
    };
    for n in 0..graphs {
        write(
            "crm",
            IdentityKey::new("CRMID", format!("c{n}")),
            json!({"person": {"name": {"firstName": format!("P{n}")}}}),
        );
        write(
            "loyalty",
            IdentityKey::new("Email", format!("p{n}@example.com")),
            json!({"loyalty": {"points": n}}),
        );
    }
    for n in 0..loose {
        write(
            "crm",
            IdentityKey::new("Phone", format!("+4100{n}")),
            json!({"person": {"name": {"firstName": format!("L{n}")}}}),
        );
    }
    store.commit(batch).unwrap();
}

fn request(store: &dyn Store) -> NewExport {
    let policy = policy::load(store, &tenant())
        .unwrap()
        .default_for(PROFILE_CLASS);
    NewExport {
        segments: Vec::new(),
        request_id: "test".into(),
        schema_name: PROFILE_CLASS.into(),
        spec: Spec {
            policy,
            fields: None,
            from_ingest_ms: None,
            empty_profiles: false,
            events: None,
            max_identities: 50,
        },
        dataset_id: "crm".into(),
        segment_per_batch: false,
    }
}

#[test]
fn an_interrupted_export_resumes_after_restart_without_losing_or_repeating_lines() {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    let id = {
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap());
        seed(store.as_ref(), 10, 4);
        let (jobs, _wake) = ExportJobs::new(Arc::clone(&store), exports.clone());
        let jobs = jobs.with_page(3);
        let job = jobs.create(&tenant(), request(store.as_ref())).unwrap();
        // Stop after two pages, as a shutdown would.
        let calls = AtomicUsize::new(0);
        let finished = jobs
            .worker()
            .process_pending(&|| calls.fetch_add(1, Ordering::SeqCst) < 3)
            .unwrap();
        assert_eq!(finished, 0);
        let partial = jobs.get(&tenant(), &job.id.to_string()).unwrap();
        assert_eq!(partial.status, ExportStatus::Processing);
        assert_eq!(partial.progress.tally.exported, 6);
        assert!(matches!(
            jobs.open_file(&tenant(), &job.id.to_string(), None),
            Err(ExportError::NotReady { .. })
        ));
        // A page written but not committed (a crash between the fsync and the commit).
        let path = jobs.file_path(&tenant(), job.id);
        let partial_file = path.with_extension("jsonl.partial");
        assert!(!path.exists());
        let mut bytes = std::fs::read(&partial_file).unwrap();
        assert_eq!(bytes.len() as u64, partial.progress.bytes);
        bytes.extend_from_slice(b"{\"torn\": tr");
        std::fs::write(&partial_file, bytes).unwrap();
        job.id
    };
    // "Restart": a fresh store handle and service on the same directories.
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap());
    let (jobs, _wake) = ExportJobs::new(Arc::clone(&store), exports);
    let jobs = jobs.with_page(3);
    assert_eq!(jobs.worker().process_pending(&|| true).unwrap(), 1);
    let done = jobs.get(&tenant(), &id.to_string()).unwrap();
    assert_eq!(done.status, ExportStatus::Succeeded);
    assert_eq!(done.progress.tally.exported, 14);
    let (_, file) = jobs.open_file(&tenant(), &id.to_string(), None).unwrap();
    let text = std::io::read_to_string(file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is whole JSON"))
        .collect();
    assert_eq!(lines.len(), 14);
    let names: BTreeSet<String> = lines
        .iter()
        .map(|l| {
            l["person"]["name"]["firstName"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names.len(), 14, "each profile exactly once");
    let stitched = lines
        .iter()
        .find(|l| l["person"]["name"]["firstName"] == "P3")
        .unwrap();
    assert_eq!(stitched["loyalty"]["points"], 3);
    assert_eq!(stitched["identityMap"]["Email"][0]["id"], "p3@example.com");
    assert_eq!(stitched["identityMap"]["CRMID"][0]["id"], "c3");
    assert!(!jobs
        .file_path(&tenant(), id)
        .with_extension("jsonl.partial")
        .exists());

    // A cancel between pages: the worker stops at its next checkpoint and removes its file.
    let job = jobs.create(&tenant(), request(store.as_ref())).unwrap();
    let calls = AtomicUsize::new(0);
    jobs.worker()
        .process_pending(&|| calls.fetch_add(1, Ordering::SeqCst) < 2)
        .unwrap();
    let partial_file = jobs
        .file_path(&tenant(), job.id)
        .with_extension("jsonl.partial");
    assert!(partial_file.exists());
    let cancelled = jobs.cancel(&tenant(), &job.id.to_string()).unwrap();
    assert_eq!(cancelled.status, ExportStatus::Cancelled);
    assert_eq!(jobs.worker().process_pending(&|| true).unwrap(), 0);
    assert!(!partial_file.exists());
    assert!(!jobs.file_path(&tenant(), job.id).exists());
    let job = jobs.get(&tenant(), &job.id.to_string()).unwrap();
    assert_eq!(job.status, ExportStatus::Cancelled);
    assert!(matches!(
        jobs.open_file(&tenant(), &job.id.to_string(), None),
        Err(ExportError::NotReady { .. })
    ));
}

/// Export speed on generated profiles (a measurement, not a check; timings are never
/// asserted): `TESSERA_EXPORT_PEOPLE=5000 cargo test -p tessera-server --test profile_export
/// -- --ignored --nocapture`.
#[test]
#[ignore = "measurement"]
fn export_speed() {
    let people: usize = std::env::var("TESSERA_EXPORT_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap());
    for chunk in 0..people.div_ceil(1_000) {
        let count = 1_000.min(people - chunk * 1_000);
        let mut txn = GraphTxn::new(store.as_ref(), tenant(), GraphConfig::default(), |_| 0);
        let mut batch = WriteBatch::new();
        for k in 0..count {
            let n = chunk * 1_000 + k;
            let ids = [
                IdentityKey::new("CRMID", format!("c{n}")),
                IdentityKey::new("Email", format!("p{n}@example.com")),
                IdentityKey::new("ECID", format!("{n:038}")),
            ];
            txn.link(&ids, 1, "crm", "1:n:1").unwrap();
            for (dataset, who, record) in [
                (
                    "crm",
                    &ids[0],
                    json!({"person": {"name": {"firstName": format!("P{n}"), "lastName": "Doe"}}, "homeAddress": {"city": "Basel"}}),
                ),
                (
                    "loyalty",
                    &ids[1],
                    json!({"loyalty": {"points": n, "tier": "gold"}}),
                ),
            ] {
                fragment::write(
                    store.as_ref(),
                    &mut batch,
                    &tenant(),
                    dataset,
                    who,
                    record.as_object().unwrap().clone(),
                    WriteMode::Replace,
                    1,
                    "1:n:1",
                )
                .unwrap();
            }
        }
        txn.finish(&mut batch).unwrap();
        store.commit(batch).unwrap();
    }
    let (jobs, _wake) = ExportJobs::new(Arc::clone(&store), dir.path().join("exports"));
    let job = jobs.create(&tenant(), request(store.as_ref())).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(jobs.worker().process_pending(&|| true).unwrap(), 1);
    let took = started.elapsed();
    let done = jobs.get(&tenant(), &job.id.to_string()).unwrap();
    assert_eq!(done.progress.tally.exported, people as u64);
    println!(
        "exported {people} profiles ({} bytes) in {:.2} s: {:.0} profiles/s",
        done.progress.bytes,
        took.as_secs_f64(),
        people as f64 / took.as_secs_f64()
    );
}
