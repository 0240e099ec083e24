//! `tessera generate` without the `tessera` binary, for measuring the generator alone:
//! `cargo run --release -p tessera-bench --example generate -- --people 100000 --out /tmp/gen`

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: tessera_bench::GenerateArgs,
}

fn main() -> anyhow::Result<()> {
    tessera_bench::run_generate(&Cli::parse().args)
}
