//! The workload generator behind `tessera generate`: a deterministic synthetic retailer's
//! customer base written as XDM JSON lines, one file per dataset, with a manifest and ground
//! truth.
//!
//! What it guarantees:
//! - **Deterministic**: the same [`GenerateConfig`] gives byte-identical files. Household `h`
//!   draws from its own ChaCha stream (`seed`, stream `h`); nothing iterates a hash map.
//! - **Streaming**: records are written as they are generated; memory is bounded by one
//!   household (at most 4 people of at most [`MAX_EVENTS_PER_PERSON`] events), not by `people`.
//! - **Ground truth**: `ground-truth-persons.jsonl` lists every person's identities,
//!   `ground-truth-collisions.jsonl` every identity deliberately shared within a household, and
//!   the manifest the junk identities shared by strangers.
//!
//! What it is not: a statistical model of any real retailer. Shapes (3–8 identities per person,
//! heavy-tailed event counts, daily and weekly rhythm, a shopping funnel) are plausible, and the
//! constants that set them are named at the top of the `people` and `records` modules.

mod catalog;
mod clock;
pub mod ground_truth;
mod ids;
pub mod manifest;
mod people;
mod records;
mod sink;
mod xdm;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use self::ground_truth::{
    Collision, CollisionKind, EventCounts, GroundTruthPerson, IdentityRef, PersonIdentity,
};
pub use self::ids::{
    JUNK_EMAIL, JUNK_EMAIL_NONE, JUNK_PHONE, NS_CRMID, NS_ECID, NS_EMAIL, NS_LOYALTY, NS_PHONE,
};
pub use self::manifest::{DatasetInfo, Manifest};
pub use self::people::{MAX_EVENTS_PER_PERSON, MAX_IDENTITIES};
pub use self::sink::{COLLISIONS_FILE, MANIFEST_FILE, PERSONS_FILE};
pub use self::xdm::{CLASS_EXPERIENCE_EVENT, CLASS_PROFILE};

use self::clock::{days_from_civil, Rhythm};
use self::manifest::{
    Counts, GroundTruthInfo, JunkIdentity, ManifestConfig, NamespaceInfo, Period, FORMAT_VERSION,
};
use self::records::{EventType, Scratch, Stats, JUNK, NAMESPACES, TIERS};
use self::sink::{Dataset, Sink};
use crate::error::{Error, Result};

/// Dataset names, in the order the manifest lists them.
pub const DATASETS: [&str; 5] = [
    "crm-profiles",
    "loyalty-profiles",
    "web-events",
    "callcenter-events",
    "email-events",
];

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// Number of people (at least 1).
    pub people: u64,
    /// RNG seed; the same seed gives the same bytes.
    pub seed: u64,
    /// Mean number of events per person (heavy-tailed around it), in (0, 1000].
    pub events_per_person: f64,
    /// First day of the event period (UTC).
    pub start: time::Date,
    /// Length of the event period in days, 1..=3660.
    pub days: u32,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            people: 1_000,
            seed: 42,
            events_per_person: 30.0,
            start: time::macros::date!(2025 - 01 - 01),
            days: 90,
        }
    }
}

impl GenerateConfig {
    /// Checks ranges once, before anything is written.
    pub fn validate(&self) -> Result<()> {
        if self.people == 0 || self.people > 1_000_000_000 {
            return Err(Error::InvalidConfig {
                field: "people",
                reason: format!("{} is not in 1..=1000000000", self.people),
            });
        }
        if !(self.events_per_person > 0.0 && self.events_per_person <= 1_000.0) {
            return Err(Error::InvalidConfig {
                field: "events-per-person",
                reason: format!("{} is not in (0, 1000]", self.events_per_person),
            });
        }
        if self.days == 0 || self.days > 3_660 {
            return Err(Error::InvalidConfig {
                field: "days",
                reason: format!("{} is not in 1..=3660", self.days),
            });
        }
        if !(1970..=9000).contains(&self.start.year()) {
            return Err(Error::InvalidConfig {
                field: "start",
                reason: format!("{} is before 1970 or after 9000", self.start),
            });
        }
        Ok(())
    }

