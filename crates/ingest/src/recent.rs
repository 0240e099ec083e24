//! Events just applied, held in memory by their change-feed sequence number for the
//! computed-attribute consumer, which otherwise reads each event back from the store and
//! decodes its JSON — most of its cost per event when it keeps up with ingestion.
//!
//! Only a shortcut: bounded (the oldest go first), empty after a restart, and an event
//! taken out is gone, so a consumer that lags, restarts or repeats a pass reads the store as
//! before. The consumer takes an event out and checks it is the entry's event (`_id`)
//! before using it.
//!
//! The consumer can say which fields it reads ([`RecentEvents::set_projection`]):
//! ingestion then keeps only those. A web event is mostly fields no attribute reads. What is
//! kept is packed into one buffer (`packed`) and the document freed, both in the ingesting
//! thread that allocated it; the consumer unpacks into memory of its own. Handing the
//! document itself over made the consumer's core free memory another core allocated and
//! wrote (~20% of its time saturated). Each event remembers the projection it was cut to, and
//! [`RecentEvents::take`] hands it out only to a reader whose needs it covers (an attribute
//! created since reads the store).
//!
//! **Keeping the consumer within the buffer.** An event the consumer reads back costs it
//! about four times one it takes from here, so once it falls behind by more than the buffer
//! holds it stays behind as long as the load lasts: on two saturated cores it never gets
//! the CPU to catch up. Ingestion therefore waits, before it acknowledges a request, while
//! more than half the buffer is waiting for the consumer
//! ([`RecentEvents::wait_for_consumer`]): its records are durable already, only the answer
//! is held back, so under overload the acknowledgement latency grows instead of the
//! consumer's lag. The wait is bounded, and a consumer that made no progress during a whole
//! wait is taken as stalled: nobody waits for it again until it moves.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tessera_profile::projection::Projection;

mod packed;

use packed::Packed;

/// How many events [`RecentEvents`] holds by default: some seconds of streaming ingestion
/// at the rates this machine sustains, several consumer passes' worth, a few tens of MB.
pub const DEFAULT_CAPACITY: usize = 8_192;

/// The longest [`RecentEvents::wait_for_consumer`] holds one request back.
pub const CONSUMER_WAIT: Duration = Duration::from_millis(100);

/// What [`RecentEvents::wait_for_consumer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerWait {
    /// The consumer was close enough behind, or no longer wants events: no wait (or one cut
    /// short).
    None,
    /// The consumer came back within half the buffer during the wait.
    CaughtUp,
    /// The bound passed with the consumer still behind, but moving.
    Bounded,
    /// The consumer made no progress during this whole wait: it is taken as stalled and not
    /// waited for until it moves again. Returned to one waiter per stall; others that waited
    /// as long get [`ConsumerWait::Bounded`].
    Stalled,
    /// The consumer is behind and has not moved since a wait found it stalled: no wait.
    StillStalled,
}

/// Applied events by feed sequence number (see the module documentation).
#[derive(Debug)]
pub struct RecentEvents {
    events: Mutex<Kept>,
    /// Signalled when the consumer brings the events waiting for it under half the buffer
    /// while ingestion waits ([`RecentEvents::wait_for_consumer`]).
    consumer_moved: Condvar,
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
    /// The feed entry the consumer last went past ([`RecentEvents::passed`]): events up to
    /// it will not be taken, so they are not kept.
    passed: u64,
    /// The furthest feed entry the consumer took or went past: a waiter tells a stalled
    /// consumer by it not moving. (Not by takes alone: a pass that keeps failing takes
    /// the same entries again and again.)
    frontier: u64,
    /// Ingestion threads waiting for the consumer.
    waiting: usize,
    /// The consumer did not move during a whole wait (cleared when it moves).
    stalled: bool,
    stats: RecentStats,
}

/// Counts since start, for metrics: how often the consumer found its event here, and how
/// often ingestion waited for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentStats {
    /// Events held now.
    pub held: usize,
    /// Takes that found their event (it may still have been refused as not covering).
    pub hits: u64,
    /// Takes that did not: the consumer reads the event from the store.
    pub misses: u64,
    /// Events dropped to stay within capacity before the consumer took them.
    pub evicted: u64,
    /// Waits that ended with the consumer back within half the buffer.
    pub caught_up: u64,
    /// Waits that reached their bound with the consumer moving but still behind.
    pub bounded: u64,
    /// Waits that found the consumer stalled.
    pub stalled: u64,
    /// Time spent in those waits, in microseconds.
    pub waited_micros: u64,
}

/// An event as kept, with what it was cut to.
#[derive(Debug)]
struct Held {
    event: Packed,
    projection: Option<Arc<Projection>>,
}

