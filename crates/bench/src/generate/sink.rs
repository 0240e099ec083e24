//! Output files: one buffered JSON-lines writer per dataset plus the ground-truth files, and the
//! counters the manifest reports. Records go straight to disk as they are generated, so memory
//! stays constant whatever the number of people.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// The datasets the generator writes, in manifest order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dataset {
    CrmProfiles,
    LoyaltyProfiles,
    WebEvents,
    CallCenterEvents,
    EmailEvents,
}

impl Dataset {
    pub const ALL: [Dataset; 5] = [
        Dataset::CrmProfiles,
        Dataset::LoyaltyProfiles,
        Dataset::WebEvents,
        Dataset::CallCenterEvents,
        Dataset::EmailEvents,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dataset::CrmProfiles => "crm-profiles",
            Dataset::LoyaltyProfiles => "loyalty-profiles",
            Dataset::WebEvents => "web-events",
            Dataset::CallCenterEvents => "callcenter-events",
            Dataset::EmailEvents => "email-events",
        }
    }

    pub fn file_name(self) -> String {
        format!("{}.jsonl", self.name())
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// Ground-truth file listing every person and their identities.
pub const PERSONS_FILE: &str = "ground-truth-persons.jsonl";
/// Ground-truth file listing every designed collision (shared device, household phone).
pub const COLLISIONS_FILE: &str = "ground-truth-collisions.jsonl";
/// The manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

const BUFFER_BYTES: usize = 1 << 18;

struct Out {
    path: PathBuf,
    writer: BufWriter<File>,
}

impl Out {
    fn create(path: PathBuf) -> Result<Self> {
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            writer: BufWriter::with_capacity(BUFFER_BYTES, file),
            path,
        })
    }

    fn line<T: Serialize>(&mut self, value: &T) -> Result<()> {
        serde_json::to_writer(&mut self.writer, value).map_err(|e| {
            if e.is_io() {
                Error::io(&self.path, e.into())
            } else {
                Error::Json(e)
            }
        })?;
        self.writer
            .write_all(b"\n")
            .map_err(|e| Error::io(&self.path, e))
    }

    fn finish(mut self) -> Result<()> {
        self.writer.flush().map_err(|e| Error::io(&self.path, e))?;
        self.writer
            .get_ref()
            .sync_all()
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// All output writers of one generation run, with per-dataset record counts.
pub struct Sink {
    datasets: Vec<Out>,
    persons: Out,
    collisions: Out,
    counts: [u64; 5],
}

impl Sink {
    pub fn create(dir: &Path) -> Result<Self> {
        let datasets = Dataset::ALL
            .iter()
            .map(|d| Out::create(dir.join(d.file_name())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            datasets,
            persons: Out::create(dir.join(PERSONS_FILE))?,
            collisions: Out::create(dir.join(COLLISIONS_FILE))?,
            counts: [0; 5],
        })
    }

    /// Appends one record to a dataset file.
    pub fn record<T: Serialize>(&mut self, dataset: Dataset, value: &T) -> Result<()> {
        if let Some(out) = self.datasets.get_mut(dataset.slot()) {
            out.line(value)?;
        }
        if let Some(count) = self.counts.get_mut(dataset.slot()) {
            *count += 1;
        }
        Ok(())
    }

    pub fn person<T: Serialize>(&mut self, value: &T) -> Result<()> {
        self.persons.line(value)
    }

    pub fn collision<T: Serialize>(&mut self, value: &T) -> Result<()> {
        self.collisions.line(value)
    }

    pub fn count(&self, dataset: Dataset) -> u64 {
        self.counts.get(dataset.slot()).copied().unwrap_or(0)
    }

    /// Flushes and fsyncs every file.
    pub fn finish(self) -> Result<()> {
        for out in self.datasets {
            out.finish()?;
        }
        self.persons.finish()?;
        self.collisions.finish()
    }
}
