//! Streaming ingestion: the DCS message envelope, per-message checks, and the [`Ingestor`]
//! that turns a request's messages into prepared records and applies them.
//!
//! Envelope (AEP DCS):
//! `{"header": {"schemaRef": {"id"}, "imsOrgId", "datasetId", "operations": {"data"}},
//!   "body": {"xdmMeta": {"schemaRef": {"id"}}, "xdmEntity": {...}}}`.
//! The dataset comes from `header.datasetId`, else from the inlet. When the message names a
//! schema (header or xdmMeta), it must be the dataset's.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tessera_identity::Namespaces;
use tessera_model::Tenant;
use tessera_schema::{CompiledSchema, SchemaRegistry};
use tessera_store::Store;

use crate::dataset::{Catalog, Dataset};
use crate::error::{Error, Rejection, RejectionCode, Result};
use crate::ids::{self, ReceiptIds};
use crate::inlet::Inlet;
use crate::pipeline::{self, Applied, Limits, Operation, Prepared};
use crate::recent::{ConsumerWait, RecentEvents};

/// A parsed message envelope.
#[derive(Debug, Clone)]
struct Envelope {
    org: Option<String>,
    dataset_id: Option<String>,
    schema_id: Option<String>,
    operation: Operation,
    entity: Value,
}