    fn start_day(&self) -> i64 {
        days_from_civil(
            i64::from(self.start.year()),
            u32::from(u8::from(self.start.month())),
            u32::from(self.start.day()),
        )
    }
}

/// Generates the data set into `out_dir` (created if missing; existing files of the same names
/// are replaced) and returns the manifest, which is also written as `manifest.json`.
pub fn generate(config: &GenerateConfig, out_dir: &Path) -> Result<Manifest> {
    config.validate()?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let rhythm = Rhythm::new(config.start_day(), config.days);
    let mut sink = Sink::create(out_dir)?;
    let mut stats = Stats::default();
    let mut scratch = Scratch::default();
    let mut next_person = 0u64;
    let mut household_index = 0u64;
    while next_person < config.people {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(household_index);
        let hh = people::household(
            &mut rng,
            household_index,
            next_person,
            config.people - next_person,
            config.events_per_person,
            rhythm.start(),
        );
        records::write_household(&hh, &mut rng, &rhythm, &mut sink, &mut stats, &mut scratch)?;
        next_person += hh.members.len() as u64;
        household_index += 1;
    }
    let manifest = build_manifest(config, &rhythm, &sink, &stats);
    sink.finish()?;
    let path = out_dir.join(MANIFEST_FILE);
    let mut bytes = serde_json::to_vec_pretty(&manifest)?;
    bytes.push(b'\n');
    std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    Ok(manifest)
}

fn build_manifest(
    config: &GenerateConfig,
    rhythm: &Rhythm,
    sink: &Sink,
    stats: &Stats,
) -> Manifest {
    let identity_map = "https://ns.adobe.com/xdm/context/identitymap";
    let dataset = |d: Dataset, class: &str, groups: &[&str], primary: &str| DatasetInfo {
        name: d.name().to_owned(),
        file: d.file_name(),
        schema_class: class.to_owned(),
        field_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        primary_identity_namespace: primary.to_owned(),
        records: sink.count(d),
    };
    let datasets = vec![
        dataset(
            Dataset::CrmProfiles,
            CLASS_PROFILE,
            &[
                identity_map,
                "https://ns.adobe.com/xdm/context/profile-person-details",
                "https://ns.adobe.com/xdm/context/profile-personal-details",
                "https://ns.adobe.com/xdm/mixins/profile/profile-loyalty-details",
            ],
            NS_CRMID,
        ),
        dataset(
            Dataset::LoyaltyProfiles,
            CLASS_PROFILE,
            &[
                identity_map,
                "https://ns.adobe.com/xdm/context/profile-personal-details",
                "https://ns.adobe.com/xdm/mixins/profile/profile-loyalty-details",
            ],
            NS_LOYALTY,
        ),
        dataset(
            Dataset::WebEvents,
            CLASS_EXPERIENCE_EVENT,
            &[
                identity_map,
                "https://ns.adobe.com/xdm/context/experienceevent-web",
                "https://ns.adobe.com/xdm/context/experienceevent-commerce",
            ],
            NS_ECID,
        ),
        dataset(
            Dataset::CallCenterEvents,
            CLASS_EXPERIENCE_EVENT,
            &[
                identity_map,
                // tenant field group: `_tessera.callCenter`
                "https://ns.adobe.com/tessera/mixins/callcenter-details",
            ],
            NS_PHONE,
        ),
        dataset(
            Dataset::EmailEvents,
            CLASS_EXPERIENCE_EVENT,
            &[
                identity_map,
                "https://ns.adobe.com/xdm/context/experienceevent-directmarketing",
                "https://ns.adobe.com/xdm/context/experienceevent-marketing",
            ],
            NS_EMAIL,
        ),
    ];
    let records: u64 = datasets.iter().map(|d| d.records).sum();
    let events = records - sink.count(Dataset::CrmProfiles) - sink.count(Dataset::LoyaltyProfiles);
    let namespace = |code: &str, id_type: &str, custom: bool| NamespaceInfo {
        code: code.to_owned(),
        id_type: id_type.to_owned(),
        custom,
    };
    Manifest {
        format_version: FORMAT_VERSION,
        generator: "tessera-bench".to_owned(),
        config: ManifestConfig {
            people: config.people,
            seed: config.seed,
            events_per_person: config.events_per_person,
            start: format!(
                "{:04}-{:02}-{:02}",
                config.start.year(),
                u8::from(config.start.month()),
                config.start.day()
            ),
            days: config.days,
        },
        period: Period {
            start: rhythm.start().to_rfc3339(),
            end: rhythm.end().to_rfc3339(),
        },
        namespaces: vec![
            namespace(NS_CRMID, "CROSS_DEVICE", true),
            namespace(NS_EMAIL, "EMAIL", false),
            namespace(NS_PHONE, "PHONE", false),
            namespace(NS_ECID, "COOKIE", false),
            namespace(NS_LOYALTY, "CROSS_DEVICE", true),
        ],
        datasets,
        counts: Counts {
            persons: stats.persons,
            households: stats.households,
            records,
            events,
            event_types: EventType::ALL
                .iter()
                .zip(stats.event_types)
                .map(|(t, n)| (t.as_str().to_owned(), n))
                .collect(),
            identities: NAMESPACES
                .iter()
                .zip(stats.identities)
                .map(|(ns, n)| ((*ns).to_owned(), n))
                .collect(),
            loyalty_tiers: TIERS
                .iter()
                .zip(stats.tiers)
                .map(|(t, n)| ((*t).to_owned(), n))
                .collect(),
            persons_with_purchase: stats.persons_with_purchase,
        },
        ground_truth: GroundTruthInfo {
            persons_file: PERSONS_FILE.to_owned(),
            collisions_file: COLLISIONS_FILE.to_owned(),
            shared_devices: stats.shared_devices,
            household_phones: stats.household_phones,
            junk: JUNK
                .iter()
                .zip(stats.junk_persons)
                .map(|((ns, id), persons)| JunkIdentity {
                    namespace: (*ns).to_owned(),
                    id: (*id).to_owned(),
                    persons,
                })
                .collect(),
        },
    }
}

