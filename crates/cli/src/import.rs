//! `tessera import --dataset ID FILE...`: batch ingestion from the command line — create a
//! batch, upload the files (streamed, with a progress bar), complete it, follow processing,
//! and print a summary with the first refused rows.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::blocking::Body;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{Api, ClientArgs};

/// File format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// JSON lines or a JSON array.
    Json,
    /// CSV with a header row of dotted XDM paths.
    Csv,
}

/// Flags of `tessera import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Target dataset id.
    #[arg(long)]
    dataset: String,
    /// File format (default: from the first file's extension, else json).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Files to ingest.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Counts bytes read into a progress bar.
struct Counting<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Runs the import.
pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let format = args.format.unwrap_or_else(|| {
        let csv = args
            .files
            .first()
            .and_then(|f| f.extension())
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if csv {
            Format::Csv
        } else {
            Format::Json
        }
    });
    let api = Api::new(args.client)?;
    let format_name = match format {
        Format::Json => "json",
        Format::Csv => "csv",
    };
    let batch = api.send(
        api.request(Method::POST, "/data/foundation/import/batches")
            .json(&json!({ "datasetId": args.dataset, "inputFormat": { "format": format_name } })),
    )?;
    let batch_id = batch
        .get("id")
        .and_then(Value::as_str)
        .context("batch without id")?
        .to_owned();
    eprintln!("batch {batch_id} for dataset {}", args.dataset);
    for path in &args.files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .context("file name is not UTF-8")?
            .to_owned();
        let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = ProgressBar::new(size)
            .with_style(bytes_style())
            .with_message(name.clone());
        let body = Body::sized(
            Counting {
                inner: file,
                bar: bar.clone(),
            },
            size,
        );
        let path_part = format!(
            "/data/foundation/import/batches/{batch_id}/datasets/{}/files/{name}",
            args.dataset
        );
        api.send(
            api.request(Method::PUT, &path_part)
                .header("content-type", "application/octet-stream")
                .body(body),
        )?;
        bar.finish();
    }
    api.send(api.request(
        Method::POST,
        &format!("/data/foundation/import/batches/{batch_id}?action=COMPLETE"),
    ))?;
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    let record = loop {
        let answer = api.send(api.request(
            Method::GET,
            &format!("/data/foundation/catalog/batches/{batch_id}"),
        ))?;
        let record = answer.get(&batch_id).cloned().unwrap_or(Value::Null);
        let status = record
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let read = record
            .pointer("/metrics/recordsRead")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        spinner.set_message(format!("{status}: {read} records read"));
        if status != "processing" && status != "loading" {
            break record;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    spinner.finish_and_clear();
    let metric = |name: &str| {
        record
            .pointer(&format!("/metrics/{name}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let status = record
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    println!("batch {batch_id}: {status}");
    println!(
        "  read {}, written {}, duplicates {}, refused {}",
        metric("recordsRead"),
        metric("recordsWritten"),
        metric("duplicateRecordCount"),
        metric("failedRecordCount")
    );
    if let Some(errors) = record.get("errors").and_then(Value::as_array) {
        for error in errors.iter().take(10) {
            println!(
                "  {} row {}: {} {}",
                error.get("file").and_then(Value::as_str).unwrap_or(""),
                error
                    .pointer("/rows/0")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                error.get("path").and_then(Value::as_str).unwrap_or(""),
                error
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            );
        }
        if metric("failedRecordCount") > 10 {
            println!(
                "  … {} more refused rows (see the batch's errors)",
                metric("failedRecordCount") - 10
            );
        }
    }
    match status {
        "success" => Ok(()),
        "partial-success" => Ok(()),
        other => bail!("batch ended {other}"),
    }
}