/// `id` of a `schemaRef` object.
fn schema_id_of(schema_ref: Option<&Value>) -> Option<String> {
    schema_ref
        .and_then(|r| r.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn parse_envelope(message: Value) -> std::result::Result<Envelope, Rejection> {
    let Value::Object(mut message) = message else {
        return Err(Rejection::new(
            RejectionCode::MalformedMessage,
            "a message must be a JSON object with header and body",
        ));
    };
    let header = message.remove("header").unwrap_or(Value::Null);
    let Some(header) = header.as_object() else {
        return Err(Rejection::field(
            RejectionCode::MalformedMessage,
            "/header",
            "header must be an object",
        ));
    };
    let Some(Value::Object(mut body)) = message.remove("body") else {
        return Err(Rejection::field(
            RejectionCode::MalformedMessage,
            "/body",
            "body must be an object",
        ));
    };
    let entity = match body.remove("xdmEntity") {
        Some(entity @ Value::Object(_)) => entity,
        Some(_) => {
            return Err(Rejection::field(
                RejectionCode::MalformedMessage,
                "/body/xdmEntity",
                "xdmEntity must be an object",
            ))
        }
        None => {
            return Err(Rejection::field(
                RejectionCode::MalformedMessage,
                "/body/xdmEntity",
                "xdmEntity is required",
            ))
        }
    };
    let header_schema = schema_id_of(header.get("schemaRef"));
    let meta_schema = schema_id_of(body.get("xdmMeta").and_then(|meta| meta.get("schemaRef")));
    if let (Some(h), Some(m)) = (&header_schema, &meta_schema) {
        if h != m {
            return Err(Rejection::field(
                RejectionCode::SchemaMismatch,
                "/body/xdmMeta/schemaRef/id",
                format!("xdmMeta names schema {m} but the header names {h}"),
            ));
        }
    }
    let operation = match header.get("operations").and_then(|o| o.get("data")).and_then(Value::as_str) {
        None | Some("create") => Operation::Default,
        Some("merge") => Operation::Merge,
        Some(other) => {
            return Err(Rejection::field(
                RejectionCode::MalformedMessage,
                "/header/operations/data",
                format!("operation {other:?} is not supported here; use create or merge (profile deletion has its own API)"),
            ))
        }
    };
    Ok(Envelope {
        org: header
            .get("imsOrgId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        dataset_id: header
            .get("datasetId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        schema_id: header_schema.or(meta_schema),
        operation,
        entity,
    })
}

/// What the messages of one request share: tenant, arrival time, namespaces, and the
/// dataset lookups already made.
struct RequestScope {
    tenant: Tenant,
    received_ms: i64,
    namespaces: Arc<Namespaces>,
    targets: HashMap<String, std::result::Result<(Dataset, Arc<CompiledSchema>), Rejection>>,
}

/// The receipt of an accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Receipt id.
    pub xaction_id: String,
    /// Dataset written.
    pub dataset_id: String,
    /// The event was already stored (same `_id`); nothing new was written.
    pub duplicate: bool,
}

/// Outcome of one message.
pub type MessageOutcome = std::result::Result<Receipt, Rejection>;

/// Ingestion entry point shared by the HTTP routes and the batch worker.
#[derive(Clone)]
pub struct Ingestor {
    store: Arc<dyn Store>,
    schemas: SchemaRegistry,
    catalog: Catalog,
    receipts: Arc<ReceiptIds>,
    limits: Limits,
    namespaces: Arc<tessera_identity::NamespaceCache>,
    on_applied: Arc<std::sync::OnceLock<AppliedHook>>,
    recent: Arc<RecentEvents>,
}

/// Called after records were applied (durably): wakes change-feed consumers without polling.
pub type AppliedHook = Box<dyn Fn() + Send + Sync>;

impl Ingestor {
    /// Builds the ingestor.
    pub fn new(store: Arc<dyn Store>, schemas: SchemaRegistry, limits: Limits) -> Self {
        Self {
            recent: Arc::new(RecentEvents::new(limits.recent_events)),
            catalog: Catalog::new(Arc::clone(&store), schemas.clone()),
            store,
            schemas,
            receipts: Arc::new(ReceiptIds::default()),
            limits,
            namespaces: Arc::new(tessera_identity::NamespaceCache::new()),
            on_applied: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// The events this ingestor applied last, by feed sequence number, for the
    /// computed-attribute consumer (see [`crate::recent`]). Every clone shares them.
    pub fn recent_events(&self) -> Arc<RecentEvents> {
        Arc::clone(&self.recent)
    }

    /// Sets the hook called after every applied group of records (once; later calls are
    /// ignored). Every clone of this ingestor shares it.
    pub fn set_on_applied(&self, hook: AppliedHook) {
        let _ = self.on_applied.set(hook);
    }

    /// Tells the hook that records were applied.
    pub(crate) fn applied(&self) {
        if let Some(hook) = self.on_applied.get() {
            hook();
        }
    }

    /// The sandbox's namespaces and linking rules, from a cache revalidated against the
    /// store on every call (one point read).
    pub fn namespaces(&self, tenant: &Tenant) -> Result<Arc<Namespaces>> {
        Ok(self.namespaces.get(self.store.as_ref(), tenant)?)
    }

    /// The catalog this ingestor writes through.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Dataset and compiled schema, or the rejection a message gets when either is missing.
    pub fn target(
        &self,
        tenant: &Tenant,
        dataset_id: &str,
    ) -> Result<std::result::Result<(Dataset, Arc<CompiledSchema>), Rejection>> {
        let dataset = match self.catalog.get(tenant, dataset_id) {
            Ok(dataset) => dataset,
            Err(Error::DatasetNotFound { id }) => {
                return Ok(Err(Rejection::field(
                    RejectionCode::UnknownDataset,
                    "/header/datasetId",
                    format!("dataset {id} does not exist in sandbox {}", tenant.sandbox),
                )))
            }
            Err(other) => return Err(other),
        };
        let Some(schema_id) = dataset.schema_id() else {
            return Ok(Err(Rejection::new(
                RejectionCode::SchemaMismatch,
                format!("dataset {dataset_id} has no schemaRef"),
            )));
        };
        let schema = match self.schemas.compiled(tenant, schema_id) {
            Ok(schema) => schema,
            Err(error) => {
                return Ok(Err(Rejection::new(
                    RejectionCode::SchemaMismatch,
                    format!("schema {schema_id} of dataset {dataset_id} cannot be used: {error}"),
                )))
            }
        };
        Ok(Ok((dataset, schema)))
    }

    /// Mints a receipt id.
    pub fn receipt_id(&self, received_ms: i64) -> String {
        self.receipts.next(received_ms)
    }

    /// Ingests the messages of one request through `inlet`. Receipts are minted per message,
    /// or, for a multi-message request with `batch_id`, are `{batch_id}:{index}` as DCS
    /// numbers them. With `validate_only`, nothing is written and accepted messages report
    /// what they would have got. Blocks until every written record is durable.
    pub fn stream(
        &self,
        inlet: &Inlet,
        messages: Vec<Value>,
        validate_only: bool,
        batch_id: Option<&str>,
    ) -> Result<Vec<MessageOutcome>> {
        let tenant = inlet.tenant()?;
        let received_ms = ids::now_ms();
        let mut scope = RequestScope {
            namespaces: self.namespaces(&tenant)?,
            targets: HashMap::new(),
            tenant,
            received_ms,
        };
        let mut outcomes: Vec<Option<MessageOutcome>> = Vec::with_capacity(messages.len());
        let mut prepared: Vec<(usize, Prepared)> = Vec::new();
        for (index, message) in messages.into_iter().enumerate() {
            let xaction_id = match batch_id {
                Some(batch) => format!("{batch}:{index}"),
                None => self.receipt_id(received_ms),
            };
            match self.prepare_message(&mut scope, inlet, message, xaction_id)? {
                Ok(item) => {
                    prepared.push((index, item));
                    outcomes.push(None);
                }
                Err(rejection) => outcomes.push(Some(Err(rejection))),
            }
        }
        if validate_only {
            for (index, item) in &prepared {
                if let Some(slot) = outcomes.get_mut(*index) {
                    *slot = Some(Ok(Receipt {
                        xaction_id: item.xaction_id().to_owned(),
                        dataset_id: item.dataset_id().to_owned(),
                        duplicate: false,
                    }));
                }
            }
        } else {
            let (indices, items): (Vec<usize>, Vec<Prepared>) = prepared.into_iter().unzip();
            let mut kept_events = false;
            let applied = pipeline::apply(&self.store, &items, ids::now_ms(), &self.limits)?;
            for ((index, item), result) in indices.into_iter().zip(items).zip(applied) {
                if let Some(slot) = outcomes.get_mut(index) {
                    *slot = Some(Ok(Receipt {
                        xaction_id: item.xaction_id().to_owned(),
                        dataset_id: item.dataset_id().to_owned(),
                        duplicate: matches!(result, Applied::Duplicate { .. }),
                    }));
                }
                // Before the wake-up, so the consumer it wakes finds them.
                if let Applied::Written { feed_seq, .. } = result {
                    if let Some(applied) = item.into_event() {
                        self.recent.put(
                            feed_seq,
                            &applied.tenant,
                            &applied.event_id,
                            applied.timestamp_ms,
                            applied.event,
                        );
                        kept_events = true;
                    }
                }
            }
            self.applied();
            if kept_events {
                self.wait_for_consumer();
            }
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.ok_or_else(|| Error::InvalidState("a message was left without an outcome".into()))
            })
            .collect()
    }

    /// Holds the acknowledgement back while the computed-attribute consumer lags by more
    /// than half of [`RecentEvents`] (see [`crate::recent`]).
    fn wait_for_consumer(&self) {
        let waited = self.recent.wait_for_consumer(crate::recent::CONSUMER_WAIT);
        match waited {
            ConsumerWait::Stalled => tracing::warn!(
                "the computed-attribute consumer made no progress for {:?}; \
                 acknowledging without waiting for it until it moves",
                crate::recent::CONSUMER_WAIT
            ),
            ConsumerWait::None | ConsumerWait::StillStalled => {}
            ConsumerWait::CaughtUp | ConsumerWait::Bounded => {
                tracing::trace!(?waited, "waited for the computed-attribute consumer");
            }
        }
    }

    fn prepare_message(
        &self,
        scope: &mut RequestScope,
        inlet: &Inlet,
        message: Value,
        xaction_id: String,
    ) -> Result<std::result::Result<Prepared, Rejection>> {
        let tenant = &scope.tenant;
        let received_ms = scope.received_ms;
        let namespaces = &scope.namespaces;
        let targets = &mut scope.targets;
        let envelope = match parse_envelope(message) {
            Ok(envelope) => envelope,
            Err(rejection) => return Ok(Err(rejection)),
        };
        if let Some(org) = &envelope.org {
            if org != &inlet.org {
                return Ok(Err(Rejection::field(
                    RejectionCode::OrgMismatch,
                    "/header/imsOrgId",
                    format!(
                        "message names organization {org} but the inlet belongs to {}",
                        inlet.org
                    ),
                )));
            }
        }
        let Some(dataset_id) = envelope.dataset_id.or_else(|| inlet.dataset_id.clone()) else {
            return Ok(Err(Rejection::field(
                RejectionCode::UnknownDataset,
                "/header/datasetId",
                "the message names no datasetId and the inlet is not bound to a dataset",
            )));
        };
        if !targets.contains_key(&dataset_id) {
            let target = self.target(tenant, &dataset_id)?;
            targets.insert(dataset_id.clone(), target);
        }
        let (dataset, schema) = match targets.get(&dataset_id) {
            Some(Ok(target)) => target,
            Some(Err(rejection)) => return Ok(Err(rejection.clone())),
            None => return Err(Error::InvalidState("dataset lookup vanished".into())),
        };
        if let (Some(named), Some(expected)) = (&envelope.schema_id, dataset.schema_id()) {
            if named != expected && named != schema.id() {
                return Ok(Err(Rejection::field(
                    RejectionCode::SchemaMismatch,
                    "/header/schemaRef/id",
                    format!("message schema {named} is not the schema of dataset {dataset_id} ({expected})"),
                )));
            }
        }
        Ok(pipeline::prepare(
            tenant,
            dataset,
            schema,
            namespaces,
            envelope.entity,
            envelope.operation,
            received_ms,
            xaction_id,
            &self.limits,
        ))
    }
}
