//! What the computed-attribute consumer needs of the events just applied, computed in the
//! ingesting thread and held in memory by their change-feed sequence number. Otherwise the
//! consumer reads each event back from the store and decodes its JSON, most of its cost per
//! event when it keeps up with ingestion.
//!
//! Only a shortcut: bounded (the oldest go first), empty after a restart, and a digest taken
//! out is gone, so a consumer that lags, restarts or repeats a pass reads the store as
//! before. The consumer takes a digest out only for the entry's event (`_id`).
//!
//! **Digests, not events.** The consumer says, per sandbox, what it computes of an event
//! ([`Digester`], set with [`RecentEvents::set_digesters`]): for computed attributes, what
//! the event adds to each live attribute once its filter is tested. Ingestion computes that
//! on the document it just parsed, where the document is still in its core's cache, packs
//! it into one buffer (`packed`) and frees the document, both in the thread that allocated
//! it; the consumer unpacks into memory of its own and folds without evaluating anything.
//! Handing documents over made the consumer's core free memory another core allocated and
//! wrote (~20% of its time saturated); handing over cut and packed documents still left it
//! the filters and the unpacking of every field they read. A digest is handed out only to
//! the digester that made it (by [`Digester::serial`]): an attribute created or changed
//! since makes a new one, and its consumer reads the store instead.
//!
//! **Keeping the consumer within the buffer.** An event the consumer reads back costs it
//! several times one it takes from here, so once it falls behind by more than the buffer
//! holds it stays behind as long as the load lasts: on two saturated cores it never gets
//! the CPU to catch up. Ingestion therefore waits, before it acknowledges a request, while
//! more than half the buffer is waiting for the consumer
//! ([`RecentEvents::wait_for_consumer`]): its records are durable already, only the answer
//! is held back, so under overload the acknowledgement latency grows instead of the
//! consumer's lag. The wait is bounded, and a consumer that made no progress during a whole
//! wait is taken as stalled: nobody waits for it again until it moves.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tessera_model::Tenant;

mod packed;

use packed::Packed;

/// What a consumer computes of an event in the ingesting thread, in place of having the
/// event kept for it (see the module documentation).
pub trait Digester: Send + Sync + Debug {
    /// Names this digester for the process's life: [`RecentEvents::take`] hands a digest
    /// only to a reader naming the digester that made it. Never reused (an address would
    /// be, once the digester is dropped).
    fn serial(&self) -> u64;

    /// The digest of `event`, whose time is `event_ms` (the change-feed entry's
    /// `eventMs`).
    fn digest(&self, event: &Value, event_ms: i64) -> Vec<Value>;
}

/// The digester of each sandbox whose events a consumer wants.
pub type Digesters = HashMap<Tenant, Arc<dyn Digester>>;

/// How many digests [`RecentEvents`] holds by default: some seconds of streaming ingestion
/// at the rates this machine sustains, several consumer passes' worth (a digest of ten
/// attributes is well under a kilobyte).
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
    /// Who digests the events of each sandbox; events of others are not kept.
    digesters: Mutex<Arc<Digesters>>,
    capacity: usize,
    /// Whether a consumer takes events (no computed attribute anywhere: nothing is kept).
    wanted: AtomicBool,
}

/// The held digests, and where the consumer is.
#[derive(Debug, Default)]
struct Kept {
    by_seq: BTreeMap<u64, Held>,
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
    /// Digests held now.
    pub held: usize,
    /// Takes that found their entry's digest (it may still have been refused as made by
    /// another digester).
    pub hits: u64,
    /// Takes that did not: the consumer reads the event from the store.
    pub misses: u64,
    /// Digests dropped to stay within capacity before the consumer took them.
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

/// A digest as kept, with the serial of its digester.
#[derive(Debug)]
struct Held {
    digest: Packed,
    by: u64,
}

impl RecentEvents {
    /// Holds at most `capacity` digests.
    pub fn new(capacity: usize) -> Self {
        Self {
            events: Mutex::new(Kept::default()),
            consumer_moved: Condvar::new(),
            digesters: Mutex::new(Arc::default()),
            capacity,
            wanted: AtomicBool::new(true),
        }
    }

