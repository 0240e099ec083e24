//! The benchmark harness behind `tessera bench`: target a running server (`--server URL`) or
//! spawn one (`--spawn`), prepare the scenario, warm up, measure, then print a table and write
//! a JSON report under `--out-dir`.
//!
//! - [`client`]: target, requests, one keep-alive HTTP/1.1 connection.
//! - [`load`]: open-loop (coordinated-omission-correct) and closed-loop load with HDR histograms.
//! - [`report`]: figures, table, JSON file; [`machine`]: host, cores, CPU, git commit.
//! - [`server`]: spawning `tessera serve` and waiting for `GET /ready`; [`cpu`]: the CPU
//!   time it spent.
//! - [`scenario`]: one module per scenario.
//!
//! Tests never assert on timings of the machine; the load generator's maths is tested against
//! an in-process server with a known delay, asserting on recorded values.

pub mod client;
pub mod cpu;
mod drain;
pub mod load;
pub mod machine;
pub mod report;
pub mod scenario;
pub mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::header::{HeaderName, HeaderValue};

use self::client::Target;
use self::load::{LoadPlan, Mode};
use self::machine::{GitCommit, Machine};
use self::report::{Figures, Parameters, Report};
use self::scenario::{Availability, Scenario, ScenarioContext};
use self::server::SpawnedServer;

/// Default closed-loop concurrency when neither `--rate` nor `--concurrency` is given.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Longest wait for the change-feed consumers to catch up after an ingestion load.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// Flags of `tessera bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Scenario to run.
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// URL of a running server, e.g. http://127.0.0.1:8080.
    #[arg(long, required_unless_present = "spawn", conflicts_with = "spawn")]
    pub server: Option<String>,
    /// Start this executable as `tessera serve` on a free port and a temporary data directory.
    #[arg(long)]
    pub spawn: bool,
    /// Open loop: target requests per second (latency corrected for coordinated omission).
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Closed loop: connections each sending back to back [default: 16].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Open loop: keep-alive connections sharing the schedule.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Measurement window (e.g. 30s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// People in the generated data set the scenario loads.
    #[arg(long, default_value_t = 10_000)]
    pub people: u64,
    /// Seed of the data set and of the request generators.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Directory of the JSON reports.
    #[arg(long, default_value = "bench-results")]
    pub out_dir: PathBuf,
    /// Worker threads of the load generator's runtime (the server shares the machine).
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Records per request for scenarios that send records (`ingest-stream` uses the
    /// multi-message inlet `/collection/batch/{id}` when above 1).
    #[arg(long, default_value_t = 1)]
    pub records_per_request: usize,
    /// `ingest-stream`: computed attributes (0–10) defined before the load. After the window
    /// the run waits until the change-feed consumers (computed attributes, streaming
    /// segmentation) have caught up, and reports the rate including that drain: what
    /// upkeep adds to ingestion is the difference between runs with 0 and with 10.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=10))]
    pub computed_attributes: u8,
    /// Extra request header `name: value` (repeatable), e.g. authorization for keyed servers.
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
}

impl BenchArgs {
    /// The load plan these flags describe.
    pub fn load_plan(&self) -> crate::Result<LoadPlan> {
        let mode = match (self.rate, self.concurrency) {
            (Some(rate), _) => Mode::Open {
                rate,
                connections: self.connections,
            },
            (None, concurrency) => Mode::Closed {
                concurrency: concurrency.unwrap_or(DEFAULT_CONCURRENCY),
            },
        };
        let plan = LoadPlan {
            mode,
            warmup: self.warmup,
            duration: self.duration,
            seed: self.seed,
        };
        plan.validate()?;
        Ok(plan)
    }
}

/// Parses `500ms`, `10s`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => (text.get(..at).unwrap_or(""), text.get(at..).unwrap_or("")),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("expected a duration like 10s, 500ms or 2m, got {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1_000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// Parses `name: value`.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("expected name: value, got {text:?}"))?;
    let name = name.trim();
    HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header name {name:?}: {e}"))?;
    let value = value.trim();
    HeaderValue::from_str(value).map_err(|e| format!("header value of {name}: {e}"))?;
    Ok((name.to_owned(), value.to_owned()))
}

/// Entry point of `tessera bench`: runs one scenario and reports it. Creates its own runtime.
pub fn run_bench(args: &BenchArgs) -> anyhow::Result<()> {
    if let Availability::NotAvailable(reason) = args.scenario.availability() {
        println!(
            "scenario {}: not available ({reason})",
            args.scenario.name()
        );
        return Ok(());
    }
    let plan = args.load_plan()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .thread_name("tessera-bench")
        .build()
        .context("start the load generator's runtime")?;
    runtime.block_on(bench(args, plan))
}

