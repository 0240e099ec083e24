//! The manifest written as `manifest.json`: what was generated (datasets, schema class, field
//! groups, primary identity namespace, counts) and where the ground truth is. It contains no
//! timings or paths of the machine, so the same seed gives the same bytes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Version of the output layout; bump it when files or fields change meaning.
pub const FORMAT_VERSION: u32 = 1;

/// Everything a consumer needs to load and check a generated data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Always `tessera-bench`.
    pub generator: String,
    /// The settings that produced this data set.
    pub config: ManifestConfig,
    /// First and last instant (exclusive) of the event period, RFC 3339.
    pub period: Period,
    /// Identity namespaces used.
    pub namespaces: Vec<NamespaceInfo>,
    /// One entry per dataset file.
    pub datasets: Vec<DatasetInfo>,
    /// Totals.
    pub counts: Counts,
    /// Ground-truth files and the designed collisions.
    pub ground_truth: GroundTruthInfo,
}

/// Generator settings as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestConfig {
    /// Number of people.
    pub people: u64,
    /// RNG seed.
    pub seed: u64,
    /// Mean events per person.
    pub events_per_person: f64,
    /// First day, `YYYY-MM-DD`.
    pub start: String,
    /// Length of the period in days.
    pub days: u32,
}

/// Event period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// First instant, RFC 3339.
    pub start: String,
    /// First instant after the period, RFC 3339.
    pub end: String,
}

/// An identity namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceInfo {
    /// Namespace code as used in `identityMap`.
    pub code: String,
    /// AEP identity type (`COOKIE`, `CROSS_DEVICE`, `EMAIL`, `PHONE`).
    pub id_type: String,
    /// False for AEP standard namespaces.
    pub custom: bool,
}

/// One generated dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetInfo {
    /// Dataset name (also the file stem).
    pub name: String,
    /// File name inside the output directory (JSON lines, one XDM record a line).
    pub file: String,
    /// XDM class `$id`.
    pub schema_class: String,
    /// Field group `$id`s the records use.
    pub field_groups: Vec<String>,
    /// Namespace of the identity marked `primary` in every record.
    pub primary_identity_namespace: String,
    /// Number of records.
    pub records: u64,
}

/// Totals over the whole data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// People.
    pub persons: u64,
    /// Households.
    pub households: u64,
    /// Records over all datasets.
    pub records: u64,
    /// Experience events over all event datasets.
    pub events: u64,
    /// Events by `eventType`.
    pub event_types: BTreeMap<String, u64>,
    /// Distinct identities owned by people, by namespace (shared ones counted once).
    pub identities: BTreeMap<String, u64>,
    /// Loyalty members by tier.
    pub loyalty_tiers: BTreeMap<String, u64>,
    /// People with at least one purchase.
    pub persons_with_purchase: u64,
}

/// Where the ground truth is and which collisions were designed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroundTruthInfo {
    /// JSON lines of [`crate::generate::GroundTruthPerson`].
    pub persons_file: String,
    /// JSON lines of [`crate::generate::Collision`].
    pub collisions_file: String,
    /// Number of shared-device collisions in the collisions file.
    pub shared_devices: u64,
    /// Number of household-phone collisions in the collisions file.
    pub household_phones: u64,
    /// Junk identities, each with the number of people whose records carry it.
    pub junk: Vec<JunkIdentity>,
}

/// A junk identity and how many people it touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JunkIdentity {
    /// Namespace code.
    pub namespace: String,
    /// The junk value.
    pub id: String,
    /// People whose records carry it.
    pub persons: u64,
}

impl Manifest {
    /// Reads `manifest.json` from a generated directory.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(super::MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// The dataset entry of that name.
    pub fn dataset(&self, name: &str) -> Option<&DatasetInfo> {
        self.datasets.iter().find(|d| d.name == name)
    }
}
