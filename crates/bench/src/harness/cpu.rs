//! CPU time a spawned server spent, read from Linux's `/proc`: the whole process and each
//! named thread.
//!
//! Throughput on a 2-core machine that also runs the load generator swings by a quarter
//! between identical runs; CPU seconds per change-feed entry swing far less, which is what
//! comparing two server configurations (ten computed attributes or none) needs. Figures are
//! absent where `/proc` is not there to read.

use std::collections::BTreeMap;
use std::path::Path;

/// Clock ticks per second of `utime`/`stime` in `/proc/*/stat` (Linux's `USER_HZ`, 100 on
/// every architecture it ships for that we run on: x86-64, arm64).
const USER_HZ: f64 = 100.0;

/// CPU time so far of one process.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuSample {
    /// User and system time of the process, threads that exited included, seconds.
    pub process_seconds: f64,
    /// On-CPU time of each live thread by name (threads sharing a name summed), seconds.
    pub threads: BTreeMap<String, f64>,
}

/// `utime + stime` of a `stat` line, in ticks: fields 14 and 15, counted after the
/// parenthesised command name (which may itself hold spaces or parentheses).
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ")": state is field 3, so utime (14) is the 12th and stime (15) the 13th.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// First field of `schedstat`: nanoseconds on a CPU.
fn schedstat_seconds(schedstat: &str) -> Option<f64> {
    let ns: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// Reads process `pid`'s CPU time; `None` without `/proc` or once it is gone.
pub fn sample(pid: u32) -> Option<CpuSample> {
    let root = Path::new("/proc").join(pid.to_string());
    let ticks = stat_ticks(&std::fs::read_to_string(root.join("stat")).ok()?)?;
    let mut threads = BTreeMap::new();
    for task in std::fs::read_dir(root.join("task")).ok()?.flatten() {
        let path = task.path();
        let (Ok(name), Ok(schedstat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            // The thread ended between the listing and the read.
            continue;
        };
        if let Some(seconds) = schedstat_seconds(&schedstat) {
            *threads.entry(name.trim().to_owned()).or_insert(0.0) += seconds;
        }
    }
    Some(CpuSample {
        process_seconds: ticks as f64 / USER_HZ,
        threads,
    })
}

impl CpuSample {
    /// CPU seconds spent between `earlier` and `self`, for the process and each thread name
    /// present in both.
    pub fn since(&self, earlier: &CpuSample) -> CpuSample {
        CpuSample {
            process_seconds: self.process_seconds - earlier.process_seconds,
            threads: self
                .threads
                .iter()
                .filter_map(|(name, now)| {
                    earlier
                        .threads
                        .get(name)
                        .map(|before| (name.clone(), now - before))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_sums_user_and_system_time_after_an_awkward_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime ...
        let line = "4242 (tessera (x) y) S 1 2 3 4 5 6 7 8 9 10 1234 56 0 0 20 0 9";
        assert_eq!(stat_ticks(line), Some(1290));
        assert_eq!(stat_ticks("4242 (cut short) S 1 2"), None);
    }

    #[test]
    fn own_process_has_cpu_time_and_named_threads() {
        let burn: u64 = (0..2_000_000u64).fold(0, |a, b| a.wrapping_add(b * b));
        assert!(burn > 0);
        let sample = sample(std::process::id()).expect("/proc is readable on Linux");
        assert!(sample.threads.values().sum::<f64>() > 0.0);
        let later = CpuSample {
            process_seconds: sample.process_seconds + 1.5,
            threads: sample.threads.clone(),
        };
        assert!((later.since(&sample).process_seconds - 1.5).abs() < 1e-9);
    }
}
