//! Events just applied, held in memory by their change-feed sequence number for the
//! computed-attribute consumer, which otherwise reads each event back from the store and
//! decodes its JSON — most of its cost per event when it keeps up with ingestion.
//!
//! Only a shortcut: bounded (the oldest go first), empty after a restart, and an event
//! taken out is gone, so a consumer that lags, restarts or repeats a pass reads the store as
//! before. Ingestion moves the event it already holds in (no copy); the consumer takes it
//! out (no copy either) and checks it is the entry's event (`_id`) before using it.
//!
//! The consumer can say which fields it reads ([`RecentEvents::set_projection`]):
//! ingestion then keeps only those. A web event is mostly fields no attribute reads, and
//! freeing them in the ingesting thread, where they were allocated, is what ingestion does
//! anyway when nothing is kept; the consumer's thread freeing them instead (memory another
//! core allocated and wrote) was ~10% of its time. Each event remembers the projection it
//! was cut to, and [`RecentEvents::take`] hands it out only to a reader whose needs it
//! covers (an attribute created since reads the store).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};
use tessera_profile::projection::Projection;

/// How many events [`RecentEvents`] holds by default: some seconds of streaming ingestion
/// at the rates this machine sustains, several consumer passes' worth, a few tens of MB.
pub const DEFAULT_CAPACITY: usize = 8_192;

/// Applied events by feed sequence number (see the module documentation).
#[derive(Debug)]
pub struct RecentEvents {
    events: Mutex<Kept>,
    /// What is kept of each event (`None`: all of it).
    projection: Mutex<Option<Arc<Projection>>>,
    capacity: usize,
    /// Whether a consumer takes events (no computed attribute anywhere: nothing is kept).
    wanted: AtomicBool,
}

/// The held events, and the last answer to "does this cut cover that reader".
#[derive(Debug, Default)]
struct Kept {
    by_seq: BTreeMap<u64, Held>,
    /// The cut and the reader of the last coverage check, with its answer: a pass's events
    /// share one cut and one reader, so the walk over both trees is done once per change of
    /// either (it was 2% of the consumer's time per event). Both are held, so neither
    /// address can be reused by another projection while remembered.
    last_cover: Option<(Arc<Projection>, Arc<Projection>, bool)>,
}

/// An event as kept, with what it was cut to.
#[derive(Debug)]
struct Held {
    event: Map<String, Value>,
    projection: Option<Arc<Projection>>,
}

