//! The streaming worker's two consumers read feed pages through one `SharedPage`: the
//! segment pass reuses the page the attribute pass read in the same round, and only that
//! round.

use std::sync::Arc;

use tessera_ingest::change_feed::{self, ChangeEntry, ChangeKind, GraphGrowth, SharedPage};
use tessera_segment::computed::upkeep::{self, Consumer};
use tessera_segment::streaming;
use tessera_store::{EmbeddedStore, Store, StoreOptions, WriteBatch};

const NOW: i64 = 1_750_000_000_000;

fn event_entry(n: u64) -> ChangeEntry {
    ChangeEntry {
        org: "SHARED@AdobeOrg".into(),
        sandbox: "prod".into(),
        dataset_id: "web".into(),
        kind: ChangeKind::Event,
        namespace: "Email".into(),
        id: format!("{n}@example.com"),
        identities: Vec::new(),
        xaction_id: format!("x-{n}"),
        applied_ms: NOW,
        event_ms: Some(NOW),
        event_id: Some(format!("e-{n}")),
        graph: None,
        segment: None,
        absorbed: Vec::new(),
        growth: GraphGrowth::default(),
    }
}

fn append(store: &dyn Store, numbers: std::ops::Range<u64>) {
    let mut batch = WriteBatch::new();
    for n in numbers {
        change_feed::append(&mut batch, &event_entry(n)).expect("append");
    }
    store.commit(batch).expect("commit");
}

/// A store holding three feed entries, and an attribute consumer reading through a shared
/// page.
fn three_entries() -> (tempfile::TempDir, EmbeddedStore, Arc<SharedPage>, Consumer) {
    let dir = tempfile::tempdir().expect("dir");
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).expect("store");
    let shared = Arc::new(SharedPage::default());
    let attributes = Consumer::default().sharing_pages(Arc::clone(&shared));
    append(&store, 0..3);
    (dir, store, shared, attributes)
}

#[test]
fn the_segment_pass_reuses_the_attribute_pass_page_only_within_a_round() {
    let (_dir, store, shared, mut attributes) = three_entries();

    // One round: the attribute pass reads three entries; two more land before the segment
    // pass, which handles the page the attribute pass read.
    attributes.catch_up(&store, &|| NOW).expect("attributes");
    append(&store, 3..5);
    let first = streaming::pass_sharing(&store, NOW, 50, &shared).expect("segments");
    assert_eq!(first.entries, 3, "the segment pass read the shared page");

    // The next round starts from a cleared page: both consumers reach the head.
    shared.clear();
    attributes.catch_up(&store, &|| NOW).expect("attributes");
    let second = streaming::pass_sharing(&store, NOW, 50, &shared).expect("segments");
    assert_eq!(second.entries, 2, "the entries that landed in between");
    let head = change_feed::head(&store).expect("head");
    for consumer in [upkeep::CONSUMER, streaming::CONSUMER] {
        assert_eq!(
            change_feed::checkpoint(&store, consumer).expect("checkpoint"),
            head,
            "{consumer}"
        );
    }
}

#[test]
fn a_page_from_an_earlier_round_is_not_taken_for_the_head() {
    let (_dir, store, shared, mut attributes) = three_entries();
    // A round whose segment pass did not get to run (it failed, say): the attribute pass's
    // page stays in the shared page, starting where the segment consumer still is.
    attributes.catch_up(&store, &|| NOW).expect("attributes");
    append(&store, 3..5);
    // The next round, in which the attribute pass does not read first (say it failed):
    // the segment pass reads the feed as it is now.
    shared.clear();
    let pass = streaming::pass_sharing(&store, NOW, 50, &shared).expect("segments");
    assert_eq!(pass.entries, 5);
}
