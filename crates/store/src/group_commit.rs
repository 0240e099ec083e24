//! Group commit: many concurrent writers share one fsync.
//!
//! Each commit gets a sequence number in journal order. A writer that needs durability
//! either finds its number already covered by a finished sync, or becomes the leader of
//! the next sync, which covers every commit numbered before it started. With N writers in
//! flight, roughly one fsync serves all of them instead of N back to back.
//!
//! A failed sync is terminal: the state remembers it and every later waiter gets
//! [`Error::Poisoned`], because after a failed fsync the kernel may have dropped the dirty
//! pages and no retry can tell what is on disk.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    /// Highest sequence number handed to a commit.
    written: u64,
    /// Highest sequence number known durable.
    durable: u64,
    /// Whether some thread is currently running the sync.
    leader_active: bool,
    /// Set forever after a sync failed.
    failed: bool,
}

/// Coordinates fsyncs between writer threads.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    synced: Condvar,
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is a single
        // field assignment.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that a commit reached the journal; call in journal order (under the commit
    /// lock). Returns the commit's sequence number.
    pub(crate) fn record_write(&self) -> u64 {
        let mut state = self.lock();
        state.written += 1;
        state.written
    }

    /// Whether a sync has failed.
    pub(crate) fn is_failed(&self) -> bool {
        self.lock().failed
    }

    /// Blocks until commit `seq` is durable, running `sync` as leader when no sync that
    /// covers it is under way.
    pub(crate) fn wait_durable(&self, seq: u64, sync: impl Fn() -> Result<()>) -> Result<()> {
        let mut state = self.lock();
        loop {
            if state.failed {
                return Err(Error::Poisoned);
            }
            if state.durable >= seq {
                return Ok(());
            }
            if state.leader_active {
                state = self
                    .synced
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.leader_active = true;
            let target = state.written;
            drop(state);
            let outcome = sync();
            state = self.lock();
            state.leader_active = false;
            match outcome {
                Ok(()) => state.durable = state.durable.max(target),
                Err(error) => {
                    tracing::error!(%error, "journal sync failed; refusing further writes");
                    state.failed = true;
                }
            }
            self.synced.notify_all();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use super::*;

    #[test]
    fn concurrent_writers_share_syncs() {
        let group = Arc::new(GroupCommit::default());
        let syncs = Arc::new(AtomicUsize::new(0));
        let writers = 16;
        let barrier = Arc::new(Barrier::new(writers));
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                let group = Arc::clone(&group);
                let syncs = Arc::clone(&syncs);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let seq = group.record_write();
                    group
                        .wait_durable(seq, || {
                            syncs.fetch_add(1, Ordering::SeqCst);
                            // A slow disk: writers pile up behind the leader.
                            std::thread::sleep(Duration::from_millis(20));
                            Ok(())
                        })
                        .unwrap();
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let count = syncs.load(Ordering::SeqCst);
        assert!(count >= 1);
        assert!(
            count < writers,
            "expected shared syncs, got {count} for {writers} writers"
        );
        assert_eq!(group.lock().durable, writers as u64);
    }

    #[test]
    fn a_failed_sync_poisons_every_later_commit() {
        let group = GroupCommit::default();
        let seq = group.record_write();
        let failed = group.wait_durable(seq, || Err(Error::Engine("disk gone".into())));
        assert!(matches!(failed, Err(Error::Poisoned)));
        let next = group.record_write();
        assert!(matches!(
            group.wait_durable(next, || Ok(())),
            Err(Error::Poisoned)
        ));
        assert!(group.is_failed());
    }

    #[test]
    fn covered_commit_does_not_sync_again() {
        let group = GroupCommit::default();
        let first = group.record_write();
        let second = group.record_write();
        group.wait_durable(second, || Ok(())).unwrap();
        group
            .wait_durable(first, || {
                panic!("first is already covered by the second sync")
            })
            .unwrap();
    }
}