impl Default for RecentEvents {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl RecentEvents {
    /// Holds at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            events: Mutex::new(Kept::default()),
            projection: Mutex::new(None),
            capacity,
            wanted: AtomicBool::new(true),
        }
    }

    /// Keeps the event whose feed entry is `seq`, dropping the oldest beyond capacity.
    pub fn put(&self, seq: u64, event: Map<String, Value>) {
        if self.capacity == 0 || !self.wanted.load(Ordering::Relaxed) {
            return;
        }
        let projection = self
            .projection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut event = event;
        if let Some(projection) = &projection {
            projection.apply(&mut event);
        }
        let evicted = {
            let mut kept = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            kept.by_seq.insert(seq, Held { event, projection });
            let over = kept.by_seq.len().saturating_sub(self.capacity);
            (0..over)
                .filter_map(|_| kept.by_seq.pop_first())
                .collect::<Vec<_>>()
        };
        // Freed outside the lock: a document is many allocations.
        drop(evicted);
    }

    /// Says whether a consumer takes events; when none does, [`RecentEvents::put`] keeps
    /// nothing and what is held is let go.
    pub fn set_wanted(&self, wanted: bool) {
        if self.wanted.swap(wanted, Ordering::Relaxed) && !wanted {
            let held = std::mem::take(
                &mut self
                    .events
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .by_seq,
            );
            drop(held);
        }
    }

    /// Keeps only what `projection` keeps (and `_id`, which [`RecentEvents::take`] checks)
    /// of events put from now on; `None` keeps whole events.
    pub fn set_projection(&self, projection: Option<Projection>) {
        let projection = projection.map(|mut kept| {
            kept.add(&["_id".to_owned()]);
            kept
        });
        let mut current = self
            .projection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if current.as_deref() != projection.as_ref() {
            *current = projection.map(Arc::new);
        }
    }

    /// Takes out the event of feed entry `seq` if it is held, its `_id` is `event_id` and it
    /// kept everything `reads` (`None`: the reader needs the whole event).
    pub fn take(
        &self,
        seq: u64,
        event_id: &str,
        reads: Option<&Arc<Projection>>,
    ) -> Option<Map<String, Value>> {
        let mut kept = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let Held { event, projection } = kept.by_seq.remove(&seq)?;
        let covered = match (&projection, reads) {
            (None, _) => true,
            (Some(cut), Some(reads)) => match &kept.last_cover {
                Some((last_cut, last_reads, answer))
                    if Arc::ptr_eq(last_cut, cut) && Arc::ptr_eq(last_reads, reads) =>
                {
                    *answer
                }
                _ => {
                    let answer = cut.covers(reads);
                    kept.last_cover = Some((Arc::clone(cut), Arc::clone(reads), answer));
                    answer
                }
            },
            (Some(_), None) => false,
        };
        drop(kept);
        (covered && event.get("_id").and_then(Value::as_str).map(str::trim) == Some(event_id))
            .then_some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    impl RecentEvents {
        fn len(&self) -> usize {
            self.events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .by_seq
                .len()
        }

        fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }

    fn event(id: &str) -> Map<String, Value> {
        match json!({"_id": id, "eventType": "x"}) {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn holds_the_newest_and_hands_each_out_once_to_the_right_entry() {
        let recent = RecentEvents::new(2);
        recent.put(1, event("a"));
        recent.put(3, event("c"));
        recent.put(2, event("b"));
        assert_eq!(recent.len(), 2, "the oldest sequence number went first");
        assert!(recent.take(1, "a", None).is_none());
        assert!(
            recent.take(2, "other", None).is_none(),
            "not the entry's event"
        );
        assert!(
            recent.take(2, "b", None).is_none(),
            "a mismatched take still drops it"
        );
        assert_eq!(recent.take(3, "c", None), Some(event("c")));
        assert!(recent.take(3, "c", None).is_none(), "taken out, not copied");
        assert!(recent.is_empty());
        let none = RecentEvents::new(0);
        none.put(1, event("a"));
        assert!(none.is_empty());
        // No consumer wants them: what is held goes and nothing more is kept.
        let unwanted = RecentEvents::new(4);
        unwanted.put(1, event("a"));
        unwanted.set_wanted(false);
        assert!(unwanted.is_empty());
        unwanted.put(2, event("b"));
        assert!(unwanted.is_empty());
        unwanted.set_wanted(true);
        unwanted.put(3, event("c"));
        assert_eq!(unwanted.len(), 1);
    }

    fn projection(paths: &[&str]) -> Arc<Projection> {
        let paths: Vec<Vec<String>> = paths
            .iter()
            .map(|p| p.split('.').map(str::to_owned).collect())
            .collect();
        Arc::new(Projection::of_paths(paths.iter().map(Vec::as_slice)))
    }

    #[test]
    fn keeps_what_is_asked_for_and_hands_events_only_to_readers_they_cover() {
        let recent = RecentEvents::new(8);
        let web_event = |id: &str| match json!({
            "_id": id, "eventType": "web", "timestamp": "2026-01-01T00:00:00Z",
            "web": {"webPageDetails": {"name": "home", "URL": "u"}}, "environment": {"browser": "x"}
        }) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        recent.set_projection(Some(Projection::clone(&projection(&[
            "eventType",
            "timestamp",
            "web.webPageDetails.name",
        ]))));
        recent.put(1, web_event("a"));
        recent.put(2, web_event("b"));
        recent.put(3, web_event("c"));
        let cut = recent.take(
            1,
            "a",
            Some(&projection(&["eventType", "web.webPageDetails.name"])),
        );
        assert_eq!(
            cut.map(Value::Object),
            Some(
                json!({"_id": "a", "eventType": "web", "timestamp": "2026-01-01T00:00:00Z",
                "web": {"webPageDetails": {"name": "home"}}})
            ),
            "what was asked for, and `_id`"
        );
        assert!(
            recent
                .take(2, "b", Some(&projection(&["web.webPageDetails"])))
                .is_none(),
            "cut before the reader needed all of `web.webPageDetails`"
        );
        assert!(
            recent.take(3, "c", None).is_none(),
            "a reader of whole events"
        );
        recent.set_projection(None);
        recent.put(4, web_event("d"));
        assert_eq!(recent.take(4, "d", None), Some(web_event("d")));
    }

    #[test]
    fn the_remembered_coverage_follows_the_cut_and_the_reader() {
        let recent = RecentEvents::new(8);
        let page_view = |id: &str| match json!({
            "_id": id, "eventType": "web", "web": {"webPageDetails": {"name": "home"}}
        }) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        recent.set_projection(Some(Projection::clone(&projection(&["eventType"]))));
        for seq in 1..=3 {
            recent.put(seq, page_view(&format!("e{seq}")));
        }
        let types = projection(&["eventType"]);
        let pages = projection(&["web"]);
        assert!(recent.take(1, "e1", Some(&types)).is_some());
        assert!(
            recent.take(2, "e2", Some(&pages)).is_none(),
            "another reader"
        );
        assert!(
            recent.take(3, "e3", Some(&types)).is_some(),
            "the first again"
        );
        recent.set_projection(Some(Projection::clone(&projection(&["web"]))));
        recent.put(4, page_view("e4"));
        recent.put(5, page_view("e5"));
        assert!(
            recent.take(4, "e4", Some(&types)).is_none(),
            "the same reader, another cut"
        );
        assert!(recent.take(5, "e5", Some(&pages)).is_some());
    }
}
