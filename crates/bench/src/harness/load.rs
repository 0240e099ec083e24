//! The load generator: open loop (a target rate, latency corrected for coordinated omission)
//! or closed loop (a fixed number of connections each sending back to back), recording
//! latencies in HDR histograms.
//!
//! Open loop works like wrk2: connection `k` of `C` owns the schedule
//! `t0 + (k + j·C) / rate`, `j = 0, 1, ...`. When the previous response arrives after a
//! request's intended send time, the request is sent at once and its latency is measured **from
//! the intended time**, so a stalled server is charged for the requests it delayed. When the
//! connection was idle and only our own timer woke late (tokio timers tick in milliseconds),
//! latency is measured from the actual send, so client timer slack is not charged to the
//! server; that slack is reported separately as `send_lag`.
//!
//! Requests whose intended (open) or actual (closed) send time falls in the warm-up are sent
//! but not recorded; sending stops when the window ends (wall clock) and in-flight requests
//! complete. Open-loop requests scheduled in the window but never sent (the connection was
//! still busy) are counted as `unsent`: a non-zero count means the rate was not sustained.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use super::client::{Connection, RequestSource, Target};
use crate::error::{Error, Result};

/// Highest latency the histograms track exactly (values above are clamped), in microseconds.
const MAX_TRACKED_US: u64 = 3_600_000_000;

/// How load is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Fixed arrival rate (requests per second) spread over `connections` connections.
    Open {
        /// Target requests per second, all connections together.
        rate: f64,
        /// Keep-alive connections sharing the schedule.
        connections: usize,
    },
    /// Each of `concurrency` connections sends its next request when the previous completes.
    Closed {
        /// Number of connections.
        concurrency: usize,
    },
}

impl Mode {
    /// Number of connections this mode opens.
    pub fn connections(&self) -> usize {
        match *self {
            Mode::Open { connections, .. } => connections,
            Mode::Closed { concurrency } => concurrency,
        }
    }
}

/// One load run.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// Open or closed loop.
    pub mode: Mode,
    /// Time before measurement starts.
    pub warmup: Duration,
    /// Measurement window.
    pub duration: Duration,
    /// Seed of the per-connection request generators.
    pub seed: u64,
}

impl LoadPlan {
    /// Checks ranges once, before anything is sent.
    pub fn validate(&self) -> Result<()> {
        let connections = self.mode.connections();
        if connections == 0 || connections > 10_000 {
            return Err(Error::InvalidConfig {
                field: "concurrency",
                reason: format!("{connections} connections is not in 1..=10000"),
            });
        }
        if let Mode::Open { rate, .. } = self.mode {
            if !(rate > 0.0 && rate <= 10_000_000.0) {
                return Err(Error::InvalidConfig {
                    field: "rate",
                    reason: format!("{rate} is not in (0, 10000000]"),
                });
            }
        }
        if self.duration.is_zero() {
            return Err(Error::InvalidConfig {
                field: "duration",
                reason: "must be positive".to_owned(),
            });
        }
        Ok(())
    }
}

/// What a load run observed inside the measurement window.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    /// Latency of every completed request (any status), microseconds.
    pub latency_us: Histogram<u64>,
    /// Open loop only: how late our own timer sent requests on idle connections, microseconds.
    pub send_lag_us: Histogram<u64>,
    /// Completed requests with a 2xx status.
    pub ok: u64,
    /// Completed requests by non-2xx status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that failed in transport (connect, reset, protocol error).
    pub transport_errors: u64,
    /// First transport error, for the report.
    pub first_error: Option<String>,
    /// Open loop only: requests scheduled in the window that were not sent before it ended
    /// (the connection was still busy): the server could not keep up with the rate.
    pub unsent: u64,
    /// Length of the measurement window.
    pub window: Duration,
}

impl LoadOutcome {
    fn empty(window: Duration) -> Result<Self> {
        Ok(Self {
            latency_us: new_histogram()?,
            send_lag_us: new_histogram()?,
            ok: 0,
            statuses: BTreeMap::new(),
            transport_errors: 0,
            first_error: None,
            unsent: 0,
            window,
        })
    }