impl RecentEvents {
    /// Holds at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            events: Mutex::new(Kept::default()),
            consumer_moved: Condvar::new(),
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
        // Packed here, and the document freed here, in the thread that allocated it. (Packed
        // before the lock, so also when the consumer has passed the entry already: that is
        // rare, and packing under the lock would hold the consumer up.)
        let event = packed::pack(&event);
        let evicted = {
            let mut kept = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            if seq <= kept.passed {
                return;
            }
            kept.by_seq.insert(seq, Held { event, projection });
            let over = kept.by_seq.len().saturating_sub(self.capacity);
            kept.stats.evicted += over as u64;
            (0..over)
                .filter_map(|_| kept.by_seq.pop_first())
                .collect::<Vec<_>>()
        };
        // Freed outside the lock, which the consumer waits on.
        drop(evicted);
    }

    /// Says whether a consumer takes events; when none does, [`RecentEvents::put`] keeps
    /// nothing and what is held is let go.
    pub fn set_wanted(&self, wanted: bool) {
        if self.wanted.swap(wanted, Ordering::Relaxed) && !wanted {
            let held = {
                let mut kept = self.events.lock().unwrap_or_else(PoisonError::into_inner);
                let held = std::mem::take(&mut kept.by_seq);
                // Nobody waits for a consumer that wants nothing.
                self.consumer_moved.notify_all();
                held
            };
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

    /// The consumer went past feed entry `through`: what is held up to it will not be
    /// taken, and is let go, as is anything put for it later.
    pub fn passed(&self, through: u64) {
        let gone = {
            let mut kept = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            if through <= kept.passed {
                return;
            }
            kept.passed = through;
            let before = kept.by_seq.len();
            let ahead = kept.by_seq.split_off(&through.saturating_add(1));
            let gone = std::mem::replace(&mut kept.by_seq, ahead);
            self.moved(&mut kept, through, before);
            gone
        };
        // Freed outside the lock, which ingestion waits on: a pass can let thousands go.
        drop(gone);
    }

    /// Notes that the consumer reached feed entry `reached` (it held `before` events before
    /// this move) and wakes ingestion when the move brings it close enough behind. Only on
    /// that crossing: a waiter waits only while the consumer is further behind, and waking
    /// on every take until the woken threads ran was 2% of the consumer in futex calls.
    fn moved(&self, kept: &mut Kept, reached: u64, before: usize) {
        if reached > kept.frontier {
            kept.frontier = reached;
            kept.stalled = false;
        }
        let threshold = self.capacity / 2;
        if kept.waiting > 0 && before > threshold && kept.by_seq.len() <= threshold {
            self.consumer_moved.notify_all();
        }
    }

    /// Holds the calling ingestion thread, at most `bound`, while more than half the buffer
    /// waits for the consumer (see the module documentation). Called once per request,
    /// after its records are durable and the consumer was woken, before the acknowledgement.
    pub fn wait_for_consumer(&self, bound: Duration) -> ConsumerWait {
        if self.capacity == 0 || !self.wanted.load(Ordering::Relaxed) {
            return ConsumerWait::None;
        }
        let threshold = self.capacity / 2;
        let mut kept = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.by_seq.len() <= threshold {
            return ConsumerWait::None;
        }
        if kept.stalled {
            return ConsumerWait::StillStalled;
        }
        let start = Instant::now();
        let deadline = start
            .checked_add(bound)
            .unwrap_or(start + Duration::from_secs(3600));
        let frontier = kept.frontier;
        let outcome = loop {
            let now = Instant::now();
            if now >= deadline {
                // One stall is reported once, by the waiter that finds it; others waiting
                // as long simply reached their bound.
                break if kept.frontier == frontier && !kept.stalled {
                    kept.stalled = true;
                    kept.stats.stalled += 1;
                    ConsumerWait::Stalled
                } else {
                    kept.stats.bounded += 1;
                    ConsumerWait::Bounded
                };
            }
            kept.waiting += 1;
            let (again, _) = self
                .consumer_moved
                .wait_timeout(kept, deadline - now)
                .unwrap_or_else(PoisonError::into_inner);
            kept = again;
            kept.waiting -= 1;
            if !self.wanted.load(Ordering::Relaxed) {
                break ConsumerWait::None;
            }
            if kept.by_seq.len() <= threshold {
                kept.stats.caught_up += 1;
                break ConsumerWait::CaughtUp;
            }
        };
        let waited = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        kept.stats.waited_micros = kept.stats.waited_micros.saturating_add(waited);
        outcome
    }

    /// What happened so far (see [`RecentStats`]).
    pub fn stats(&self) -> RecentStats {
        let kept = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        RecentStats {
            held: kept.by_seq.len(),
            ..kept.stats
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
        let before = kept.by_seq.len();
        let held = kept.by_seq.remove(&seq);
        // A miss is progress too: the consumer reads that event from the store.
        self.moved(&mut kept, seq, before);
        match held {
            Some(_) => kept.stats.hits += 1,
            None => kept.stats.misses += 1,
        }
        let Held { event, projection } = held?;
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
        if !covered {
            return None;
        }
        let event = packed::unpack(&event)?;
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

    /// Waits until `n` ingestion threads wait for the consumer (a test that breaks fails
    /// here rather than hanging).
    fn until_waiting(recent: &RecentEvents, n: usize) {
        let give_up = Instant::now() + Duration::from_secs(30);
        while recent
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting
            < n
        {
            assert!(Instant::now() < give_up, "nobody waits for the consumer");
            std::thread::yield_now();
        }
    }

    #[test]
    fn what_the_consumer_went_past_is_let_go_and_not_kept_again() {
        let recent = RecentEvents::new(8);
        for seq in 1..=4 {
            recent.put(seq, event(&format!("e{seq}")));
        }
        recent.passed(2);
        assert_eq!(recent.len(), 2);
        recent.put(2, event("late"));
        assert_eq!(recent.len(), 2, "put after the consumer went past it");
        recent.passed(1);
        assert_eq!(recent.len(), 2, "the consumer does not go back");
        assert_eq!(recent.take(3, "e3", None), Some(event("e3")));
        let stats = recent.stats();
        assert_eq!((stats.held, stats.hits, stats.misses), (1, 1, 0));
        assert!(recent.take(1, "e1", None).is_none());
        assert_eq!(recent.stats().misses, 1);
    }

    #[test]
    fn ingestion_waits_while_more_than_half_the_buffer_waits_for_the_consumer() {
        let recent = RecentEvents::new(4);
        recent.put(1, event("e1"));
        recent.put(2, event("e2"));
        assert_eq!(
            recent.wait_for_consumer(Duration::from_secs(60)),
            ConsumerWait::None,
            "half the buffer is not behind yet"
        );
        recent.put(3, event("e3"));
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| recent.wait_for_consumer(Duration::from_secs(60)));
            until_waiting(&recent, 1);
            assert!(recent.take(1, "e1", None).is_some());
            assert_eq!(waiter.join().ok(), Some(ConsumerWait::CaughtUp));
        });
        recent.put(4, event("e4"));
        recent.put(5, event("e5"));
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| recent.wait_for_consumer(Duration::from_secs(60)));
            until_waiting(&recent, 1);
            recent.passed(4);
            assert_eq!(
                waiter.join().ok(),
                Some(ConsumerWait::CaughtUp),
                "a pass counts"
            );
        });
        let stats = recent.stats();
        assert_eq!((stats.caught_up, stats.bounded, stats.stalled), (2, 0, 0));
    }

    #[test]
    fn a_wait_ends_at_its_bound_and_a_stalled_consumer_is_not_waited_for_until_it_moves() {
        let recent = RecentEvents::new(4);
        for seq in 1..=4 {
            recent.put(seq, event(&format!("e{seq}")));
        }
        let bound = Duration::from_millis(30);
        assert_eq!(recent.wait_for_consumer(bound), ConsumerWait::Stalled);
        assert_eq!(
            recent.wait_for_consumer(Duration::from_secs(3600)),
            ConsumerWait::StillStalled,
            "no second wait for a consumer that did not move"
        );
        // Moving, but still more than half the buffer behind: waited for again, up to the
        // bound.
        assert!(recent.take(1, "e1", None).is_some());
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| recent.wait_for_consumer(Duration::from_millis(300)));
            until_waiting(&recent, 1);
            // An event read from the store: progress, with as many held as before.
            assert!(recent.take(9, "e9", None).is_none());
            assert_eq!(waiter.join().ok(), Some(ConsumerWait::Bounded));
        });
        let stats = recent.stats();
        assert_eq!((stats.caught_up, stats.bounded, stats.stalled), (0, 1, 1));
        assert!(stats.waited_micros >= 330_000);
        // Taking the same entry again (a pass that keeps failing and is retried) is no
        // progress.
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| recent.wait_for_consumer(Duration::from_millis(100)));
            until_waiting(&recent, 1);
            assert!(recent.take(9, "e9", None).is_none());
            assert_eq!(waiter.join().ok(), Some(ConsumerWait::Stalled));
        });
        // One stall is reported once, whoever else waited for it.
        recent.passed(10);
        assert_eq!(recent.stats().held, 0);
        for seq in 11..=13 {
            recent.put(seq, event(&format!("e{seq}")));
        }
        std::thread::scope(|scope| {
            let waiters = [
                scope.spawn(|| recent.wait_for_consumer(Duration::from_millis(50))),
                scope.spawn(|| recent.wait_for_consumer(Duration::from_millis(50))),
            ];
            let mut seen: Vec<_> = waiters.into_iter().filter_map(|w| w.join().ok()).collect();
            seen.sort_by_key(|w| format!("{w:?}"));
            assert!(
                seen == [ConsumerWait::Bounded, ConsumerWait::Stalled]
                    || seen == [ConsumerWait::Stalled, ConsumerWait::StillStalled],
                "{seen:?}"
            );
        });
        assert_eq!(recent.stats().stalled, 3);
        // It moves (one taken, three still held: more than half).
        recent.put(14, event("e14"));
        assert!(recent.take(11, "e11", None).is_some());
        // Nothing to wait for once no consumer wants events, and waiters are let go.
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| recent.wait_for_consumer(Duration::from_secs(3600)));
            until_waiting(&recent, 1);
            recent.set_wanted(false);
            assert_eq!(waiter.join().ok(), Some(ConsumerWait::None));
        });
        assert_eq!(
            recent.wait_for_consumer(Duration::from_secs(3600)),
            ConsumerWait::None
        );
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
