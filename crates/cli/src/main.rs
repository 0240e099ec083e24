//! The `tessera` binary: one executable for the server and its tools.
//!
//! Environment variables (the only ones Tessera reads; flags win over them, and they win
//! over the config file):
//! - `TESSERA_CONFIG` — config file path (`serve --config`)
//! - `TESSERA_LISTEN` — listen address (`serve --listen`)
//! - `TESSERA_DATA_DIR` — data directory (`serve --data-dir`)
//! - `TESSERA_DURABILITY` — `sync` or `relaxed` (`serve --durability`)
//! - `TESSERA_LOG_FORMAT` — `text` (default) or `json`
//! - `RUST_LOG` — log filter (default `info`)
//! - `TESSERA_SERVER`, `TESSERA_ORG`, `TESSERA_SANDBOX`, `TESSERA_API_KEY`, `TESSERA_SECRET` —
//!   server URL, tenant and credentials of the admin commands (`inlet`, `import`)

mod client;
mod demo;
mod import;
mod inlet;
mod keys;
mod serve;

use clap::{Parser, Subcommand};

// glibc's allocator spent most of the identity graph's time in malloc/free (profiled with
// perf); mimalloc halves resolve latency and builds in seconds.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "tessera", version, about = "Real-time customer profile engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server on the embedded store.
    Serve(serve::ServeArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Streaming connections on a running server.
    #[command(subcommand)]
    Inlet(inlet::InletCommand),
    /// Ingest files into a dataset of a running server (batch ingestion).
    Import(import::ImportArgs),
    /// Write a deterministic synthetic customer base (XDM JSON lines + manifest).
    Generate(tessera_bench::GenerateArgs),
    /// Run a benchmark scenario against a running or spawned server.
    Bench(tessera_bench::BenchArgs),
    /// Profile Query Language tools: parse, check, eval, convert, classify.
    Pql {
        /// Arguments of the PQL tool (`tessera pql --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Keys(command) => keys::run(command),
        Command::Inlet(command) => inlet::run(command),
        Command::Import(args) => import::run(args),
        Command::Generate(args) => tessera_bench::run_generate(&args),
        Command::Bench(args) => tessera_bench::run_bench(&args),
        Command::Pql { args } => {
            let code = tessera_pql::cli_main(&args, &mut std::io::stdin(), &mut std::io::stdout());
            return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tessera: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
