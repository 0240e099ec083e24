#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Profile system jobs: deleting one batch's events and a whole dataset's profile data
//! asynchronously, in AEP's `/system/jobs` shapes; and, at the worker level, a job that
//! resumes after a restart and refuses a second unfinished job on the same dataset.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ingest::{get, load_batch, page_view, person, post, setup, TENANT};
use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_model::Tenant;
use tessera_profile::fragment::{self, WriteMode};
use tessera_profile::purge::Target;
use tessera_profile::IdentityKey;
use tessera_server::system_jobs::{JobError, JobStatus, SystemJobs};
use tessera_store::{EmbeddedStore, Store, StoreOptions, WriteBatch};

const JOBS: &str = "/data/core/ups/system/jobs";

async fn wait_done(base: &str, id: &str) -> Value {
    for _ in 0..200 {
        let reply = get(base, &format!("{JOBS}/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let job = reply.json();
        if matches!(job["status"].as_str(), Some("COMPLETED" | "ERROR")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("system job {id} did not finish");
}

fn records_processed(job: &Value) -> u64 {
    let metrics: Value = serde_json::from_str(job["metrics"].as_str().unwrap()).unwrap();
    assert!(metrics["timeTakenInSec"].is_u64(), "{metrics}");
    metrics["recordsProcessed"].as_u64().unwrap()
}

async fn lookup(base: &str, ns: &str, id: &str) -> StatusCode {
    get(
        base,
        &format!("/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId={id}&entityIdNS={ns}"),
    )
    .await
    .status
}

#[tokio::test]
async fn batch_and_dataset_deletion_remove_profile_data() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();

    let events: Vec<Value> = (0..5)
        .map(|i| page_view(&format!("ev-{i}"), &format!("{:038}", i)))
        .collect();
    let (event_batch, record) = load_batch(&setup, &setup.event_dataset, &events).await;
    assert_eq!(record["metrics"]["recordsWritten"], 5, "{record}");
    let streamed = setup
        .stream(setup.event_message(page_view("ev-streamed", &format!("{:038}", 99))))
        .await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text);
    let people: Vec<Value> = (0..3)
        .map(|i| person(&format!("p{i}@example.com")))
        .collect();
    let (profile_batch, _) = load_batch(&setup, &setup.profile_dataset, &people).await;
    assert_eq!(
        lookup(&base, "Email", "p1@example.com").await,
        StatusCode::OK
    );

    // Refusals: record-dataset batch, unknown dataset or batch, neither or both given.
    let record_batch = post(&base, JOBS, json!({ "batchId": profile_batch })).await;
    assert_eq!(
        record_batch.status,
        StatusCode::BAD_REQUEST,
        "{}",
        record_batch.text
    );
    assert!(record_batch.json()["message"]
        .as_str()
        .unwrap()
        .contains("record datasets cannot be deleted"));
    assert_eq!(record_batch.json()["statusCode"], "400");
    for body in [
        json!({"dataSetId": "nope"}),
        json!({"batchId": "nope"}),
        json!({}),
        json!({"dataSetId": setup.event_dataset, "batchId": event_batch}),
    ] {
        let reply = post(&base, JOBS, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
    }

    // Delete one batch's events.
    let created = post(&base, JOBS, json!({ "batchId": event_batch })).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let job = created.json();
    assert_eq!(job["status"], "NEW");
    assert_eq!(job["jobType"], "DELETE");
    assert_eq!(job["batchId"], event_batch.as_str());
    assert_eq!(job["imsOrgId"], common::ingest::ORG);
    assert!(job["createEpoch"].as_i64().unwrap() > 1_600_000_000);
    let batch_job = job["id"].as_str().unwrap().to_owned();
    let done = wait_done(&base, &batch_job).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(records_processed(&done), 5);

    // The idempotency entries went with the events: the same rows load again as new,
    // while the streamed event (another batch) is still a duplicate.
    let mut again = events.clone();
    again.push(page_view("ev-streamed", &format!("{:038}", 99)));
    let (_, reloaded) = load_batch(&setup, &setup.event_dataset, &again).await;
    assert_eq!(reloaded["metrics"]["recordsWritten"], 5, "{reloaded}");
    assert_eq!(reloaded["metrics"]["duplicateRecordCount"], 1, "{reloaded}");

    // Delete the whole profile dataset: its people are gone from lookups.
    let created = post(&base, JOBS, json!({ "dataSetId": setup.profile_dataset })).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.json()["dataSetId"], setup.profile_dataset.as_str());
    let dataset_job = created.json()["id"].as_str().unwrap().to_owned();
    let done = wait_done(&base, &dataset_job).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(records_processed(&done), 3);
    for i in 0..3 {
        assert_eq!(
            lookup(&base, "Email", &format!("p{i}@example.com")).await,
            StatusCode::NOT_FOUND
        );
    }

    // List, paging, get, delete.
    let list = get(&base, &format!("{JOBS}?limit=1")).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let list = list.json();
    assert_eq!(list["_page"]["count"], 1);
    assert_eq!(list["_page"]["next"], "1");
    assert_eq!(list["children"][0]["id"], batch_job.as_str());
    let second = get(&base, &format!("{JOBS}?start=1&limit=5")).await.json();
    assert_eq!(second["children"][0]["id"], dataset_job.as_str());
    assert_eq!(second["_page"]["next"], "");
    let deleted = send(
        Method::DELETE,
        &format!("{base}{JOBS}/{batch_job}"),
        &TENANT,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(deleted.text.is_empty());
    let gone = get(&base, &format!("{JOBS}/{batch_job}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.json()["statusCode"], "404");

    // Another sandbox of the same organisation sees none of these jobs.
    let other = send(
        Method::GET,
        &format!("{base}{JOBS}/{dataset_job}"),
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

fn seed(store: &dyn Store, dataset: &str, count: usize) {
    let mut batch = WriteBatch::new();
    for n in 0..count {
        fragment::write(
            store,
            &mut batch,
            &tenant(),
            dataset,
            &IdentityKey::new("Email", format!("p{n}")),
            json!({"n": n}).as_object().unwrap().clone(),
            WriteMode::Replace,
            1,
            "seed",
        )
        .unwrap();
    }
    store.commit(batch).unwrap();
}

#[test]
fn an_interrupted_job_resumes_after_restart_and_blocks_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Dataset {
        dataset: "crm".into(),
    };
    let id = {
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap());
        seed(store.as_ref(), "crm", 10);
        seed(store.as_ref(), "loyalty", 4);
        let (jobs, _wake) = SystemJobs::new(Arc::clone(&store));
        let jobs = jobs.with_chunk(3);
        let job = jobs.create(&tenant(), target.clone()).unwrap();
        assert!(matches!(
            jobs.create(&tenant(), target.clone()),
            Err(JobError::AlreadyExists { .. })
        ));
        // Stop after four chunks (events, batch index, two of fragments), as a shutdown would.
        let chunks = AtomicUsize::new(0);
        let finished = jobs
            .worker()
            .process_pending(&|| chunks.fetch_add(1, Ordering::SeqCst) < 4)
            .unwrap();
        assert_eq!(finished, 0);
        let partial = jobs.get(&tenant(), &job.id).unwrap();
        assert_eq!(partial.status, JobStatus::Processing);
        assert!(partial.progress.records > 0 && partial.progress.records < 10);
        job.id
    };
    // "Restart": a fresh store handle and service on the same directory.
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap());
    let (jobs, _wake) = SystemJobs::new(Arc::clone(&store));
    let jobs = jobs.with_chunk(3);
    assert_eq!(jobs.worker().process_pending(&|| true).unwrap(), 1);
    let done = jobs.get(&tenant(), &id).unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.progress.records, 10);
    for n in 0..10 {
        let who = IdentityKey::new("Email", format!("p{n}"));
        assert!(fragment::get(store.as_ref(), &tenant(), "crm", &who)
            .unwrap()
            .is_none());
    }
    assert!(fragment::get(
        store.as_ref(),
        &tenant(),
        "loyalty",
        &IdentityKey::new("Email", "p0")
    )
    .unwrap()
    .is_some());
    // Finished: a new job on the same dataset is accepted again.
    assert!(jobs.create(&tenant(), target).is_ok());
}