async fn bench(args: &BenchArgs, plan: LoadPlan) -> anyhow::Result<()> {
    let started_at = time::OffsetDateTime::now_utc();
    let (mut target, spawned) = if args.spawn {
        let exe = std::env::current_exe().context("find the current executable")?;
        let server = SpawnedServer::start(&exe, Duration::from_secs(60))
            .await
            .context("spawn the server")?;
        (Target::from_addr(server.addr), Some(server))
    } else {
        let url = args
            .server
            .as_deref()
            .context("give --server URL or --spawn")?;
        let target = Target::from_url(url).await?;
        server::wait_ready(&target, Duration::from_secs(10), None).await?;
        (target, None)
    };
    for (name, value) in &args.headers {
        target.extra_headers.push((
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(value)?,
        ));
    }
    let target = Arc::new(target);
    let context = ScenarioContext {
        target: Arc::clone(&target),
        people: args.people,
        seed: args.seed,
        records_per_request: args.records_per_request.max(1),
        computed_attributes: usize::from(args.computed_attributes),
    };
    let server_pid = spawned.as_ref().and_then(SpawnedServer::pid);
    let measured = async {
        let source = args
            .scenario
            .prepare(&context)
            .await?
            .with_context(|| format!("scenario {} is not available", args.scenario.name()))?;
        let kept = Arc::clone(&source);
        let ingesting = args.scenario == Scenario::IngestStream;
        // A spawned server's CPU per feed entry over load and drain (see `cpu`).
        let before = match (ingesting, server_pid.and_then(cpu::sample)) {
            (true, Some(sample)) => Some((sample, drain::head(&target).await?)),
            _ => None,
        };
        let outcome = load::run_load(Arc::clone(&target), source, &plan).await?;
        let probe = if ingesting {
            let mut drained =
                drain::wait(&target, &outcome, context.records_per_request, DRAIN_LIMIT).await?;
            let after = server_pid.and_then(cpu::sample);
            if let (Some((before, head_before)), Some(after), Some(report)) =
                (before, after, drained.as_object_mut())
            {
                let entries = drain::head(&target).await?.saturating_sub(head_before);
                report.insert(
                    "serverCpu".into(),
                    drain::cpu_per_entry(&before, &after, entries),
                );
            }
            Some(drained)
        } else {
            kept.probe_report()
        };
        Ok::<_, anyhow::Error>((outcome, probe))
    }
    .await;
    // Stop a spawned server whatever happened, then report.
    if let Some(server) = spawned {
        server.stop().await.context("stop the spawned server")?;
    }
    let (outcome, probe) = measured?;
    let report = Report {
        format: "tessera-bench/1",
        scenario: args.scenario.name().to_owned(),
        measures: args.scenario.measures().to_owned(),
        started_at: format_rfc3339(started_at),
        machine: Machine::current(),
        git: GitCommit::current(),
        parameters: Parameters {
            mode: match plan.mode {
                Mode::Open { .. } => "open",
                Mode::Closed { .. } => "closed",
            },
            rate: match plan.mode {
                Mode::Open { rate, .. } => Some(rate),
                Mode::Closed { .. } => None,
            },
            connections: plan.mode.connections(),
            duration_seconds: plan.duration.as_secs_f64(),
            warmup_seconds: plan.warmup.as_secs_f64(),
            people: args.people,
            seed: args.seed,
            server: target.url(),
            spawned: args.spawn,
            client_threads: args.client_threads.max(1),
            records_per_request: args.records_per_request.max(1),
        },
        figures: Figures::of(&outcome, &plan.mode),
        probe,
    };
    print!("{}", report.table());
    let path = report.write(&args.out_dir, &file_stamp(started_at))?;
    println!("report       {}", path.display());
    Ok(())
}

fn format_rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn file_stamp(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(&format)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn flags_select_the_loop() {
        let cli = Cli::try_parse_from(["x", "--scenario", "health", "--spawn", "--rate", "1000"])
            .unwrap();
        assert_eq!(
            cli.bench.load_plan().unwrap().mode,
            Mode::Open {
                rate: 1000.0,
                connections: 32
            }
        );
        let cli = Cli::try_parse_from([
            "x",
            "--scenario",
            "lookup",
            "--server",
            "http://127.0.0.1:1",
            "--concurrency",
            "4",
            "--header",
            "authorization: Bearer x",
        ])
        .unwrap();
        assert_eq!(
            cli.bench.load_plan().unwrap().mode,
            Mode::Closed { concurrency: 4 }
        );
        assert_eq!(cli.bench.headers[0].0, "authorization");
        assert!(Cli::try_parse_from(["x", "--scenario", "health"]).is_err());
        assert!(Cli::try_parse_from([
            "x",
            "--scenario",
            "health",
            "--spawn",
            "--rate",
            "1",
            "--concurrency",
            "2"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "x",
            "--scenario",
            "health",
            "--spawn",
            "--server",
            "http://a:1"
        ])
        .is_err());
    }

    #[test]
    fn unavailable_scenarios_say_so() {
        for s in Scenario::ALL {
            let expected = matches!(
                s,
                Scenario::Health
                    | Scenario::IngestStream
                    | Scenario::Lookup
                    | Scenario::LookupEvents
                    | Scenario::StreamingSegment
            );
            assert_eq!(
                s.availability() == Availability::Available,
                expected,
                "{}",
                s.name()
            );
        }
        let cli = Cli::try_parse_from(["x", "--scenario", "batch-segment", "--spawn"]).unwrap();
        // returns before spawning anything
        run_bench(&cli.bench).unwrap();
    }
}
