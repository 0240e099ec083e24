//! `tessera serve --demo`: a generated retailer's customer base, loaded into a demo tenant
//! through the real ingestion path (schema registry, catalog, batch ingestion), so a new
//! user has profiles and events to look at within seconds.
//!
//! Loading is idempotent: a tenant that already has the demo datasets is left alone.

use anyhow::Context as _;
use serde_json::{json, Value};
use tessera_bench::{generate, GenerateConfig};
use tessera_ingest::InputFormat;
use tessera_model::Tenant;
use tessera_server::AppState;

/// Tenant id the generator writes custom fields under (`_tessera`).
const TENANT_ID: &str = "tessera";
/// The generator's own call-centre field group: custom fields, defined inline.
const CALL_CENTER_FIELD_GROUP: &str = "https://ns.adobe.com/tessera/mixins/callcenter-details";

fn call_center_fields() -> Value {
    json!({
        "type": "object",
        "properties": {
            "_tessera": {
                "type": "object",
                "properties": {
                    "callCenter": {
                        "type": "object",
                        "properties": {
                            "reason": {"type": "string"},
                            "durationSeconds": {"type": "integer", "minimum": 0},
                            "resolved": {"type": "boolean"},
                            "agentId": {"type": "integer"}
                        }
                    }
                }
            }
        }
    })
}

/// What was loaded.
#[derive(Debug)]
pub struct DemoSummary {
    /// Datasets created (name, id, batch id).
    pub datasets: Vec<(String, String, String)>,
    /// Whether the tenant already had the demo.
    pub already_loaded: bool,
    /// Records in the generated files (what ingestion has to get through).
    pub records: u64,
}

/// Waits for the demo's batches to finish, drawing a progress bar of records ingested.
pub fn wait_for_ingestion(
    state: &AppState,
    tenant: &Tenant,
    summary: &DemoSummary,
) -> anyhow::Result<()> {
    use tessera_ingest::BatchStatus;
    let bar = indicatif::ProgressBar::new(summary.records);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "ingesting demo data {bar:40} {pos}/{len} records ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    loop {
        let mut done = 0;
        let mut finished = true;
        for (name, _, batch) in &summary.datasets {
            let record = state.batches.get(tenant, batch)?;
            done += record.metrics.records_read;
            match record.status {
                BatchStatus::Success | BatchStatus::PartialSuccess => {}
                BatchStatus::Failed | BatchStatus::Aborted => {
                    bar.abandon();
                    anyhow::bail!(
                        "demo dataset {name} failed to ingest: {}",
                        record.failure.unwrap_or_default()
                    );
                }
                _ => finished = false,
            }
        }
        bar.set_position(done.min(summary.records));
        if finished {
            bar.finish();
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A person of the demo whose profile stitches an email, a phone and an ECID: the lookups
/// the server prints at start. `None` when no such person exists (yet).
pub fn stitched_person(
    state: &AppState,
    tenant: &Tenant,
) -> anyhow::Result<Option<[(String, String); 3]>> {
    let mut after = None;
    loop {
        let page = tessera_identity::graphs(state.store.as_ref(), tenant, after, 1_000)?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        after = Some(last.id);
        for graph in &page {
            let find = |code: &str| {
                graph
                    .identities()
                    .find(|i| i.namespace.eq_ignore_ascii_case(code))
                    .map(|i| (i.namespace.clone(), i.id.clone()))
            };
            if let (Some(email), Some(phone), Some(ecid)) =
                (find("Email"), find("Phone"), find("ECID"))
            {
                return Ok(Some([email, phone, ecid]));
            }
        }
    }
}

/// Generates `people` people and queues their files for ingestion into `tenant`.
pub fn load(
    state: &AppState,
    tenant: &Tenant,
    people: u64,
    seed: u64,
) -> anyhow::Result<DemoSummary> {
    let existing = state.ingest.catalog().list(tenant, 0, 1000)?;
    if existing.iter().any(|d| d.name() == "crm-profiles") {
        return Ok(DemoSummary {
            datasets: Vec::new(),
            already_loaded: true,
            records: 0,
        });
    }
    if state.schemas.list_schemas(tenant)?.is_empty() {
        state.schemas.set_tenant_id(tenant, TENANT_ID)?;
    }
    // The generator files loyalty profiles under a custom namespace.
    let loyalty = tessera_identity::namespace::NamespaceRequest {
        name: Some("Loyalty ID".into()),
        code: Some("LoyaltyId".into()),
        id_type: Some("CROSS_DEVICE".into()),
        description: Some("Tessera Rewards member id (demo data)".into()),
    };
    let now = tessera_ingest::ids::now_ms();
    if let Err(problem) =
        tessera_identity::namespace::create(state.store.as_ref(), tenant, &loyalty, now)?
    {
        anyhow::bail!("cannot create the demo's LoyaltyId namespace: {problem:?}");
    }
    let work = tempfile::tempdir().context("create a directory for the demo data")?;
    let config = GenerateConfig {
        people,
        seed,
        ..GenerateConfig::default()
    };
    let manifest = generate(&config, work.path()).context("generate the demo data")?;
    let mut datasets = Vec::new();
    let records = manifest.datasets.iter().map(|d| d.records).sum();
    for spec in &manifest.datasets {
        let mut all_of = vec![json!({ "$ref": spec.schema_class })];
        for group in &spec.field_groups {
            if group == CALL_CENTER_FIELD_GROUP {
                all_of.push(call_center_fields());
            } else {
                all_of.push(json!({ "$ref": group }));
            }
        }
        let schema = state.schemas.create_schema(
            tenant,
            json!({
                "type": "object",
                "title": format!("Demo {}", spec.name),
                "description": format!("Generated demo data: {}", spec.name),
                "allOf": all_of,
                "meta:immutableTags": ["union"]
            }),
        )?;
        let schema_id = schema
            .get("$id")
            .and_then(Value::as_str)
            .context("schema without $id")?
            .to_owned();
        let dataset = state.ingest.catalog().create(
            tenant,
            json!({
                "name": spec.name,
                "description": "Generated demo data",
                "schemaRef": {"id": schema_id, "contentType": "application/vnd.adobe.xed-full+json;version=1"},
                "tags": {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]}
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            "demo",
        )?;
        let batch = state
            .batches
            .create(tenant, &dataset.id, InputFormat::Json, "demo")?;
        let target = state
            .batches
            .prepare_upload(tenant, &batch.id, &dataset.id, &spec.file)?;
        let source = work.path().join(&spec.file);
        let size = std::fs::copy(&source, &target)
            .with_context(|| format!("copy {}", source.display()))?;
        std::fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .context("sync the demo file")?;
        state
            .batches
            .add_file(tenant, &batch.id, &spec.file, size)?;
        state.batches.complete(tenant, &batch.id)?;
        datasets.push((spec.name.clone(), dataset.id, batch.id));
    }
    state.batch_kick.kick();
    Ok(DemoSummary {
        datasets,
        already_loaded: false,
        records,
    })
}
