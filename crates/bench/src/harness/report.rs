//! Turning a load outcome into figures, a table on stdout and a JSON file under the results
//! directory (`<scenario>-<UTC timestamp>.json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::load::{LoadOutcome, Mode};
use super::machine::{GitCommit, Machine};
use crate::error::{Error, Result};

/// Latency summary in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Smallest recorded value.
    pub min: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest recorded value.
    pub max: u64,
}

impl Latency {
    /// Summarises a histogram (all zero when it is empty). Quantiles are the histogram's
    /// "highest equivalent value": at most 0.1% above the true value (3 significant digits).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self {
                min: 0,
                mean: 0.0,
                p50: 0,
                p90: 0,
                p99: 0,
                p999: 0,
                max: 0,
            };
        }
        Self {
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Completed requests in the window (any status).
    pub requests: u64,
    /// Of which 2xx.
    pub ok: u64,
    /// Non-2xx responses by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport failures.
    pub transport_errors: u64,
    /// First transport failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Open loop: scheduled requests never sent (rate not sustained).
    pub unsent: u64,
    /// Completed requests per second.
    pub throughput_rps: f64,
    /// Latency, microseconds (open loop: corrected for coordinated omission).
    pub latency_us: Latency,
    /// Open loop: client timer slack on idle connections, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_lag_us: Option<Latency>,
}

impl Figures {
    /// Figures of an outcome.
    pub fn of(outcome: &LoadOutcome, mode: &Mode) -> Self {
        Self {
            requests: outcome.completed(),
            ok: outcome.ok,
            statuses: outcome.statuses.clone(),
            transport_errors: outcome.transport_errors,
            first_error: outcome.first_error.clone(),
            unsent: outcome.unsent,
            throughput_rps: outcome.throughput(),
            latency_us: Latency::of(&outcome.latency_us),
            send_lag_us: matches!(mode, Mode::Open { .. })
                .then(|| Latency::of(&outcome.send_lag_us)),
        }
    }
}

/// Run parameters as recorded in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// `open` or `closed`.
    pub mode: &'static str,
    /// Open loop: target requests per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Connections used.
    pub connections: usize,
    /// Measurement window, seconds.
    pub duration_seconds: f64,
    /// Warm-up, seconds.
    pub warmup_seconds: f64,
    /// People in the generated data the scenario loads (if it loads any).
    pub people: u64,
    /// Seed of data and request generators.
    pub seed: u64,
    /// Server URL.
    pub server: String,
    /// True when the harness started the server itself.
    pub spawned: bool,
    /// Client runtime worker threads.
    pub client_threads: usize,
    /// Records per request (records/s = requests/s × this).
    pub records_per_request: usize,
}

/// The JSON report of one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Report format identifier.
    pub format: &'static str,
    /// Scenario name.
    pub scenario: String,
    /// What the scenario measures.
    pub measures: String,
    /// Start of the run, RFC 3339 UTC.
    pub started_at: String,
    /// Where it ran.
    pub machine: Machine,
    /// Code under test (git of the current directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git: Option<GitCommit>,
    /// How it ran.
    pub parameters: Parameters,
    /// What it measured.
    pub figures: Figures,
    /// A scenario's own probe figures, when it has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<serde_json::Value>,
}

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let f = &self.figures;
        let p = &self.parameters;
        let ms = |us: u64| us as f64 / 1_000.0;
        let mut out = String::new();
        let mode = match p.rate {
            Some(rate) => format!(
                "open loop at {rate} req/s over {} connections",
                p.connections
            ),
            None => format!("closed loop, {} connections", p.connections),
        };
        let _ = writeln!(out, "scenario     {}  ({})", self.scenario, self.measures);
        let _ = writeln!(
            out,
            "server       {}{}",
            p.server,
            if p.spawned { " (spawned)" } else { "" }
        );
        let _ = writeln!(out, "load         {mode}");
        let _ = writeln!(
            out,
            "window       {:.1} s after {:.1} s warm-up",
            p.duration_seconds, p.warmup_seconds
        );
        let _ = writeln!(
            out,
            "machine      {} ({} cores{})",
            self.machine.hostname,
            self.machine.cores,
            self.machine
                .cpu
                .as_deref()
                .map(|c| format!(", {c}"))
                .unwrap_or_default()
        );
        if let Some(git) = &self.git {
            let _ = writeln!(
                out,
                "commit       {}{}",
                git.commit,
                if git.dirty { " (dirty)" } else { "" }
            );
        }
        let errors: u64 = f.statuses.values().sum::<u64>() + f.transport_errors;
        let _ = writeln!(
            out,
            "requests     {} ({} ok, {} errors{})",
            f.requests,
            f.ok,
            errors,
            if f.unsent > 0 {
                format!(", {} unsent: rate not sustained", f.unsent)
            } else {
                String::new()
            }
        );
        let _ = writeln!(out, "throughput   {:.1} req/s", f.throughput_rps);
        let l = &f.latency_us;
        let _ = writeln!(
            out,
            "latency ms   p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3})",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            l.mean / 1_000.0
        );
        if let Some(lag) = &f.send_lag_us {
            let _ = writeln!(
                out,
                "send lag ms  p50 {:.3}  p99 {:.3}  max {:.3}  (client timer slack, not in latency)",
                ms(lag.p50),
                ms(lag.p99),
                ms(lag.max)
            );
        }
        for (status, n) in &f.statuses {
            let _ = writeln!(out, "status {status}   {n}");
        }
        if let Some(e) = &f.first_error {
            let _ = writeln!(out, "first error  {e}");
        }
        if let Some(probe) = &self.probe {
            let _ = writeln!(out, "probe        {probe}");
        }
        out
    }

    /// Writes `<dir>/<scenario>-<YYYYMMDDTHHMMSSZ>.json` and returns its path.
    pub fn write(&self, dir: &Path, stamp: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(format!("{}-{stamp}.json", self.scenario));
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_summary_reads_quantiles() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let l = Latency::of(&h);
        assert_eq!(l.min, 10);
        assert!((5_000..=5_010).contains(&l.p50), "{}", l.p50);
        assert!((9_000..=9_010).contains(&l.p90), "{}", l.p90);
        assert!((9_900..=9_910).contains(&l.p99), "{}", l.p99);
        assert!((9_990..=10_010).contains(&l.p999), "{}", l.p999);
        assert!((10_000..=10_010).contains(&l.max));
        assert_eq!(Latency::of(&Histogram::<u64>::new(3).unwrap()).max, 0);
    }
}
