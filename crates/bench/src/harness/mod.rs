//! placeholder
#![allow(missing_docs)]
pub struct BenchArgs;
pub fn run_bench(_a: &BenchArgs) -> anyhow::Result<()> {
    Ok(())
}
