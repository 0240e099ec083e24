//! The ground truth tells the truth: every identity belongs to exactly one person except the
//! collisions it lists, every identity it names occurs in the records, and stitching the records
//! on their identity maps (ignoring the listed collisions) yields exactly one profile per person.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use tessera_bench::generate::{Collision, CollisionKind, GroundTruthPerson, MAX_IDENTITIES};

type Key = (String, String);

/// Identities of every record, as (namespace, id) lists, from all five datasets.
fn record_identities(
    dir: &std::path::Path,
    manifest: &tessera_bench::Manifest,
) -> anyhow::Result<Vec<Vec<Key>>> {
    let mut out = Vec::new();
    for d in &manifest.datasets {
        for record in common::read_lines::<Value>(&dir.join(&d.file))? {
            let mut ids = Vec::new();
            let map = record["identityMap"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (ns, items) in map {
                for item in items.as_array().cloned().unwrap_or_default() {
                    ids.push((
                        ns.clone(),
                        item["id"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
            out.push(ids);
        }
    }
    Ok(out)
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, x: usize) -> usize {
        let mut r = x;
        while self.0[r] != r {
            r = self.0[r];
        }
        let mut y = x;
        while self.0[y] != r {
            let next = self.0[y];
            self.0[y] = r;
            y = next;
        }
        r
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra] = rb;
        }
    }
}

/// Connected components of identities linked by co-occurring in a record's identity map.
fn stitch(records: &[Vec<Key>], skip: &BTreeSet<Key>) -> Vec<BTreeSet<Key>> {
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut keys: Vec<Key> = Vec::new();
    let mut uf = UnionFind(Vec::new());
    for ids in records {
        let mut first = None;
        for k in ids.iter().filter(|k| !skip.contains(*k)) {
            let i = *index.entry(k.clone()).or_insert_with(|| {
                keys.push(k.clone());
                uf.0.push(uf.0.len());
                uf.0.len() - 1
            });
            match first {
                None => first = Some(i),
                Some(f) => uf.union(f, i),
            }
        }
    }
    let mut groups: BTreeMap<usize, BTreeSet<Key>> = BTreeMap::new();
    for (i, k) in keys.into_iter().enumerate() {
        let root = uf.find(i);
        groups.entry(root).or_default().insert(k);
    }
    groups.into_values().collect()
}

#[test]
fn every_identity_belongs_to_one_person_except_listed_collisions() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = common::generate_small(dir.path(), 11)?;
    let persons: Vec<GroundTruthPerson> =
        common::read_lines(&dir.path().join(&manifest.ground_truth.persons_file))?;
    let collisions: Vec<Collision> =
        common::read_lines(&dir.path().join(&manifest.ground_truth.collisions_file))?;

    assert_eq!(persons.len() as u64, manifest.counts.persons);
    for (i, p) in persons.iter().enumerate() {
        assert_eq!(p.person, i as u64, "persons are dense and ordered");
        assert!(
            (3..=MAX_IDENTITIES).contains(&p.identities.len()),
            "person {} has {} identities",
            p.person,
            p.identities.len()
        );
    }

    // identity -> holders, from the persons file
    let mut holders: BTreeMap<Key, BTreeSet<u64>> = BTreeMap::new();
    let mut marked: BTreeMap<Key, CollisionKind> = BTreeMap::new();
    for p in &persons {
        for id in &p.identities {
            let key = (id.namespace.clone(), id.id.clone());
            assert!(
                holders.entry(key.clone()).or_default().insert(p.person),
                "person {} lists {key:?} twice",
                p.person
            );
            if let Some(kind) = id.collision {
                marked.insert(key, kind);
            }
        }
    }
    let listed: BTreeMap<Key, &Collision> = collisions
        .iter()
        .map(|c| ((c.namespace.clone(), c.id.clone()), c))
        .collect();
    assert_eq!(listed.len(), collisions.len(), "a collision is listed once");
    assert!(!collisions.is_empty(), "the sample has designed collisions");
    assert_eq!(
        collisions.len() as u64,
        manifest.ground_truth.shared_devices + manifest.ground_truth.household_phones
    );

    for (key, who) in &holders {
        match listed.get(key) {
            None => {
                assert_eq!(who.len(), 1, "{key:?} is held by {who:?} but not listed");
                assert!(!marked.contains_key(key), "{key:?} marked but not listed");
            }
            Some(c) => {
                assert!(who.len() >= 2);
                assert_eq!(&c.persons.iter().copied().collect::<BTreeSet<_>>(), who);
                assert_eq!(marked.get(key), Some(&c.kind));
                let expected_ns = match c.kind {
                    CollisionKind::SharedDevice => "ECID",
                    CollisionKind::HouseholdPhone => "Phone",
                    CollisionKind::Junk => panic!("junk is listed in the manifest"),
                };
                assert_eq!(key.0, expected_ns);
            }
        }
    }

    // junk: never a person's own identity; manifest counts the people carrying it
    let mut junk_people: BTreeMap<Key, u64> = BTreeMap::new();
    for p in &persons {
        for j in &p.junk {
            *junk_people
                .entry((j.namespace.clone(), j.id.clone()))
                .or_default() += 1;
        }
    }
    for j in &manifest.ground_truth.junk {
        let key = (j.namespace.clone(), j.id.clone());
        assert!(!holders.contains_key(&key), "junk {key:?} owned by someone");
        assert_eq!(junk_people.get(&key).copied().unwrap_or(0), j.persons);
    }
    assert!(
        manifest.ground_truth.junk.iter().any(|j| j.persons >= 2),
        "the sample has junk shared by strangers"
    );

    // Records mention only known identities, and every known identity occurs in a record.
    let records = record_identities(dir.path(), &manifest)?;
    let junk: BTreeSet<Key> = manifest
        .ground_truth
        .junk
        .iter()
        .map(|j| (j.namespace.clone(), j.id.clone()))
        .collect();
    let mut seen: BTreeSet<Key> = BTreeSet::new();
    for ids in &records {
        for k in ids {
            assert!(
                holders.contains_key(k) || junk.contains(k),
                "record identity {k:?} is not in the ground truth"
            );
            seen.insert(k.clone());
        }
    }
    for key in holders.keys() {
        assert!(seen.contains(key), "{key:?} never occurs in a record");
    }

    // Stitching without the collisions gives one profile per person, holding exactly the
    // person's own identities.
    let mut skip: BTreeSet<Key> = listed.keys().cloned().collect();
    skip.extend(junk.iter().cloned());
    let components = stitch(&records, &skip);
    assert_eq!(components.len(), persons.len());
    let mut by_person: BTreeMap<u64, BTreeSet<Key>> = BTreeMap::new();
    for p in &persons {
        let own: BTreeSet<Key> = p
            .identities
            .iter()
            .filter(|i| i.collision.is_none())
            .map(|i| (i.namespace.clone(), i.id.clone()))
            .collect();
        by_person.insert(p.person, own);
    }
    let expected: BTreeSet<BTreeSet<Key>> = by_person.into_values().collect();
    let got: BTreeSet<BTreeSet<Key>> = components.into_iter().collect();
    assert_eq!(got, expected);

    // A naive stitcher that trusts every identity collapses people: the collisions bite.
    let naive = stitch(&records, &BTreeSet::new());
    assert!(naive.len() < persons.len());
    Ok(())
}
