#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! A graph's links kept as a log (records add rows without reading the links; merges hand
//! the absorbed graphs' rows to the survivor; the limit, the rules, unlinking and
//! compaction read them whole) give the same graphs, links and all, as reading and
//! rewriting every graph's links whole on each record, as Tessera did before.

use proptest::prelude::*;
use tessera_identity::LinkingRules;
use tessera_identity::{resolve_with_links, Graph, GraphConfig, GraphTxn, IdentityKey, Source};
use tessera_model::Tenant;
use tessera_store::{Durability, EmbeddedStore, StoreOptions, WriteBatch};

const VALUES: u8 = 12;

fn key(n: u8) -> IdentityKey {
    let namespace = ["Email", "ECID", "CRMID"][usize::from(n % 3)];
    IdentityKey::new(namespace, format!("v{}", n / 3))
}

#[derive(Debug, Clone)]
enum Op {
    Link(Vec<u8>),
    UnlinkIdentity(u8),
    UnlinkLink(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => proptest::collection::vec(0..VALUES, 1..5).prop_map(Op::Link),
        1 => (0..VALUES).prop_map(Op::UnlinkIdentity),
        1 => (0..VALUES, 0..VALUES).prop_map(|(a, b)| Op::UnlinkLink(a, b)),
    ]
}

struct Setup {
    limit: usize,
    rules: bool,
    per_batch: usize,
}

fn apply(ops: &[Op], setup: &Setup, whole: bool) -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        durability: Durability::Relaxed,
        ..StoreOptions::default()
    };
    let store = EmbeddedStore::open(dir.path(), options).unwrap();
    let tenant = tenant();
    for (chunk_index, chunk) in ops.chunks(setup.per_batch).enumerate() {
        let config = GraphConfig {
            max_identities: setup.limit,
        };
        let rank = |namespace: &str| u8::from(namespace != "ECID");
        let mut txn = GraphTxn::new(&store, tenant.clone(), config, rank);
        if setup.rules {
            txn = txn.with_rules(LinkingRules {
                unique_namespaces: vec!["CRMID".into()],
                namespace_priority: vec!["CRMID".into(), "Email".into(), "ECID".into()],
            });
        }
        if whole {
            txn = txn.reading_links_whole();
        }
        for (i, op) in chunk.iter().enumerate() {
            let at = i64::try_from(chunk_index * setup.per_batch + i).unwrap();
            match op {
                Op::Link(values) => {
                    let mut identities: Vec<IdentityKey> = Vec::new();
                    for n in values {
                        if !identities.contains(&key(*n)) {
                            identities.push(key(*n));
                        }
                    }
                    let dataset = if at % 2 == 0 { "web" } else { "crm" };
                    // A batch every three records, and some records streamed alone: up to
                    // twenty batches, past the ten a link keeps.
                    let batch = format!("b{}", at / 3);
                    let source = Source {
                        dataset,
                        batch: (at % 3 != 2).then_some(batch.as_str()),
                        xaction_id: &format!("x{at}"),
                    };
                    txn.link_from(&identities, at, &source).unwrap();
                }
                Op::UnlinkIdentity(n) => {
                    txn.unlink_identity(&key(*n), at).unwrap();
                }
                Op::UnlinkLink(a, b) => {
                    txn.unlink(&key(*a), &key(*b), at).unwrap();
                }
            }
        }
        let mut batch = WriteBatch::new();
        txn.finish(&mut batch).unwrap();
        tessera_store::Store::commit(&store, batch).unwrap();
    }
    (dir, store)
}

fn tenant() -> Tenant {
    Tenant::parse("L@AdobeOrg", "prod").unwrap()
}

/// The graph of `identity` without its (random) id, members and links in a fixed order.
fn view(store: &EmbeddedStore, identity: &IdentityKey) -> Option<Graph> {
    let mut graph = resolve_with_links(store, &tenant(), identity).unwrap()?;
    graph.id = 0;
    graph.members.sort_by(|x, y| x.identity.cmp(&y.identity));
    for link in &mut graph.links {
        link.datasets.sort();
    }
    graph.links.sort_by(|x, y| {
        let ends = |l: &tessera_identity::graph::Link| {
            let (a, b) = (l.a.clone(), l.b.clone());
            if a <= b {
                (a, b)
            } else {
                (b, a)
            }
        };
        ends(x).cmp(&ends(y))
    });
    Some(graph)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn the_log_gives_the_graphs_that_whole_rewrites_give(
        ops in proptest::collection::vec(op(), 1..60),
        limit in prop_oneof![Just(4usize), Just(1000usize)],
        rules in any::<bool>(),
        per_batch in prop_oneof![Just(1usize), Just(6usize), Just(100usize)],
    ) {
        let setup = Setup { limit, rules, per_batch };
        let (_logged_dir, logged) = apply(&ops, &setup, false);
        let (_whole_dir, whole) = apply(&ops, &setup, true);
        for n in 0..VALUES {
            let identity = key(n);
            prop_assert_eq!(
                view(&logged, &identity),
                view(&whole, &identity),
                "graph of {}",
                identity
            );
        }
    }
}

/// Enough records on one pair of graphs that their pieces pass the compaction limit several
/// times, merged and split by unlinks in between.
#[test]
fn many_pieces_compact_to_the_same_graph() {
    let mut ops = Vec::new();
    for round in 0..4u8 {
        for _ in 0..20 {
            ops.push(Op::Link(vec![0, 1]));
            ops.push(Op::Link(vec![2, 3]));
        }
        ops.push(Op::Link(vec![1, 2 + round % 2]));
        ops.push(Op::UnlinkLink(1, 2 + round % 2));
    }
    let setup = Setup {
        limit: 1000,
        rules: false,
        per_batch: 1,
    };
    let (_a, logged) = apply(&ops, &setup, false);
    let (_b, whole) = apply(&ops, &setup, true);
    for n in 0..4 {
        assert_eq!(view(&logged, &key(n)), view(&whole, &key(n)));
    }
    let graph = view(&logged, &key(0)).unwrap();
    assert_eq!(graph.links.len(), 1);
    let last = ops
        .iter()
        .rposition(|op| matches!(op, Op::Link(values) if values == &[0, 1]))
        .unwrap();
    assert_eq!(
        graph.links[0].last_seen,
        i64::try_from(last).unwrap(),
        "the last confirmation"
    );
}
