//! The loop every job worker thread runs: a pass over its queued jobs at start (resuming what a
//! restart interrupted), again when kicked and every few seconds, ending when every handle
//! that can kick it is gone.

use std::cell::Cell;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;

/// How long an idle worker waits before looking at its queue again (jobs written by another
/// node are found this way).
const IDLE: Duration = Duration::from_secs(5);

/// Starts thread `name` running `pass` in the loop described above. `pass` gets a
/// `keep_going` check to call between units of work: it notes kicks that arrive meanwhile
/// (so the next pass starts at once) and turns false once the service is gone.
pub(crate) fn spawn<E: std::fmt::Display>(
    name: &str,
    what: &'static str,
    wake: Receiver<()>,
    mut pass: impl FnMut(&dyn Fn() -> bool) -> Result<usize, E> + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let open = Cell::new(true);
            // A kick seen during a pass names a job the pass may have missed.
            let kicked = Cell::new(false);
            let keep_going = || {
                match wake.try_recv() {
                    Ok(()) => kicked.set(true),
                    Err(TryRecvError::Disconnected) => open.set(false),
                    Err(TryRecvError::Empty) => {}
                }
                open.get()
            };
            loop {
                match pass(&keep_going) {
                    Ok(0) => {}
                    Ok(done) => tracing::info!(done, what, "jobs finished"),
                    // Logged once here; the job stays queued and is retried on the next pass.
                    Err(error) => {
                        tracing::error!(%error, what, "job processing failed; will retry")
                    }
                }
                if !open.get() {
                    return;
                }
                if kicked.replace(false) {
                    continue;
                }
                match wake.recv_timeout(IDLE) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
}

/// Every job document of one kind under `prefix` in `Table::Jobs` (a sandbox holds few: an
/// operator's jobs), decoded with the kind's own `decode`.
pub(crate) fn read_all<T, E: From<tessera_store::Error>>(
    store: &dyn tessera_store::Store,
    prefix: tessera_store::Key,
    decode: impl Fn(&[u8]) -> Result<T, E>,
) -> Result<Vec<T>, E> {
    store
        .scan(
            tessera_store::Table::Jobs,
            &tessera_store::ScanRange::prefix(prefix),
            tessera_store::Direction::Forward,
            100_000,
        )?
        .iter()
        .map(|row| decode(&row.value))
        .collect()
}
