//! `tessera bench` without the `tessera` binary, against a running server:
//! `cargo run --release -p tessera-bench --example bench -- --scenario health --server http://127.0.0.1:8080`
//! (`--spawn` needs the real `tessera` binary, which starts itself as the server.)

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: tessera_bench::BenchArgs,
}

fn main() -> anyhow::Result<()> {
    tessera_bench::run_bench(&Cli::parse().args)
}