    /// Keeps the digest of the event `event_id` of `tenant`, whose feed entry is `seq` and
    /// time `event_ms`, dropping the oldest beyond capacity; nothing when no digester is
    /// set for the sandbox.
    pub fn put(
        &self,
        seq: u64,
        tenant: &Tenant,
        event_id: &str,
        event_ms: i64,
        event: Map<String, Value>,
    ) {
        if self.capacity == 0 || !self.wanted.load(Ordering::Relaxed) {
            return;
        }
        let digester = self
            .digesters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .cloned();
        let Some(digester) = digester else {
            return;
        };
        // Digested and packed here, and the document freed here, in the thread that
        // allocated it. (Before the lock, so also when the consumer has passed the entry
        // already: that is rare, and digesting under the lock would hold the consumer up.)
        let event = Value::Object(event);
        let items = digester.digest(&event, event_ms);
        drop(event);
        let held = Held {
            digest: packed::pack_digest(event_id, &items),
            by: digester.serial(),
        };
        drop(items);
        let evicted = {
            let mut kept = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            if seq <= kept.passed {
                return;
            }
            kept.by_seq.insert(seq, held);
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

    /// Sets who digests the events of each sandbox from now on (a sandbox not in the map:
    /// its events are not kept). Cheap when `digesters` is the map already set.
    pub fn set_digesters(&self, digesters: Arc<Digesters>) {
        let mut current = self
            .digesters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !Arc::ptr_eq(&current, &digesters) {
            *current = digesters;
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

    /// Takes out the digest of feed entry `seq` if it is held, was made for the event
    /// `event_id`, and by the digester whose serial is `by`.
    pub fn take(&self, seq: u64, event_id: &str, by: u64) -> Option<Vec<Value>> {
        let mut kept = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let before = kept.by_seq.len();
        let held = kept.by_seq.remove(&seq);
        // A miss is progress too: the consumer reads that event from the store.
        self.moved(&mut kept, seq, before);
        match held {
            Some(_) => kept.stats.hits += 1,
            None => kept.stats.misses += 1,
        }
        drop(kept);
        let held = held?;
        if held.by != by {
            return None;
        }
        packed::unpack_digest(&held.digest, event_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Digests an event to its `eventType` and time.
    #[derive(Debug)]
    struct EventType(u64);

    impl Digester for EventType {
        fn serial(&self) -> u64 {
            self.0
        }

        fn digest(&self, event: &Value, event_ms: i64) -> Vec<Value> {
            vec![event["eventType"].clone(), json!(event_ms)]
        }
    }

    fn tenant(sandbox: &str) -> Tenant {
        Tenant::parse("ORG@AdobeOrg", sandbox).expect("tenant")
    }

    fn digesters(serial: u64) -> Arc<Digesters> {
        let digester: Arc<dyn Digester> = Arc::new(EventType(serial));
        Arc::new(HashMap::from([(tenant("prod"), digester)]))
    }

    /// A buffer whose `prod` events are digested by serial 1.
    fn buffer(capacity: usize) -> RecentEvents {
        let recent = RecentEvents::new(capacity);
        recent.set_digesters(digesters(1));
        recent
    }

    /// What serial 1 makes of the event of entry `seq`.
    fn digest(seq: u64) -> Vec<Value> {
        vec![json!("x"), json!(1000 + seq)]
    }

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

        /// Puts entry `seq`'s `prod` event `id` (at 1000 + `seq` ms).
        fn put_event(&self, seq: u64, id: &str) {
            let event = match json!({"_id": id, "eventType": "x"}) {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            let ms = 1000 + i64::try_from(seq).expect("small");
            self.put(seq, &tenant("prod"), id, ms, event);
        }
    }

    #[test]
    fn holds_the_newest_and_hands_each_out_once_to_the_right_entry() {
        let recent = buffer(2);
        recent.put_event(1, "a");
        recent.put_event(3, "c");
        recent.put_event(2, "b");
        assert_eq!(recent.len(), 2, "the oldest sequence number went first");
        assert!(recent.take(1, "a", 1).is_none());
        assert!(
            recent.take(2, "other", 1).is_none(),
            "not the entry's event"
        );
        assert!(
            recent.take(2, "b", 1).is_none(),
            "a mismatched take still drops it"
        );
        assert_eq!(recent.take(3, "c", 1), Some(digest(3)));
        assert!(recent.take(3, "c", 1).is_none(), "taken out, not copied");
        assert!(recent.is_empty());
        let none = buffer(0);
        none.put_event(1, "a");
        assert!(none.is_empty());
        // No consumer wants them: what is held goes and nothing more is kept.
        let unwanted = buffer(4);
        unwanted.put_event(1, "a");
        unwanted.set_wanted(false);
        assert!(unwanted.is_empty());
        unwanted.put_event(2, "b");
        assert!(unwanted.is_empty());
        unwanted.set_wanted(true);
        unwanted.put_event(3, "c");
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
        let recent = buffer(8);
        for seq in 1..=4 {
            recent.put_event(seq, &format!("e{seq}"));
        }
        recent.passed(2);
        assert_eq!(recent.len(), 2);
        recent.put_event(2, "late");
        assert_eq!(recent.len(), 2, "put after the consumer went past it");
        recent.passed(1);
        assert_eq!(recent.len(), 2, "the consumer does not go back");
        assert_eq!(recent.take(3, "e3", 1), Some(digest(3)));
        let stats = recent.stats();
        assert_eq!((stats.held, stats.hits, stats.misses), (1, 1, 0));
        assert!(recent.take(1, "e1", 1).is_none());
        assert_eq!(recent.stats().misses, 1);
    }

    #[test]
    fn ingestion_waits_while_more_than_half_the_buffer_waits_for_the_consumer() {
        let recent = buffer(4);
        recent.put_event(1, "e1");
        recent.put_event(2, "e2");
        assert_eq!(
            recent.wait_for_consumer(Duration::from_secs(60)),
            ConsumerWait::None,
            "half the buffer is not behind yet"
        );
        recent.put_event(3, "e3");
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| recent.wait_for_consumer(Duration::from_secs(60)));
            until_waiting(&recent, 1);
            assert!(recent.take(1, "e1", 1).is_some());
            assert_eq!(waiter.join().ok(), Some(ConsumerWait::CaughtUp));
        });
        recent.put_event(4, "e4");
        recent.put_event(5, "e5");
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
        let recent = buffer(4);
        for seq in 1..=4 {
            recent.put_event(seq, &format!("e{seq}"));
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
        assert!(recent.take(1, "e1", 1).is_some());
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| recent.wait_for_consumer(Duration::from_millis(300)));
            until_waiting(&recent, 1);
            // An event read from the store: progress, with as many held as before.
            assert!(recent.take(9, "e9", 1).is_none());
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
            assert!(recent.take(9, "e9", 1).is_none());
            assert_eq!(waiter.join().ok(), Some(ConsumerWait::Stalled));
        });
        // One stall is reported once, whoever else waited for it.
        recent.passed(10);
        assert_eq!(recent.stats().held, 0);
        for seq in 11..=13 {
            recent.put_event(seq, &format!("e{seq}"));
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
        recent.put_event(14, "e14");
        assert!(recent.take(11, "e11", 1).is_some());
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

    #[test]
    fn a_digest_goes_only_to_its_digester_and_only_sandboxes_with_one_are_kept() {
        let recent = buffer(8);
        recent.put_event(1, "e1");
        recent.put_event(2, "e2");
        assert_eq!(recent.take(1, "e1", 1), Some(digest(1)));
        assert!(
            recent.take(2, "e2", 2).is_none(),
            "made by another digester"
        );
        // A new digester from now on (an attribute created since): what is put after it is
        // its own.
        recent.set_digesters(digesters(2));
        recent.put_event(3, "e3");
        recent.put_event(4, "e4");
        assert!(
            recent.take(3, "e3", 1).is_none(),
            "the old digester's reader"
        );
        assert_eq!(recent.take(4, "e4", 2), Some(digest(4)));
        // A sandbox without a digester: nothing is kept of its events.
        let event = match json!({"_id": "d", "eventType": "x"}) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        recent.put(5, &tenant("dev"), "d", 1005, event);
        assert!(recent.is_empty());
        assert_eq!(recent.stats().hits, 4);
    }
}
