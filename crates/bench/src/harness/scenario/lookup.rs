//! `lookup`: `GET /data/core/ups/access/entities` by a random identity of a random person of
//! the generated data set: merge-on-read latency (DESIGN §7: p99 ≤ 2 ms at 1,000 req/s).
//!
//! Preparation generates the data set (`--people`, `--seed`), creates the `LoyaltyId`
//! namespace and a schema and profile-enabled dataset for each profile file, streams the CRM
//! and loyalty profiles plus the web events that carry a login (they stitch cookies to
//! people) through `/collection/batch`, 100 per request; the request source then draws a
//! random identity of a random person from the ground truth.

use bytes::Bytes;
use hyper::Method;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::ingest_stream::call;
use super::{Availability, ScenarioContext};
use crate::error::{Error, Result};
use crate::generate::{
    generate, DatasetInfo, GenerateConfig, GroundTruthPerson, Manifest, PERSONS_FILE,
};
use crate::harness::client::{Connection, RequestSource, RequestSpec, Target};

pub(crate) const MEASURES: &str =
    "profile lookup by any identity (materialized view; merge on the first read after a write)";

/// Messages per loading request.
const CHUNK: usize = 100;

pub(crate) fn availability() -> Availability {
    Availability::Available
}

/// Looks up random identities.
pub(crate) struct Lookup {
    paths: Vec<String>,
}

impl RequestSource for Lookup {
    fn next_request(&self, rng: &mut ChaCha8Rng) -> RequestSpec {
        let index = rng.gen_range(0..self.paths.len().max(1));
        RequestSpec::get(
            self.paths
                .get(index)
                .cloned()
                .unwrap_or_else(|| "/health".to_owned()),
        )
    }
}

pub(crate) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(crate) async fn load(
    connection: &mut Connection,
    target: &Target,
    inlet: &str,
    dataset: &str,
    lines: &[String],
) -> Result<()> {
    for chunk in lines.chunks(CHUNK) {
        let messages: Vec<Value> = chunk
            .iter()
            .map(|line| serde_json::from_str::<Value>(line).map(|entity| json!({"header": {"datasetId": dataset}, "body": {"xdmEntity": entity}})))
            .collect::<std::result::Result<_, _>>()?;
        let spec = RequestSpec {
            method: Method::POST,
            path: format!("/collection/batch/{inlet}"),
            body: Some(Bytes::from(json!({ "messages": messages }).to_string())),
        };
        let response = connection.send(target, &spec).await?;
        if !response.status.is_success() {
            return Err(Error::Http {
                addr: target.url(),
                reason: format!("loading answered {}", response.status),
            });
        }
        // The batch endpoint answers 207 with one outcome per message: a refused message
        // means a broken data set, not a slow server, so it stops the run.
        let outcomes: Value = serde_json::from_slice(&response.body)?;
        let refused = outcomes
            .get("responses")
            .and_then(Value::as_array)
            .and_then(|items| items.iter().find(|i| i.get("statusCode").is_some()));
        if let Some(refused) = refused {
            return Err(Error::Http {
                addr: target.url(),
                reason: format!("loading refused a message: {refused}"),
            });
        }
    }
    Ok(())
}

/// Generates, loads and returns the request source.
pub(crate) async fn prepare(context: &ScenarioContext) -> Result<Lookup> {
    prepare_for(context, Reads::Profiles).await
}

/// What the requests read once the data is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reads {
    /// Merged profiles; only the web events that stitch (logins) are loaded.
    Profiles,
    /// The 50 most recent experience events of the profile; every web event is loaded.
    Events,
}

/// A generated data set and a sandbox ready to load it: the `LoyaltyId` namespace the
/// generator's records use, and an open inlet.
pub(crate) struct Loaded {
    /// Directory of the generated files (removed by the caller when done).
    pub dir: std::path::PathBuf,
    /// What was generated.
    pub manifest: Manifest,
    /// A connection to the server.
    pub connection: Connection,
    /// Inlet id.
    pub inlet: String,
}

