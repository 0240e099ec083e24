#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]
//! Profile export jobs with `destination.segmentPerBatch: true`: one batch (file) per
//! segment filter, each holding the profiles of that segment only, the job listing every
//! batch as AEP's Segmentation API guide shows (`destination.batches`), each file served by
//! `/file?batchId=`; and, at the worker level, such an export interrupted mid-walk (a torn
//! page in one file, another file already under its final name) resumes after a restart
//! with every file whole, and a cancel removes every file.

mod common;

use common::segments::store_definition;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ingest::{get, post, setup};
use common::TestServer;
use hyper::StatusCode;
use serde_json::{json, Value};
use tessera_identity::{GraphConfig, GraphTxn};
use tessera_model::Tenant;
use tessera_profile::export::Spec;
use tessera_profile::fragment::{self, WriteMode};
use tessera_profile::policy::{self, PROFILE_CLASS};
use tessera_profile::IdentityKey;
use tessera_segment::membership::{self, Membership, Status};
use tessera_server::export_jobs::{
    ExportError, ExportJobs, ExportStatus, NewExport, SegmentFilter,
};
use tessera_store::{EmbeddedStore, Store, StoreOptions, WriteBatch};

const EXPORTS: &str = "/data/core/ups/export/jobs";
const SEGMENT_JOBS: &str = "/data/core/ups/segment/jobs";