/// Flags of `tessera generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Number of people to generate.
    #[arg(long)]
    pub people: u64,
    /// RNG seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Mean events per person (heavy-tailed: most have few, some have hundreds).
    #[arg(long, default_value_t = 30.0)]
    pub events_per_person: f64,
    /// First day of the event period, YYYY-MM-DD (UTC).
    #[arg(long, default_value = "2025-01-01", value_parser = parse_date)]
    pub start: time::Date,
    /// Length of the event period in days.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
}

impl GenerateArgs {
    /// The library configuration these flags describe.
    pub fn config(&self) -> GenerateConfig {
        GenerateConfig {
            people: self.people,
            seed: self.seed,
            events_per_person: self.events_per_person,
            start: self.start,
            days: self.days,
        }
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> std::result::Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format).map_err(|e| format!("expected YYYY-MM-DD: {e}"))
}

/// Entry point of `tessera generate`: generates, then prints counts and throughput.
pub fn run_generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let config = args.config();
    let started = Instant::now();
    let manifest = generate(&config, &args.out)?;
    let secs = started.elapsed().as_secs_f64();
    let records = manifest.counts.records;
    println!(
        "generated {} people ({} households) into {}",
        manifest.counts.persons,
        manifest.counts.households,
        args.out.display()
    );
    for d in &manifest.datasets {
        println!("  {:<20} {:>12} records  ({})", d.name, d.records, d.file);
    }
    println!(
        "  {:<20} {:>12} records in {:.2} s: {:.0} records/s",
        "total",
        records,
        secs,
        records as f64 / secs.max(1e-9)
    );
    println!(
        "  ground truth: {}, {} ({} shared devices, {} household phones, {} junk identities)",
        manifest.ground_truth.persons_file,
        manifest.ground_truth.collisions_file,
        manifest.ground_truth.shared_devices,
        manifest.ground_truth.household_phones,
        manifest.ground_truth.junk.len()
    );
    Ok(())
}
