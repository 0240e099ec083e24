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

mod keys;
mod serve;

use clap::{Parser, Subcommand};

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Keys(command) => keys::run(command),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tessera: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
