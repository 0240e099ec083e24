#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! No half-merged graph survives a crash: records that join graphs are streamed from several
//! clients over a small identity pool (so merges collide), the server is SIGKILLed mid-stream,
//! and after restart every identity's graph is consistent — each member of a graph resolves
//! to that same graph, and every acknowledged record's identities share one graph.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use common::{StreamingClients, Tessera};
use serde_json::{json, Value};

const ORG: &str = "GRAPH@AdobeOrg";

fn call(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    common::call(addr, ORG, method, path, body)
}

fn setup(addr: &str) -> String {
    common::dataset_with_inlet(
        addr,
        ORG,
        &[
            "https://ns.adobe.com/xdm/context/profile",
            "https://ns.adobe.com/xdm/context/identitymap",
        ],
        "graph-inlet",
    );
    "graph-inlet".to_owned()
}

/// A record linking 2–3 identities of a 40-value pool (under the 50-identity limit, so no eviction); deterministic per (client, n).
fn record(client: usize, n: usize) -> (Vec<String>, String) {
    let pick = |salt: usize| (client * 7919 + n * 104_729 + salt * 31) % 40;
    let mut ids: Vec<String> = vec![format!("c{}", pick(1)), format!("c{}", pick(2))];
    if n.is_multiple_of(3) {
        ids.push(format!("c{}", pick(3)));
    }
    ids.dedup();
    let entries: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| json!({"id": id, "primary": i == 0}))
        .collect();
    let body = json!({"header": {}, "body": {"xdmEntity": {"identityMap": {"CRMID": entries}}}})
        .to_string();
    (ids, body)
}

#[test]
fn graphs_are_consistent_after_kill_9_during_merges() {
    let dir = tempfile::tempdir().unwrap();
    let server = Tessera::start(dir.path(), &[]);
    let inlet = setup(&server.addr);
    let acknowledged = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
    let written = Arc::clone(&acknowledged);
    let clients = StreamingClients::start(
        &server.addr,
        &format!("/collection/{inlet}"),
        4,
        |client, n| record(client, n).1,
        move |client, n, _| written.lock().unwrap().push(record(client, n).0),
    );
    while acknowledged.lock().unwrap().len() < 150 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.kill_9();
    clients.stop();

    let restarted = Tessera::start(dir.path(), &[]);
    let pool: Vec<Value> = (0..40)
        .map(|i| json!({"namespace": "CRMID", "id": format!("c{i}")}))
        .collect();
    let (status, reply) = call(
        &restarted.addr,
        "POST",
        "/data/core/identity/clusters/members",
        Some(json!({"compositeXidsWithNamespace": pool})),
    );
    assert_eq!(status, 200, "{reply}");
    let graph_of: BTreeMap<String, BTreeSet<String>> = reply["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let me = c["compositeXid"]["id"].as_str().unwrap().to_owned();
            let members = c["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned())
                .collect();
            (me, members)
        })
        .collect();
    for (identity, members) in &graph_of {
        if members.is_empty() {
            continue;
        }
        assert!(
            members.contains(identity),
            "{identity} is not a member of its own graph {members:?}"
        );
        for member in members {
            assert_eq!(
                &graph_of[member], members,
                "{member} and {identity} disagree on their graph"
            );
        }
    }
    for ids in acknowledged.lock().unwrap().iter() {
        let first = &graph_of[&ids[0]];
        assert!(!first.is_empty(), "acknowledged identity {} lost", ids[0]);
        for id in ids {
            assert_eq!(
                &graph_of[id], first,
                "acknowledged record {ids:?} is split across graphs"
            );
        }
    }
    restarted.kill_9();
}
