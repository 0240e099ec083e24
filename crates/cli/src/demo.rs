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
    })
}