/// Generates `context`'s data set into a temporary directory named after `label`, creates the
/// `LoyaltyId` namespace and an inlet.
pub(crate) async fn set_up(context: &ScenarioContext, label: &str) -> Result<Loaded> {
    let dir = std::env::temp_dir().join(format!(
        "tessera-bench-{label}-{}-{}",
        std::process::id(),
        context.seed
    ));
    let config = GenerateConfig {
        people: context.people,
        seed: context.seed,
        ..GenerateConfig::default()
    };
    let out = dir.clone();
    let manifest = tokio::task::spawn_blocking(move || generate(&config, &out))
        .await
        .map_err(|e| Error::InvalidConfig {
            field: "generate",
            reason: e.to_string(),
        })??;
    let target = &context.target;
    let mut connection = Connection::open(target).await?;
    // The generator files loyalty ids under a custom namespace that CRM records carry too.
    call(
        &mut connection,
        target,
        "/data/core/idnamespace/identities",
        json!({"name": "Loyalty ID", "code": "LoyaltyId", "idType": "CROSS_DEVICE"}),
    )
    .await?;
    let inlet = call(&mut connection, target, "/data/foundation/flowservice/connections",
        json!({"name": format!("Bench {label} inlet"), "auth": {"params": {"authenticationRequired": false}}})).await?;
    let inlet = inlet
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(Loaded {
        dir,
        manifest,
        connection,
        inlet,
    })
}

/// Creates a profile-enabled schema and dataset for one generated file; returns the dataset id.
pub(crate) async fn dataset_for(
    connection: &mut Connection,
    target: &Target,
    spec: &DatasetInfo,
) -> Result<String> {
    let mut all_of = vec![json!({"$ref": spec.schema_class})];
    all_of.extend(spec.field_groups.iter().map(|g| json!({"$ref": g})));
    let schema = call(connection, target, "/data/foundation/schemaregistry/tenant/schemas",
        json!({"type": "object", "title": format!("Bench {}", spec.name), "allOf": all_of, "meta:immutableTags": ["union"]})).await?;
    let dataset = call(
        connection,
        target,
        "/data/foundation/catalog/dataSets",
        json!({
            "name": spec.name,
            "schemaRef": {"id": schema.get("$id").cloned().unwrap_or(Value::Null)},
            "tags": {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]}
        }),
    )
    .await?;
    Ok(dataset
        .get(0)
        .and_then(Value::as_str)
        .map(|r| r.trim_start_matches("@/dataSets/").to_owned())
        .unwrap_or_default())
}

/// Generates the data set, loads it, and returns a source of `reads` requests.
pub(crate) async fn prepare_for(context: &ScenarioContext, reads: Reads) -> Result<Lookup> {
    let Loaded {
        dir,
        manifest,
        mut connection,
        inlet,
    } = set_up(context, "lookup").await?;
    let target = &context.target;
    for spec in manifest.datasets.iter().filter(|d| {
        d.name == "crm-profiles" || d.name == "loyalty-profiles" || d.name == "web-events"
    }) {
        let dataset_id = dataset_for(&mut connection, target, spec).await?;
        let path = dir.join(&spec.file);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        // Web events: for profile reads only logins (two identities) matter, for stitching.
        let lines: Vec<String> = text
            .lines()
            .filter(|line| {
                reads == Reads::Events || spec.name != "web-events" || line.contains("\"CRMID\"")
            })
            .map(str::to_owned)
            .collect();
        load(&mut connection, target, &inlet, &dataset_id, &lines).await?;
    }
    let persons_path = dir.join(PERSONS_FILE);
    let persons = std::fs::read_to_string(&persons_path).map_err(|source| Error::Io {
        path: persons_path.clone(),
        source,
    })?;
    let mut paths = Vec::new();
    for line in persons.lines() {
        let person: GroundTruthPerson = serde_json::from_str(line)?;
        for identity in &person.identities {
            paths.push(match reads {
                Reads::Profiles => format!(
                    "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId={}&entityIdNS={}",
                    encode(&identity.id),
                    encode(&identity.namespace)
                ),
                Reads::Events => format!(
                    "/data/core/ups/access/entities?schema.name=_xdm.context.experienceevent&relatedSchema.name=_xdm.context.profile&relatedEntityId={}&relatedEntityIdNS={}&orderby=-timestamp&limit=50",
                    encode(&identity.id),
                    encode(&identity.namespace)
                ),
            });
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Lookup { paths })
}
