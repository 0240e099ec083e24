//! The streaming-segmentation worker: runs [`tessera_segment::streaming`] passes over the
//! change feed as soon as ingestion applies records (woken by the ingestor's hook, so a
//! membership follows its event within milliseconds), and fires due timers.
//!
//! Before every page (pass) of segment evaluation the worker catches the computed-attribute
//! consumer up ([`tessera_segment::computed::upkeep::Consumer::catch_up`]): in the same
//! thread and first, so a segment reading `_{TENANT_ID}.ComputedAttributes.x` is evaluated
//! on values that already include the events that triggered it. Before every page, not only
//! the first: under a load that keeps the feed growing, segment passes "until the head" can
//! last as long as the load, and the attribute consumer left waiting falls out of the events
//! ingestion hands over in memory (ingestion holds acknowledgements back for it; see
//! `tessera_ingest::recent`). The segment consumer may lag; the attribute consumer, which
//! ingestion waits for, is kept close. The thread keeps one attribute consumer for its life
//! (it holds the compiled attribute definitions and recent profile states between rounds,
//! and takes the events ingestion just applied from memory).
//!
//! Both consumers read the feed through one `SharedPage`: caught up together, they start
//! from the same entry, and the segment pass reuses the page the attribute pass just read
//! instead of scanning the same entries again.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use tessera_store::Store;

use crate::system_jobs::now_ms;

/// Longest sleep between passes when nothing wakes the worker (a safety net: feed entries
/// written by other nodes, clock jumps).
const IDLE: Duration = Duration::from_secs(1);

/// Wakes the worker.
#[derive(Debug, Clone)]
pub struct StreamKick(SyncSender<()>);

impl StreamKick {
    /// Asks for a pass soon; never blocks (a pending wake-up already covers this one).
    pub fn kick(&self) {
        let _ = self.0.try_send(());
    }
}

/// The kick handle and the receiver the worker waits on.
pub fn channel() -> (StreamKick, Receiver<()>) {
    let (tx, rx) = sync_channel(1);
    (StreamKick(tx), rx)
}

/// Starts the worker thread; it ends when every [`StreamKick`] is dropped.
pub fn spawn(
    store: Arc<dyn Store>,
    wake: Receiver<()>,
    max_identities: usize,
    recent: Arc<tessera_ingest::recent::RecentEvents>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let shared = Arc::new(tessera_ingest::change_feed::SharedPage::default());
    let mut computed = tessera_segment::computed::upkeep::Consumer::with_recent_events(recent)
        .sharing_pages(Arc::clone(&shared));
    std::thread::Builder::new()
        .name("tessera-segment-stream".into())
        .spawn(move || loop {
            // Pages read in an earlier round are not reused: a consumer would take a short
            // one for the feed's head (see `change_feed::shared_page`).
            shared.clear();
            // The attributes are caught up before every page of segment evaluation, not only
            // before the first: see the module documentation. After a failure, not again
            // this round: the next wake-up retries, once.
            let mut attributes_failed = false;
            loop {
                if !attributes_failed {
                    if let Err(error) = computed.catch_up(store.as_ref(), &now_ms) {
                        tracing::warn!(%error, "computed attribute upkeep failed; will retry");
                        attributes_failed = true;
                    }
                }
                match tessera_segment::streaming::pass_sharing(
                    store.as_ref(),
                    now_ms(),
                    max_identities,
                    &shared,
                ) {
                    Ok(outcome) if outcome.entries >= tessera_segment::streaming::PASS => {}
                    Ok(_) => break,
                    // The next wake-up (at most `IDLE` away) retries, rather than spinning on
                    // a failing store.
                    Err(error) => {
                        tracing::warn!(%error, "streaming segmentation pass failed; will retry");
                        break;
                    }
                }
            }
            if let Err(error) =
                tessera_segment::streaming::fire_timers(store.as_ref(), now_ms(), max_identities)
            {
                tracing::warn!(%error, "segment timers failed; will retry");
            }
            let sleep = match tessera_segment::streaming::next_timer(store.as_ref()) {
                Ok(Some(due)) => Duration::from_millis(
                    u64::try_from(due.saturating_sub(now_ms()).max(1)).unwrap_or(1),
                )
                .min(IDLE),
                _ => IDLE,
            };
            match wake.recv_timeout(sleep) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        })
}
