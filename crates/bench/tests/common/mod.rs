//! Helpers shared by the generator tests: generate a small data set and read its files.
#![allow(dead_code)]

use std::path::Path;

use serde::de::DeserializeOwned;
use tessera_bench::generate::{generate, GenerateConfig, Manifest};

pub fn small_config(seed: u64) -> GenerateConfig {
    GenerateConfig {
        people: 600,
        seed,
        events_per_person: 12.0,
        start: time::macros::date!(2025 - 03 - 01),
        days: 28,
    }
}

pub fn generate_small(dir: &Path, seed: u64) -> anyhow::Result<Manifest> {
    Ok(generate(&small_config(seed), dir)?)
}

pub fn read_lines<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let text = std::fs::read_to_string(path)?;
    text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
}
