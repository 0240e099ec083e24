#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! The identity graph built from the generated customer base matches the generator's ground
//! truth: every person's identities resolve to one graph, and a graph holds exactly the
//! identities of the people who share an identity with each other (no linking rules yet, so
//! shared devices and household phones still join their households — the expected
//! weakness the linking-rules work removes).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{http, Tessera};
use serde_json::{json, Value};

const ORG: &str = "DEMO@AdobeOrg";

type Identity = (String, String);

fn identities_of(person: &Value) -> BTreeSet<Identity> {
    let mut all: BTreeSet<Identity> = BTreeSet::new();
    for key in ["identities", "junk"] {
        for identity in person[key].as_array().into_iter().flatten() {
            all.insert((
                identity["namespace"].as_str().unwrap().to_owned(),
                identity["id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    all
}

#[test]
fn graphs_match_the_generators_ground_truth() {
    let people = 80;
    let generated = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "generate",
            "--people",
            &people.to_string(),
            "--seed",
            "42",
            "--out",
        ])
        .arg(generated.path())
        .status()
        .unwrap();
    assert!(status.success());
    let persons: Vec<Value> =
        std::fs::read_to_string(generated.path().join("ground-truth-persons.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();

    // Expected graphs: people joined whenever they share an identity (union-find).
    let mut parent: Vec<usize> = (0..persons.len()).collect();
    fn find(parent: &mut [usize], x: usize) -> usize {
        let mut root = x;
        while parent[root] != root {
            root = parent[root];
        }
        root
    }
    let mut owner: BTreeMap<Identity, usize> = BTreeMap::new();
    for (index, person) in persons.iter().enumerate() {
        for identity in identities_of(person) {
            match owner.get(&identity) {
                Some(&other) => {
                    let (a, b) = (find(&mut parent, index), find(&mut parent, other));
                    parent[a] = b;
                }
                None => {
                    owner.insert(identity, index);
                }
            }
        }
    }
    let mut expected: BTreeMap<usize, BTreeSet<Identity>> = BTreeMap::new();
    for (index, person) in persons.iter().enumerate() {
        let root = find(&mut parent, index);
        expected
            .entry(root)
            .or_default()
            .extend(identities_of(person));
    }

    let dir = tempfile::tempdir().unwrap();
    let server = Tessera::start(
        dir.path(),
        &["--demo", "--demo-people", &people.to_string()],
    );
    let headers = [("x-gw-ims-org-id", ORG), ("x-sandbox-name", "prod")];
    loop {
        let (_, body) = http(
            &server.addr,
            "GET",
            "/data/foundation/catalog/batches",
            &headers,
            None,
        );
        let batches: Value = serde_json::from_str(&body).unwrap();
        let map = batches.as_object().unwrap();
        if map.len() == 5 && map.values().all(|b| b["status"] == "success") {
            break;
        }
        assert!(
            !map.values()
                .any(|b| matches!(b["status"].as_str(), Some("failed" | "partial-success"))),
            "{batches}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let mut merged_households = 0;
    for (index, person) in persons.iter().enumerate() {
        let mine = identities_of(person);
        let asked: Vec<Value> = mine
            .iter()
            .map(|(ns, id)| json!({"namespace": ns, "id": id}))
            .collect();
        let body = json!({ "compositeXidsWithNamespace": asked }).to_string();
        let (status, reply) = http(
            &server.addr,
            "POST",
            "/data/core/identity/clusters/members",
            &headers,
            Some(&body),
        );
        assert_eq!(status, 200, "{reply}");
        let reply: Value = serde_json::from_str(&reply).unwrap();
        let clusters: Vec<BTreeSet<Identity>> = reply["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                c["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        (
                            m["namespace"].as_str().unwrap().to_owned(),
                            m["id"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .collect();
        let want = &expected[&find(&mut parent, index)];
        for cluster in &clusters {
            assert_eq!(
                cluster, want,
                "person {index}: graph differs from the ground truth"
            );
        }
        if want.len() > mine.len() {
            merged_households += 1;
        }
    }
    assert!(
        merged_households > 0,
        "the data set has designed collisions; without linking rules they merge people"
    );
    server.kill_9();
}