async fn finished(base: &str, path: &str) -> Value {
    for _ in 0..400 {
        let job = get(base, path).await.json();
        if matches!(
            job["status"].as_str(),
            Some("SUCCEEDED" | "FAILED" | "CANCELLED")
        ) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{path} did not finish");
}

/// The CRM ids of an export file's lines.
fn crm_ids(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            line["identityMap"]["CRMID"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn is_batch_id(id: &Value) -> bool {
    id.as_str()
        .is_some_and(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

#[tokio::test]
async fn one_batch_per_segment_each_with_its_own_profiles() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    // Basel: c1, c2. Named Ada: c1, c3. c4 is in neither.
    for (crm, city, name) in [
        ("c1", "Basel", "Ada"),
        ("c2", "Basel", "Bo"),
        ("c3", "Bern", "Ada"),
        ("c4", "Zurich", "Cy"),
    ] {
        let record = json!({"identityMap": {"CRMID": [{"id": crm, "primary": true}]},
            "homeAddress": {"city": city}, "person": {"name": {"firstName": name}}});
        let reply = setup.stream(setup.profile_message(record)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    store_definition(&server, "basel", r#"homeAddress.city = "Basel""#);
    store_definition(&server, "adas", r#"person.name.firstName = "Ada""#);
    let evaluation = post(
        &base,
        SEGMENT_JOBS,
        json!([{"segmentId": "basel"}, {"segmentId": "adas"}]),
    )
    .await;
    assert_eq!(evaluation.status, StatusCode::OK, "{}", evaluation.text);
    let evaluation = evaluation.json()["id"].as_str().unwrap().to_owned();
    let evaluated = finished(&base, &format!("{SEGMENT_JOBS}/{evaluation}")).await;
    assert_eq!(evaluated["status"], "SUCCEEDED", "{evaluated}");

    // Refused without segments: there is nothing to split by.
    let refused = post(
        &base,
        EXPORTS,
        json!({
            "schema": {"name": "_xdm.context.profile"},
            "destination": {"datasetId": setup.profile_dataset, "segmentPerBatch": true}
        }),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);

    let created = post(
        &base,
        EXPORTS,
        json!({
            "schema": {"name": "_xdm.context.profile"},
            "fields": "homeAddress,person",
            "filter": {"segments": [
                {"segmentId": "basel", "segmentNs": "ups", "status": ["realized", "existing"]},
                {"segmentId": "adas"}
            ]},
            "destination": {"datasetId": setup.profile_dataset, "segmentPerBatch": true}
        }),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let created = created.json();
    let destination = &created["destination"];
    assert_eq!(destination["segmentPerBatch"], true, "{created}");
    assert!(
        destination.get("batchId").is_none(),
        "one batchId per segment instead: {created}"
    );
    let batches = destination["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 2, "{created}");
    assert_eq!(batches[0]["segmentId"], "basel");
    assert_eq!(batches[0]["segmentNs"], "ups");
    assert_eq!(batches[0]["status"], json!(["realized", "existing"]));
    assert_eq!(batches[1]["segmentId"], "adas");
    assert_eq!(batches[1]["status"], json!(["realized", "existing"]));
    assert!(
        batches.iter().all(|b| is_batch_id(&b["batchId"])),
        "{created}"
    );
    assert_ne!(batches[0]["batchId"], batches[1]["batchId"]);
    let id = created["id"].as_u64().unwrap();

    let job = finished(&base, &format!("{EXPORTS}/{id}")).await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    let batches = job["destination"]["batches"].as_array().unwrap().clone();
    assert_eq!(batches.len(), 2, "{job}");
    assert_eq!(
        batches[0]["batchId"],
        created["destination"]["batches"][0]["batchId"]
    );
    assert_eq!(batches[0]["profileCount"], 2, "{job}");
    assert_eq!(batches[1]["profileCount"], 2, "{job}");
    // c1 is in both batches but is one profile exported.
    assert_eq!(job["metrics"]["profileCount"], 3, "{job}");

    let mut files = Vec::new();
    for batch in &batches {
        let batch_id = batch["batchId"].as_str().unwrap();
        let file = get(&base, &format!("{EXPORTS}/{id}/file?batchId={batch_id}")).await;
        assert_eq!(file.status, StatusCode::OK, "{}", file.text);
        assert_eq!(file.headers["content-type"], "application/x-ndjson");
        assert!(file.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains(batch_id));
        files.push(file.text);
    }
    assert_eq!(
        crm_ids(&files[0]),
        BTreeSet::from(["c1".into(), "c2".into()])
    );
    assert_eq!(
        crm_ids(&files[1]),
        BTreeSet::from(["c1".into(), "c3".into()])
    );
    assert_eq!(
        files[0].lines().count(),
        2,
        "each profile once: {}",
        files[0]
    );
    let basel_line: Value = serde_json::from_str(files[0].lines().next().unwrap()).unwrap();
    assert_eq!(basel_line["homeAddress"]["city"], "Basel", "{basel_line}");

    // Which file must be said; a batch the job does not have is not found.
    let unnamed = get(&base, &format!("{EXPORTS}/{id}/file")).await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST, "{}", unnamed.text);
    assert!(unnamed.text.contains("batchId"), "{}", unnamed.text);
    let unknown = get(&base, &format!("{EXPORTS}/{id}/file?batchId=nope")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);

    // The list shows the batches too.
    let list = get(&base, &format!("{EXPORTS}?limit=1")).await.json();
    assert_eq!(list["records"][0]["destination"]["batches"], json!(batches));
    server.stop().await;
}

fn tenant() -> Tenant {
    Tenant::parse("ACME@AdobeOrg", "prod").unwrap()
}

/// `people` graphs of an email and a CRM id with a CRM fragment each (first name `P{n}`);
/// person n is in segment `even` when n is even and in `low` when n < 4.
fn seed(store: &dyn Store, people: usize) {
    let mut txn = GraphTxn::new(store, tenant(), GraphConfig::default(), |_| 0);
    for n in 0..people {
        let pair = [
            IdentityKey::new("Email", format!("p{n}@example.com")),
            IdentityKey::new("CRMID", format!("c{n}")),
        ];
        txn.link(&pair, 1, "crm", "1:n:1").unwrap();
    }
    let mut batch = WriteBatch::new();
    txn.finish(&mut batch).unwrap();
    store.commit(batch).unwrap();
    let mut batch = WriteBatch::new();
    let member = Membership {
        status: Status::Realized,
        last_qualification_time: 1,
        status_time: 1,
    };
    for n in 0..people {
        let crm = IdentityKey::new("CRMID", format!("c{n}"));
        fragment::write(
            store,
            &mut batch,
            &tenant(),
            "crm",
            &crm,
            json!({"person": {"name": {"firstName": format!("P{n}")}}})
                .as_object()
                .unwrap()
                .clone(),
            WriteMode::Replace,
            1,
            "1:n:1",
        )
        .unwrap();
        let graph = tessera_identity::graph_id(store, &tenant(), &crm)
            .unwrap()
            .unwrap();
        if n % 2 == 0 {
            membership::put(&mut batch, &tenant(), graph, "even", Some(&member)).unwrap();
        }
        if n < 4 {
            membership::put(&mut batch, &tenant(), graph, "low", Some(&member)).unwrap();
        }
    }
    store.commit(batch).unwrap();
}

fn request(store: &dyn Store) -> NewExport {
    let policy = policy::load(store, &tenant())
        .unwrap()
        .default_for(PROFILE_CLASS);
    let filter = |segment: &str| SegmentFilter {
        segment_id: segment.into(),
        statuses: vec!["realized".into(), "existing".into()],
        window: None,
    };
    NewExport {
        segments: vec![filter("even"), filter("low")],
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
        segment_per_batch: true,
    }
}

fn names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .map(|l| {
            let line: Value = serde_json::from_str(l).expect("every line is whole JSON");
            line["person"]["name"]["firstName"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

fn partial(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}

#[test]
fn an_interrupted_per_segment_export_resumes_with_every_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    let (id, batch_ids) = {
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap());
        seed(store.as_ref(), 10);
        let (jobs, _wake) = ExportJobs::new(Arc::clone(&store), exports.clone());
        let jobs = jobs.with_page(3);
        let job = jobs.create(&tenant(), request(store.as_ref())).unwrap();
        assert_eq!(job.batches.len(), 2);
        let batch_ids: Vec<String> = job.batches.iter().map(|b| b.batch_id.clone()).collect();
        // Stop after two pages, as a shutdown would.
        let calls = AtomicUsize::new(0);
        let finished = jobs
            .worker()
            .process_pending(&|| calls.fetch_add(1, Ordering::SeqCst) < 3)
            .unwrap();
        assert_eq!(finished, 0);
        let stopped = jobs.get(&tenant(), &job.id.to_string()).unwrap();
        assert_eq!(stopped.status, ExportStatus::Processing);
        assert_eq!(stopped.progress.batches.len(), 2);
        let paths: Vec<_> = batch_ids
            .iter()
            .map(|b| jobs.batch_file_path(&tenant(), job.id, b))
            .collect();
        for (path, progress) in paths.iter().zip(&stopped.progress.batches) {
            assert_eq!(
                std::fs::metadata(partial(path)).unwrap().len(),
                progress.bytes
            );
        }
        // A page written to the first file but not committed (a crash between the fsync and
        // the commit), and the second file already renamed (as by a crash during the final
        // renames): both are repaired on restart.
        let mut torn = std::fs::read(partial(&paths[0])).unwrap();
        torn.extend_from_slice(b"{\"torn\": tr");
        std::fs::write(partial(&paths[0]), torn).unwrap();
        std::fs::rename(partial(&paths[1]), &paths[1]).unwrap();
        assert!(matches!(
            jobs.open_file(&tenant(), &job.id.to_string(), Some(&batch_ids[0])),
            Err(ExportError::NotReady { .. })
        ));
        (job.id, batch_ids)
    };
    // "Restart": a fresh store handle and service on the same directories.
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap());
    let (jobs, _wake) = ExportJobs::new(Arc::clone(&store), exports);
    let jobs = jobs.with_page(3);
    // One page more continues where the committed cursor was (a restart from scratch would
    // have walked 3 profiles, not 9).
    let calls = AtomicUsize::new(0);
    jobs.worker()
        .process_pending(&|| calls.fetch_add(1, Ordering::SeqCst) < 2)
        .unwrap();
    let resumed = jobs.get(&tenant(), &id.to_string()).unwrap().progress.tally;
    assert_eq!(resumed.exported + resumed.filtered, 9, "{resumed:?}");
    assert_eq!(jobs.worker().process_pending(&|| true).unwrap(), 1);
    let done = jobs.get(&tenant(), &id.to_string()).unwrap();
    assert_eq!(done.status, ExportStatus::Succeeded);
    // P0..P9: even ones and P0..P3, P0 and P2 in both — 7 profiles, 5 + 4 lines.
    assert_eq!(done.progress.tally.exported, 7);
    assert_eq!(done.progress.tally.filtered, 3);
    let read = |batch: &str| {
        let (_, file) = jobs
            .open_file(&tenant(), &id.to_string(), Some(batch))
            .unwrap();
        std::io::read_to_string(file).unwrap()
    };
    let even = read(&batch_ids[0]);
    let low = read(&batch_ids[1]);
    assert_eq!(names(&even), ["P0", "P2", "P4", "P6", "P8"], "{even}");
    assert_eq!(names(&low), ["P0", "P1", "P2", "P3"], "{low}");
    assert_eq!(done.progress.batches[0].profiles, 5);
    assert_eq!(done.progress.batches[1].profiles, 4);
    for batch in &batch_ids {
        let path = jobs.batch_file_path(&tenant(), id, batch);
        assert!(path.exists());
        assert!(!partial(&path).exists());
    }
    assert!(matches!(
        jobs.open_file(&tenant(), &id.to_string(), None),
        Err(ExportError::BatchRequired { .. })
    ));
    assert!(matches!(
        jobs.open_file(&tenant(), &id.to_string(), Some("nope")),
        Err(ExportError::BatchNotFound { .. })
    ));

    // A cancel between pages: the worker stops at its next checkpoint and removes every file.
    let job = jobs.create(&tenant(), request(store.as_ref())).unwrap();
    let calls = AtomicUsize::new(0);
    jobs.worker()
        .process_pending(&|| calls.fetch_add(1, Ordering::SeqCst) < 2)
        .unwrap();
    let paths: Vec<_> = job
        .batches
        .iter()
        .map(|b| jobs.batch_file_path(&tenant(), job.id, &b.batch_id))
        .collect();
    assert!(paths.iter().all(|p| partial(p).exists()));
    let cancelled = jobs.cancel(&tenant(), &job.id.to_string()).unwrap();
    assert_eq!(cancelled.status, ExportStatus::Cancelled);
    assert_eq!(jobs.worker().process_pending(&|| true).unwrap(), 0);
    assert!(paths.iter().all(|p| !partial(p).exists() && !p.exists()));
}
