//! Tessera's workload generator (`tessera generate`) and benchmark harness (`tessera bench`).
//!
//! - [`generate`](mod@generate): a deterministic, streaming generator of a synthetic retailer's
//!   customer base as XDM JSON lines (CRM and loyalty profiles, web, call-centre and email
//!   events), with a manifest and the ground truth (which identities belong to which person,
//!   and which are deliberately shared).
//! - [`harness`]: an HTTP load generator (open loop at a rate with coordinated-omission-correct
//!   latency, or closed loop at a concurrency) with HDR histograms, and the benchmark
//!   scenarios, each in its own module.
//!
//! This crate does not depend on any other Tessera crate: the server is reached over HTTP only,
//! so the same harness measures any build. Tests never assert timings; figures go to
//! `BENCHMARKS.md` with the machine and the median of several runs.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let config = tessera_bench::GenerateConfig { people: 20, ..Default::default() };
//! let manifest = tessera_bench::generate(&config, dir.path())?;
//! assert_eq!(manifest.counts.persons, 20);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod error;
pub mod generate;
pub mod harness;
pub mod workload;

pub use error::{Error, Result};
pub use generate::{generate, run_generate, GenerateArgs, GenerateConfig, Manifest};
pub use harness::{run_bench, BenchArgs};
