//! The computed-attribute backfill worker: attributes created or patched as NEW are
//! backfilled over existing events here ([`tessera_segment::computed::upkeep::backfill`]),
//! off the request path. Woken by the `/ca/attributes` routes; a slow idle tick picks up
//! backfills interrupted by a restart.
//!
//! The incremental upkeep (the change-feed consumer) does not run here but at the start of
//! each streaming-segmentation pass (`crate::segment_stream`), which ingestion already wakes:
//! segments then always see the computed values of the events they are re-evaluated for.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use tessera_store::Store;

use crate::system_jobs::now_ms;

/// Sleep between looks at the pending list when nothing wakes the worker.
const IDLE: Duration = Duration::from_secs(5);

/// Wakes the worker.
#[derive(Debug, Clone)]
pub struct ComputedKick(SyncSender<()>);

impl ComputedKick {
    /// Asks for a backfill round soon; never blocks.
    pub fn kick(&self) {
        let _ = self.0.try_send(());
    }
}

/// The kick handle and the receiver the worker waits on.
pub fn channel() -> (ComputedKick, Receiver<()>) {
    let (tx, rx) = sync_channel(1);
    (ComputedKick(tx), rx)
}

/// Starts the worker thread; it ends when every [`ComputedKick`] is dropped.
pub fn spawn(
    store: Arc<dyn Store>,
    wake: Receiver<()>,
    stream: crate::segment_stream::StreamKick,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tessera-computed".into())
        .spawn(move || loop {
            let span = tracing::info_span!("computed_backfill");
            let _entered = span.enter();
            match tessera_segment::computed::upkeep::backfill(store.as_ref(), &now_ms) {
                // The streaming worker's consumer learns of the new definitions on its next
                // pass, and hands ingestion their digester: without the kick, events
                // arriving before its next wake-up would be read back from the store.
                Ok(done) if done > 0 => stream.kick(),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "computed attribute backfill failed; will retry");
                }
            }
            match wake.recv_timeout(IDLE) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        })
}