    fn merge(&mut self, other: LoadOutcome) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.send_lag_us.add(&other.send_lag_us);
        self.ok += other.ok;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.unsent += other.unsent;
    }

    /// Completed requests (any status) in the window.
    pub fn completed(&self) -> u64 {
        self.latency_us.len()
    }

    /// Completed requests per second of window.
    pub fn throughput(&self) -> f64 {
        self.completed() as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).map_err(|e| Error::InvalidConfig {
        field: "histogram",
        reason: e.to_string(),
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs the plan against the target with requests from `source`; returns the merged outcome.
pub async fn run_load(
    target: Arc<Target>,
    source: Arc<dyn RequestSource>,
    plan: &LoadPlan,
) -> Result<LoadOutcome> {
    plan.validate()?;
    let connections = plan.mode.connections();
    // Open every connection before the clock starts, so connection setup is not measured.
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(Connection::open(&target).await?);
    }
    let t0 = Instant::now() + Duration::from_millis(10);
    let measure_from = t0 + plan.warmup;
    let end = measure_from + plan.duration;
    let mut tasks = Vec::with_capacity(connections);
    for (k, connection) in opened.into_iter().enumerate() {
        let worker = Worker {
            target: Arc::clone(&target),
            source: Arc::clone(&source),
            connection: Some(connection),
            rng: {
                let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
                rng.set_stream(k as u64);
                rng
            },
            outcome: LoadOutcome::empty(plan.duration)?,
            measure_from,
            end,
        };
        let task = match plan.mode {
            Mode::Open { rate, connections } => {
                let interval = Duration::from_secs_f64(connections as f64 / rate);
                let offset = Duration::from_secs_f64(k as f64 / rate);
                tokio::spawn(worker.open_loop(t0 + offset, interval))
            }
            Mode::Closed { .. } => tokio::spawn(worker.closed_loop(t0)),
        };
        tasks.push(task);
    }
    let mut total = LoadOutcome::empty(plan.duration)?;
    for task in tasks {
        let outcome = task.await.map_err(|e| Error::Http {
            addr: target.authority.clone(),
            reason: format!("load task failed: {e}"),
        })?;
        total.merge(outcome);
    }
    Ok(total)
}

struct Worker {
    target: Arc<Target>,
    source: Arc<dyn RequestSource>,
    connection: Option<Connection>,
    rng: ChaCha8Rng,
    outcome: LoadOutcome,
    measure_from: Instant,
    end: Instant,
}

impl Worker {
    /// Sends one request; returns true when it completed (any status). Reconnects lazily
    /// after a transport error.
    async fn exchange(&mut self, record: bool) -> bool {
        let spec = self.source.next_request(&mut self.rng);
        let connection = match self.connection.as_mut() {
            Some(c) => c,
            None => match Connection::open(&self.target).await {
                Ok(c) => self.connection.insert(c),
                Err(e) => {
                    self.transport_error(record, e.to_string());
                    // do not spin on a refused connection
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return false;
                }
            },
        };
        match connection.send(&self.target, &spec).await {
            Ok(response) => {
                if record {
                    if response.status.is_success() {
                        self.outcome.ok += 1;
                    } else {
                        *self
                            .outcome
                            .statuses
                            .entry(response.status.as_u16())
                            .or_default() += 1;
                    }
                }
                true
            }
            Err(e) => {
                self.connection = None;
                self.transport_error(record, e.to_string());
                false
            }
        }
    }

    fn transport_error(&mut self, record: bool, error: String) {
        if record {
            self.outcome.transport_errors += 1;
            if self.outcome.first_error.is_none() {
                self.outcome.first_error = Some(error);
            }
        }
    }

    async fn open_loop(mut self, first: Instant, interval: Duration) -> LoadOutcome {
        let mut intended = first;
        let mut previous_done = first;
        while intended < self.end && Instant::now() < self.end {
            let busy = previous_done > intended;
            tokio::time::sleep_until(intended).await;
            let sent = Instant::now();
            let record = intended >= self.measure_from;
            let completed = self.exchange(record).await;
            let done = Instant::now();
            previous_done = done;
            if record {
                // Charged from the intended time when the connection was busy (coordinated
                // omission); from the actual send when only our timer was late.
                let start = if busy { intended } else { sent };
                if completed {
                    self.outcome
                        .latency_us
                        .saturating_record(micros(done.saturating_duration_since(start)));
                }
                if !busy {
                    self.outcome
                        .send_lag_us
                        .saturating_record(micros(sent.saturating_duration_since(intended)));
                }
            }
            intended += interval;
        }
        // Requests scheduled in the window that never went out.
        while intended < self.end {
            if intended >= self.measure_from {
                self.outcome.unsent += 1;
            }
            intended += interval;
        }
        self.outcome
    }

    async fn closed_loop(mut self, first: Instant) -> LoadOutcome {
        tokio::time::sleep_until(first).await;
        loop {
            let sent = Instant::now();
            if sent >= self.end {
                break;
            }
            let record = sent >= self.measure_from;
            let completed = self.exchange(record).await;
            if record && completed {
                let done = Instant::now();
                self.outcome
                    .latency_us
                    .saturating_record(micros(done.saturating_duration_since(sent)));
            }
        }
        self.outcome
    }
}
