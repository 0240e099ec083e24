//! Events just applied, held in memory by their change-feed sequence number for the
//! computed-attribute consumer, which otherwise reads each event back from the store and
//! decodes its JSON — most of its cost per event when it keeps up with ingestion.
//!
//! Only a shortcut: bounded (the oldest go first), empty after a restart, and an event
//! taken out is gone, so a consumer that lags, restarts or repeats a pass reads the store as
//! before. Ingestion moves the event it already holds in (no copy); the consumer takes it
//! out (no copy either) and checks it is the entry's event (`_id`) before using it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use serde_json::{Map, Value};

/// How many events [`RecentEvents`] holds by default: some seconds of streaming ingestion
/// at the rates this machine sustains, several consumer passes' worth, a few tens of MB.
pub const DEFAULT_CAPACITY: usize = 8_192;

/// Applied events by feed sequence number (see the module documentation).
#[derive(Debug)]
pub struct RecentEvents {
    events: Mutex<BTreeMap<u64, Map<String, Value>>>,
    capacity: usize,
    /// Whether a consumer takes events (no computed attribute anywhere: nothing is kept).
    wanted: AtomicBool,
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
            events: Mutex::new(BTreeMap::new()),
            capacity,
            wanted: AtomicBool::new(true),
        }
    }

    /// Keeps the event whose feed entry is `seq`, dropping the oldest beyond capacity.
    pub fn put(&self, seq: u64, event: Map<String, Value>) {
        if self.capacity == 0 || !self.wanted.load(Ordering::Relaxed) {
            return;
        }
        let evicted = {
            let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            events.insert(seq, event);
            let over = events.len().saturating_sub(self.capacity);
            (0..over)
                .filter_map(|_| events.pop_first())
                .collect::<Vec<_>>()
        };
        // Freed outside the lock: a document is many allocations.
        drop(evicted);
    }

    /// Says whether a consumer takes events; when none does, [`RecentEvents::put`] keeps
    /// nothing and what is held is let go.
    pub fn set_wanted(&self, wanted: bool) {
        if self.wanted.swap(wanted, Ordering::Relaxed) && !wanted {
            let held =
                std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner));
            drop(held);
        }
    }

    /// Takes out the event of feed entry `seq` if it is held and its `_id` is `event_id`.
    pub fn take(&self, seq: u64, event_id: &str) -> Option<Map<String, Value>> {
        let event = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&seq)?;
        (event.get("_id").and_then(Value::as_str).map(str::trim) == Some(event_id)).then_some(event)
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
        assert!(recent.take(1, "a").is_none());
        assert!(recent.take(2, "other").is_none(), "not the entry's event");
        assert!(
            recent.take(2, "b").is_none(),
            "a mismatched take still drops it"
        );
        assert_eq!(recent.take(3, "c"), Some(event("c")));
        assert!(recent.take(3, "c").is_none(), "taken out, not copied");
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
}
