//! The background thread that processes completed ingestion batches.
//!
//! It works the queue at start (resuming whatever a crash interrupted), whenever a batch is
//! completed (kicked through a channel), and every few seconds as a safety net.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use tessera_ingest::BatchService;

/// Wakes the worker.
#[derive(Clone, Debug)]
pub struct BatchKick(SyncSender<()>);

impl BatchKick {
    /// Asks the worker to look at the queue soon.
    pub fn kick(&self) {
        // A full channel already holds a wake-up; nothing is lost by dropping this one.
        let _ = self.0.try_send(());
    }
}

/// Creates the kick handle and the receiver the worker waits on.
pub fn channel() -> (BatchKick, Receiver<()>) {
    let (tx, rx) = sync_channel(1);
    (BatchKick(tx), rx)
}

/// Starts the worker thread; it ends when every `BatchKick` is dropped.
pub fn spawn(
    service: BatchService,
    wake: Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tessera-batches".into())
        .spawn(move || loop {
            match service.process_pending() {
                Ok(0) => {}
                Ok(done) => tracing::info!(done, "ingestion batches processed"),
                // Logged once here; the batch stays queued and is retried on the next pass.
                Err(error) => tracing::error!(%error, "batch processing failed; will retry"),
            }
            match wake.recv_timeout(Duration::from_secs(5)) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        })
}
