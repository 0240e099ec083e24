//! Computed attribute definitions as stored: AEP's `/ca/attributes` object, the reading of
//! its expression, and the status lifecycle.
//!
//! Keys in `Table::ComputedAttributes` (tenant scope):
//! - `"cadef", id` → the definition (JSON);
//! - `"caname", name` → id: names are unique per sandbox, enforced by an absent-expectation
//!   on create (two concurrent creates of one name cannot both win);
//! - `"caversion"` → a fresh random value written with every change to the sandbox's
//!   definitions, so the change-feed consumer learns by one point read per pass that its
//!   compiled definitions are still current (scanning and comparing them was ~5% of its
//!   time);
//! - system scope `"ca-pending", org, sandbox, id` → nothing: attributes waiting for their
//!   backfill (status `NEW`), so the backfill worker finds them without listing tenants.
//!
//! Expressions are `xEvent[<filter>].sum|min|max(<path>)`, `xEvent[<filter>].count()` or,
//! for MOST_RECENT, `xEvent[<filter>].topN(timestamp, 1).head().<path>` (PQL's own way to
//! say "the newest event's field"); the filter is optional. The filter is evaluated on each
//! event alone, at the event's own time, so `timestamp occurs <= 7 days before now` in it is
//! always true: the lookback is the `duration`, applied by the buckets (see `window`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_ingest::recent::{Digester, Digesters};
use tessera_model::Tenant;
use tessera_pql::ast::Literal;
use tessera_pql::{EvalContext, EventSet, Expr, Program};
use tessera_store::{Direction, Entry, Key, ScanRange, Scope, Store, Table, WriteBatch};

use super::window::{Acc, Duration, Function, Unit};
use crate::error::{Error, Result};

/// Most attributes a sandbox may have that are not `DISABLED` (AEP's largest add-on tier).
pub const MAX_ACTIVE: usize = 100;

/// Lifecycle status (aep-api.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Saved, not evaluated; the only deletable status.
    Draft,
    /// Waiting for its backfill.
    New,
    /// Backfill running; events are folded in already.
    Processing,
    /// Backfilled and kept current.
    Processed,
    /// Backfill failed.
    Failed,
    /// Not updated, not shown in lookups, not counted against the limit.
    Disabled,
}

impl Status {
    /// As AEP writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "DRAFT",
            Status::New => "NEW",
            Status::Processing => "PROCESSING",
            Status::Processed => "PROCESSED",
            Status::Failed => "FAILED",
            Status::Disabled => "DISABLED",
        }
    }

    /// Parses a status, case-insensitively (the list filter is lowercase in AEP's docs).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "DRAFT" => Status::Draft,
            "NEW" => Status::New,
            "PROCESSING" => Status::Processing,
            "PROCESSED" => Status::Processed,
            "FAILED" => Status::Failed,
            "DISABLED" => Status::Disabled,
            _ => return None,
        })
    }

    /// Whether events are folded into the attribute and lookups show it.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Processing | Status::Processed)
    }
}

/// `expression` of an attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expression {
    /// Always `PQL`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `pql/text`.
    pub format: String,
    /// The PQL text.
    pub value: String,
}

/// A stored computed attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputedAttribute {
    /// Id (UUID).
    pub id: String,
    /// Name: letters and digits; the field name under `ComputedAttributes`.
    pub name: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// The PQL expression.
    pub expression: Expression,
    /// AEP's "fast refresh"; Tessera is always current, so it is kept and shown only.
    #[serde(default)]
    pub keep_current: bool,
    /// Lookback window.
    pub duration: Duration,
    /// Tessera extension: windows beyond AEP's limits were allowed at creation.
    #[serde(default)]
    pub allow_larger_windows: bool,
    /// Lifecycle status.
    pub status: Status,
    /// Aggregate, derived from the expression.
    pub merge_function: Function,
    /// The tenant namespace field (`_{TENANT_ID}`) the value lives under.
    pub tenant_field: String,
    /// Created (ms).
    pub create_epoch: i64,
    /// Last changed (ms).
    pub update_epoch: i64,
    /// When the backfill finished (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation_ts: Option<i64>,
}

impl ComputedAttribute {
    /// `returnSchema.meta:xdmType`: integer for COUNT, object for MOST_RECENT (`{value,
    /// timestamp}`), number otherwise (MIN/MAX of a timestamp field answer a date-time
    /// string; the type is not known without the event schema, so number is shown).
    pub fn return_type(&self) -> &'static str {
        match self.merge_function {
            Function::Count => "integer",
            Function::MostRecent => "object",
            Function::Sum | Function::Min | Function::Max => "number",
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------- expression

/// What an expression asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The aggregate.
    pub function: Function,
    /// `xEvent[cond]` when there is a filter.
    pub filter: Option<Expr>,
    /// Field path of the aggregated value inside an event (empty for COUNT).
    pub path: Vec<String>,
}

fn is_xevent(expr: &Expr) -> bool {
    matches!(expr, Expr::Field { object, name }
        if name == "xEvent" && matches!(**object, Expr::Param { position: 1, up: 0 }))
}

/// `xEvent` or `xEvent[cond]`: `Some(filter)`.
fn events_source(expr: &Expr) -> Option<Option<Expr>> {
    if is_xevent(expr) {
        return Some(None);
    }
    match expr {
        Expr::Filter { array, .. } if is_xevent(array) => Some(Some(expr.clone())),
        _ => None,
    }
}

/// A field chain down from the implicit input: `a.b.c`.
fn field_path(expr: &Expr) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut at = expr;
    loop {
        match at {
            Expr::Field { object, name } => {
                names.push(name.clone());
                at = object;
            }
            Expr::Param { position: 1, up: 0 } => break,
            _ => return None,
        }
    }
    names.reverse();
    (!names.is_empty()).then_some(names)
}

const EXPECTED: &str = "expected xEvent[<filter>].sum(<field>), .count(), .min(<field>), \
     .max(<field>) or .topN(timestamp, 1).head().<field> (most recent)";

/// Reads an attribute expression.
pub fn analyze(text: &str) -> Result<Analysis> {
    let expr = tessera_pql::parse(text).map_err(|e| invalid("expression.value", e.to_string()))?;
    let bad = || invalid("expression.value", EXPECTED);
    if let Expr::Call { func, args } = &expr {
        let function = match func.as_str() {
            "sum" => Function::Sum,
            "count" => Function::Count,
            "min" => Function::Min,
            "max" => Function::Max,
            _ => return Err(bad()),
        };
        let filter = args.first().and_then(events_source).ok_or_else(bad)?;
        let path = match (function, args.get(1)) {
            (Function::Count, None) => Vec::new(),
            (Function::Count, Some(_)) | (_, None) => return Err(bad()),
            (_, Some(arg)) => field_path(arg).ok_or_else(|| {
                invalid(
                    "expression.value",
                    "the aggregated value must be a field of the event, e.g. commerce.order.priceTotal",
                )
            })?,
        };
        return Ok(Analysis {
            function,
            filter,
            path,
        });
    }
    // `xEvent[...].topN(timestamp, 1).head().a.b`
    let mut names = Vec::new();
    let mut at = &expr;
    while let Expr::Field { object, name } = at {
        names.push(name.clone());
        at = object;
    }
    names.reverse();
    let Expr::Call { func, args } = at else {
        return Err(bad());
    };
    let Some(Expr::Call {
        func: top,
        args: top_args,
    }) = args.first()
    else {
        return Err(bad());
    };
    let newest_first = func == "head"
        && top == "topN"
        && matches!(top_args.get(1), Some(e) if field_path(e).as_deref() == Some(&["timestamp".to_owned()][..]))
        && matches!(top_args.get(2), Some(Expr::Lit(Literal::Int(1))));
    if !newest_first || names.is_empty() {
        return Err(bad());
    }
    let filter = top_args.first().and_then(events_source).ok_or_else(bad)?;
    Ok(Analysis {
        function: Function::MostRecent,
        filter,
        path: names,
    })
}

/// A live attribute ready to fold events.
#[derive(Debug)]
pub struct Compiled {
    /// The definition.
    pub definition: ComputedAttribute,
    filter: Option<(Expr, Program)>,
    /// The filter's condition compiled alone, evaluated with the event as its input, when
    /// that reads exactly what the filter reads (see [`condition_on_event`]): no one-event
    /// set to build, no filter machinery per event.
    on_event: Option<Program>,
    path: Vec<String>,
}

/// The condition of `xEvent[cond]`, compiled to run on the event itself, when that gives the
/// filter's answer: the condition names every path it reads, reaches no enclosing scope
/// (`^` would see the event instead of the empty profile) and does not read `timestamp`,
/// which the filter's element gives as a parsed time and the event as its text.
fn condition_on_event(filter: &Expr) -> Option<Program> {
    let Expr::Filter { cond, .. } = filter else {
        return None;
    };
    let paths = cond.input_paths()?;
    if paths
        .iter()
        .any(|p| p.first().is_some_and(|f| f == "timestamp"))
    {
        return None;
    }
    let mut reaches_out = false;
    cond.walk(&mut |e| reaches_out |= matches!(e, Expr::Param { up, .. } if *up > 0));
    if reaches_out {
        return None;
    }
    tessera_pql::compile(cond).ok()
}

impl Compiled {
    /// Compiles a stored definition.
    pub fn new(definition: ComputedAttribute) -> Result<Self> {
        let analysis = analyze(&definition.expression.value)?;
        let filter = match analysis.filter {
            Some(expr) => {
                let program = tessera_pql::compile(&expr)
                    .map_err(|e| invalid("expression.value", e.to_string()))?;
                Some((expr, program))
            }
            None => None,
        };
        let on_event = filter
            .as_ref()
            .and_then(|(expr, _)| condition_on_event(expr));
        Ok(Compiled {
            definition,
            filter,
            on_event,
            path: analysis.path,
        })
    }

    /// Whether the event (alone in `single`, at time `ts`) passes the filter.
    pub fn accepts(&self, single: &EventSet, ts: i64) -> bool {
        let empty = Value::Object(Map::new());
        match &self.filter {
            // Evaluated at the event's own time: see the module documentation.
            Some((_, program)) => program.matches(&empty, single, &EvalContext::new(ts)),
            None => true,
        }
    }

    /// [`Compiled::accepts`] answered on the event itself, without a one-event set; `None`
    /// when only the set gives the filter's answer.
    fn accepts_on_event(&self, event: &Value, ts: i64) -> Option<bool> {
        match (&self.on_event, &self.filter) {
            (Some(condition), _) => {
                Some(condition.matches(event, &EventSet::default(), &EvalContext::new(ts)))
            }
            (None, Some(_)) => None,
            (None, None) => Some(true),
        }
    }

    /// The aggregated field of an event.
    pub fn value_of<'a>(&self, event: &'a Value) -> Option<&'a Value> {
        self.path.iter().try_fold(event, |at, name| at.get(name))
    }
}

/// A sandbox's live attributes, compiled, with their filters grouped: attributes with the
/// same filter (a common shape: sum, count and most-recent of the same events) test it once
/// per event.
///
/// It is also ingestion's [`Digester`] for the sandbox: an event's digest is what it adds to
/// each attribute ([`Live::contributions`]), computed in the ingesting thread, so the
/// consumer folds without testing filters or reading fields.
#[derive(Debug)]
pub struct Live {
    /// The attributes, in id order.
    pub attrs: Vec<Compiled>,
    /// For each attribute, the index of the first attribute with the same filter.
    same_filter_as: Vec<usize>,
    /// Names this set for [`RecentEvents::take`](tessera_ingest::recent::RecentEvents::take):
    /// a digest made by another set (before an attribute was created or changed) is not
    /// this set's.
    serial: u64,
}

/// Serials of [`Live`] sets, unique for the process's life.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

impl Live {
    /// Groups compiled attributes by filter.
    pub fn new(attrs: Vec<Compiled>) -> Self {
        let same_filter_as = attrs
            .iter()
            .enumerate()
            .map(|(i, attr)| {
                let expr = attr.filter.as_ref().map(|(expr, _)| expr);
                attrs
                    .iter()
                    .position(|other| other.filter.as_ref().map(|(e, _)| e) == expr)
                    .unwrap_or(i)
            })
            .collect();
        Live {
            attrs,
            same_filter_as,
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// What `event` (at `ts`) adds to each attribute, in `attrs` order (`None`: nothing,
    /// its filter refused the event or the field is missing).
    pub fn contributions(&self, event: &Value, ts: i64) -> Vec<Option<Acc>> {
        let mut accepted = Vec::with_capacity(self.attrs.len());
        self.accepting(event, ts, &mut accepted);
        self.attrs
            .iter()
            .zip(accepted)
            .map(|(attr, accepts)| {
                accepts
                    .then(|| {
                        Acc::of_event(attr.definition.merge_function, ts, attr.value_of(event))
                    })
                    .flatten()
            })
            .collect()
    }

    /// The contributions a digest of this set holds, for an event at `ts`; `None` when the
    /// digest is not one this set made (the reader then reads the event itself).
    pub fn read_digest(&self, digest: Vec<Value>, ts: i64) -> Option<Vec<Option<Acc>>> {
        if digest.len() != self.attrs.len() {
            return None;
        }
        // Sized up front: collecting into an `Option<Vec>` grows the vector by doubling.
        let mut contributions = Vec::with_capacity(digest.len());
        for (attr, item) in self.attrs.iter().zip(digest) {
            contributions.push(Acc::from_digest(attr.definition.merge_function, ts, item)?);
        }
        Some(contributions)
    }

    /// Whether there is no live attribute.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// Which attributes accept `event` (at `ts`), in `attrs` order; each distinct filter is
    /// evaluated once, on the event itself where it can be, else on a one-event set built
    /// once. `out` is cleared first.
    pub fn accepting(&self, event: &Value, ts: i64, out: &mut Vec<bool>) {
        out.clear();
        let mut single: Option<EventSet> = None;
        for (i, attr) in self.attrs.iter().enumerate() {
            let first = self.same_filter_as.get(i).copied().unwrap_or(i);
            let accepted = match out.get(first) {
                Some(known) if first < i => *known,
                _ => attr.accepts_on_event(event, ts).unwrap_or_else(|| {
                    attr.accepts(
                        single.get_or_insert_with(|| EventSet::new(vec![event.clone()])),
                        ts,
                    )
                }),
            };
            out.push(accepted);
        }
    }
}

impl Digester for Live {
    fn serial(&self) -> u64 {
        self.serial
    }

    fn digest(&self, event: &Value, event_ms: i64) -> Vec<Value> {
        self.contributions(event, event_ms)
            .iter()
            .map(|acc| Acc::to_digest(acc.as_ref()))
            .collect()
    }
}

/// Compiled live attributes per sandbox, kept by the change-feed consumer between passes:
/// each pass reads the sandbox's definitions version (one point read, so a status change is
/// seen by the next pass) and re-reads, parses and compiles the definitions only when it
/// changed.
#[derive(Debug, Default)]
pub struct LiveCache {
    sandboxes: HashMap<(String, String), SandboxLive>,
    /// The digesters of the sandboxes with live attributes, made once per change of any.
    digesters: Option<Arc<Digesters>>,
}

/// A sandbox's compiled attributes and the definitions version they were read at.
#[derive(Debug)]
struct SandboxLive {
    tenant: Tenant,
    version: Option<Vec<u8>>,
    live: Arc<Live>,
}

impl LiveCache {
    /// Whether any sandbox seen so far has a live attribute.
    pub fn any_live(&self) -> bool {
        self.sandboxes.values().any(|s| !s.live.is_empty())
    }

    /// Ingestion's digester of each sandbox seen so far with live attributes (the same
    /// map until one of them changes).
    pub fn digesters(&mut self) -> Arc<Digesters> {
        let sandboxes = &self.sandboxes;
        let made = self.digesters.get_or_insert_with(|| {
            Arc::new(
                sandboxes
                    .values()
                    .filter(|sandbox| !sandbox.live.is_empty())
                    .map(|sandbox| {
                        let digester: Arc<dyn Digester> = Arc::clone(&sandbox.live) as _;
                        (sandbox.tenant.clone(), digester)
                    })
                    .collect(),
            )
        });
        Arc::clone(made)
    }

    /// Re-reads the definitions version of every sandbox seen so far, recompiling those
    /// that changed (one point read each).
    pub fn refresh(&mut self, store: &dyn Store) -> Result<()> {
        let tenants: Vec<Tenant> = self
            .sandboxes
            .values()
            .map(|sandbox| sandbox.tenant.clone())
            .collect();
        for tenant in &tenants {
            self.get(store, tenant)?;
        }
        Ok(())
    }

    /// The live attributes of `tenant`'s sandbox as stored now.
    pub fn get(&mut self, store: &dyn Store, tenant: &Tenant) -> Result<Arc<Live>> {
        // Read before the definitions: a change landing in between leaves a version older
        // than what was compiled, which only costs one more reading next pass.
        let version = store.get(Table::ComputedAttributes, &version_key(tenant))?;
        let key = (tenant.org.to_string(), tenant.sandbox.to_string());
        if let Some(known) = self.sandboxes.get(&key) {
            if known.version == version {
                return Ok(Arc::clone(&known.live));
            }
        }
        let rows = scan_definitions(store, tenant)?;
        let attrs = rows
            .iter()
            .map(|row| decode(&row.value))
            .filter(|d| d.as_ref().map_or(true, |d| d.status.is_live()))
            .map(|d| d.and_then(Compiled::new))
            .collect::<Result<Vec<_>>>()?;
        let live = Arc::new(Live::new(attrs));
        self.sandboxes.insert(
            key,
            SandboxLive {
                tenant: tenant.clone(),
                version,
                live: Arc::clone(&live),
            },
        );
        self.digesters = None;
        Ok(live)
    }
}

// ---------------------------------------------------------------------------- keys

fn scope(tenant: &Tenant) -> Scope {
    Scope::Tenant(tenant.clone())
}

fn prefix(tenant: &Tenant) -> Key {
    Key::builder(&scope(tenant)).str("cadef").finish()
}

fn key(tenant: &Tenant, id: &str) -> Key {
    Key::extend(&prefix(tenant)).str(id).finish()
}

fn version_key(tenant: &Tenant) -> Key {
    Key::builder(&scope(tenant)).str("caversion").finish()
}

/// Marks a change to the sandbox's definitions (see the module documentation).
fn bump_version(batch: &mut WriteBatch, tenant: &Tenant) {
    batch.put(
        Table::ComputedAttributes,
        &version_key(tenant),
        uuid::Uuid::new_v4().as_bytes().to_vec(),
    );
}

fn name_key(tenant: &Tenant, name: &str) -> Key {
    Key::builder(&scope(tenant))
        .str("caname")
        .str(name)
        .finish()
}

pub(crate) fn pending_prefix() -> Key {
    Key::builder(&Scope::System).str("ca-pending").finish()
}

pub(crate) fn pending_key(tenant: &Tenant, id: &str) -> Key {
    Key::extend(&pending_prefix())
        .str(tenant.org.as_str())
        .str(tenant.sandbox.as_str())
        .str(id)
        .finish()
}

fn encode(definition: &ComputedAttribute) -> Result<Vec<u8>> {
    serde_json::to_vec(definition).map_err(|e| Error::Corrupt {
        what: "computed attribute",
        reason: e.to_string(),
    })
}

fn decode(bytes: &[u8]) -> Result<ComputedAttribute> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        what: "computed attribute",
        reason: e.to_string(),
    })
}

fn get_raw(
    store: &dyn Store,
    tenant: &Tenant,
    id: &str,
) -> Result<Option<(ComputedAttribute, Vec<u8>)>> {
    match store.get(Table::ComputedAttributes, &key(tenant, id))? {
        Some(bytes) => Ok(Some((decode(&bytes)?, bytes))),
        None => Ok(None),
    }
}

/// One attribute.
pub fn get(store: &dyn Store, tenant: &Tenant, id: &str) -> Result<Option<ComputedAttribute>> {
    Ok(get_raw(store, tenant, id)?.map(|(d, _)| d))
}

fn scan_definitions(store: &dyn Store, tenant: &Tenant) -> Result<Vec<Entry>> {
    Ok(store.scan(
        Table::ComputedAttributes,
        &ScanRange::prefix(prefix(tenant)),
        Direction::Forward,
        100_000,
    )?)
}

/// Every attribute of the sandbox, in id order.
pub fn list(store: &dyn Store, tenant: &Tenant) -> Result<Vec<ComputedAttribute>> {
    scan_definitions(store, tenant)?
        .iter()
        .map(|row| decode(&row.value))
        .collect()
}

/// The live attributes (`PROCESSING`, `PROCESSED`) of a sandbox, compiled.
pub fn live(store: &dyn Store, tenant: &Tenant) -> Result<Vec<Compiled>> {
    list(store, tenant)?
        .into_iter()
        .filter(|d| d.status.is_live())
        .map(Compiled::new)
        .collect()
}

fn put(
    batch: &mut WriteBatch,
    tenant: &Tenant,
    definition: &ComputedAttribute,
    expected: Option<Vec<u8>>,
) -> Result<()> {
    let key = key(tenant, &definition.id);
    batch.expect(Table::ComputedAttributes, &key, expected).put(
        Table::ComputedAttributes,
        &key,
        encode(definition)?,
    );
    bump_version(batch, tenant);
    match definition.status {
        Status::New | Status::Processing => {
            batch.put(
                Table::ComputedAttributes,
                &pending_key(tenant, &definition.id),
                Vec::new(),
            );
        }
        _ => {
            batch.delete(
                Table::ComputedAttributes,
                &pending_key(tenant, &definition.id),
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------- writes

fn string_field(body: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

fn bool_field(body: &Map<String, Value>, field: &str) -> Result<bool> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(field, "must be true or false")),
    }
}

/// Checks `name`: letters and digits only (AEP: no spaces or underscores).
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 128 {
        return Err(invalid("name", "must be 1 to 128 characters"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(
            "name",
            "must contain only letters and digits (no spaces or underscores)",
        ));
    }
    Ok(())
}

fn parse_duration(body: &Map<String, Value>, larger: bool) -> Result<Duration> {
    let raw = body.get("duration").ok_or_else(|| {
        invalid(
            "duration",
            "is required: {\"count\": N, \"unit\": \"DAYS\"}",
        )
    })?;
    let duration: Duration = serde_json::from_value(raw.clone()).map_err(|_| {
        invalid(
            "duration",
            "must be {\"count\": N, \"unit\": \"HOURS\"|\"DAYS\"|\"WEEKS\"|\"MONTHS\"}",
        )
    })?;
    let max = if larger {
        Duration::extended_max(duration.unit)
    } else {
        Duration::aep_max(duration.unit)
    };
    if duration.count == 0 || duration.count > max {
        let unit = match duration.unit {
            Unit::Hours => "HOURS",
            Unit::Days => "DAYS",
            Unit::Weeks => "WEEKS",
            Unit::Months => "MONTHS",
        };
        let hint = if larger {
            ""
        } else {
            " (set allowLargerWindows: true for longer windows)"
        };
        return Err(invalid(
            "duration.count",
            format!("{unit} must be between 1 and {max}{hint}"),
        ));
    }
    Ok(duration)
}

fn parse_expression(body: &Map<String, Value>) -> Result<(Expression, Analysis)> {
    let raw = body
        .get("expression")
        .ok_or_else(|| invalid("expression", "is required"))?;
    let expression: Expression = serde_json::from_value(raw.clone()).map_err(|_| {
        invalid(
            "expression",
            "must be {\"type\": \"PQL\", \"format\": \"pql/text\", \"value\": \"...\"}",
        )
    })?;
    if expression.kind != "PQL" {
        return Err(invalid("expression.type", "only PQL is supported"));
    }
    if expression.format != "pql/text" {
        return Err(invalid("expression.format", "only pql/text is supported"));
    }
    let analysis = analyze(&expression.value)?;
    Ok((expression, analysis))
}

/// Validates a create body and saves the attribute; `tenant_field` is `_{TENANT_ID}`.
pub fn create(
    store: &dyn Store,
    tenant: &Tenant,
    body: &Value,
    tenant_field: &str,
    now_ms: i64,
) -> Result<ComputedAttribute> {
    let body = body
        .as_object()
        .ok_or_else(|| invalid("", "the body must be a JSON object"))?;
    let name = string_field(body, "name")?.ok_or_else(|| invalid("name", "is required"))?;
    validate_name(&name)?;
    let (expression, analysis) = parse_expression(body)?;
    if let Some(filter) = &analysis.filter {
        tessera_pql::compile(filter).map_err(|e| invalid("expression.value", e.to_string()))?;
    }
    let allow_larger_windows = bool_field(body, "allowLargerWindows")?;
    let duration = parse_duration(body, allow_larger_windows)?;
    let status = match string_field(body, "status")?.as_deref() {
        None => Status::Draft,
        Some(text) => match Status::parse(text) {
            Some(s @ (Status::Draft | Status::New)) => s,
            _ => return Err(invalid("status", "must be DRAFT or NEW on create")),
        },
    };
    let existing = list(store, tenant)?;
    if existing.iter().any(|d| d.name == name) {
        return Err(invalid(
            "name",
            "Function with the same name already exists for the specified schema or definedOn",
        ));
    }
    if existing
        .iter()
        .filter(|d| d.status != Status::Disabled)
        .count()
        >= MAX_ACTIVE
    {
        return Err(invalid(
            "",
            format!(
                "a sandbox holds at most {MAX_ACTIVE} computed attributes that are not disabled"
            ),
        ));
    }
    let definition = ComputedAttribute {
        id: uuid::Uuid::new_v4().to_string(),
        display_name: string_field(body, "displayName")?.unwrap_or_else(|| name.clone()),
        description: string_field(body, "description")?.unwrap_or_default(),
        name,
        expression,
        keep_current: bool_field(body, "keepCurrent")?,
        duration,
        allow_larger_windows,
        status,
        merge_function: analysis.function,
        tenant_field: tenant_field.to_owned(),
        create_epoch: now_ms,
        update_epoch: now_ms,
        last_evaluation_ts: None,
    };
    let mut batch = WriteBatch::new();
    let name_key = name_key(tenant, &definition.name);
    batch
        .expect(Table::ComputedAttributes, &name_key, None)
        .put(
            Table::ComputedAttributes,
            &name_key,
            definition.id.as_bytes().to_vec(),
        );
    put(&mut batch, tenant, &definition, None)?;
    store.commit(batch).map_err(|e| match e {
        tessera_store::Error::Conflict { .. } => invalid(
            "name",
            "Function with the same name already exists for the specified schema or definedOn",
        ),
        other => other.into(),
    })?;
    Ok(definition)
}

/// Fields no PATCH may change (sending them back unchanged is fine).
const FIXED: [&str; 5] = [
    "name",
    "expression",
    "duration",
    "keepCurrent",
    "allowLargerWindows",
];

/// Applies a PATCH per the lifecycle of aep-api.md §3.2: a DRAFT may only become NEW; a NEW
/// attribute may change `displayName`/`description` or become DISABLED; PROCESSING,
/// PROCESSED and FAILED may only become DISABLED; DISABLED is final.
pub fn update(
    store: &dyn Store,
    tenant: &Tenant,
    id: &str,
    body: &Value,
    now_ms: i64,
) -> Result<ComputedAttribute> {
    let body = body
        .as_object()
        .ok_or_else(|| invalid("", "the body must be a JSON object"))?;
    let (mut definition, bytes) =
        get_raw(store, tenant, id)?.ok_or_else(|| Error::AttributeNotFound(id.to_owned()))?;
    let current = serde_json::to_value(&definition).map_err(|e| Error::Corrupt {
        what: "computed attribute",
        reason: e.to_string(),
    })?;
    for field in FIXED {
        if let Some(sent) = body.get(field) {
            if current.get(field) != Some(sent) {
                return Err(invalid(field, "cannot be changed; create a new attribute"));
            }
        }
    }
    let from = definition.status;
    let to = match string_field(body, "status")? {
        Some(text) => Status::parse(&text).ok_or_else(|| invalid("status", "unknown status"))?,
        None => from,
    };
    let display_name = string_field(body, "displayName")?;
    let description = string_field(body, "description")?;
    let edits_text = display_name
        .as_ref()
        .is_some_and(|d| *d != definition.display_name)
        || description
            .as_ref()
            .is_some_and(|d| *d != definition.description);
    let allowed = match (from, to) {
        (a, b) if a == b => true,
        (Status::Draft, Status::New) => true,
        (Status::New, Status::Disabled) => true,
        (Status::Processing | Status::Processed | Status::Failed, Status::Disabled) => true,
        _ => false,
    };
    if !allowed {
        return Err(Error::Transition {
            from: from.as_str(),
            to: to.as_str(),
        });
    }
    if edits_text && from != Status::New {
        return Err(invalid(
            "displayName",
            format!(
                "displayName and description can be changed only while the status is NEW (it is {})",
                from.as_str()
            ),
        ));
    }
    if let Some(d) = display_name {
        definition.display_name = d;
    }
    if let Some(d) = description {
        definition.description = d;
    }
    definition.status = to;
    definition.update_epoch = now_ms;
    let mut batch = WriteBatch::new();
    put(&mut batch, tenant, &definition, Some(bytes))?;
    store.commit(batch).map_err(|e| match e {
        tessera_store::Error::Conflict { .. } => Error::Conflict,
        other => other.into(),
    })?;
    Ok(definition)
}

/// Deletes a DRAFT attribute (no other status may be deleted); returns what was deleted.
pub fn delete(store: &dyn Store, tenant: &Tenant, id: &str) -> Result<ComputedAttribute> {
    let (definition, bytes) =
        get_raw(store, tenant, id)?.ok_or_else(|| Error::AttributeNotFound(id.to_owned()))?;
    if definition.status != Status::Draft {
        return Err(Error::NotDeletable {
            id: id.to_owned(),
            status: definition.status.as_str(),
        });
    }
    let mut batch = WriteBatch::new();
    let key = key(tenant, id);
    batch
        .expect(Table::ComputedAttributes, &key, Some(bytes))
        .delete(Table::ComputedAttributes, &key)
        .delete(
            Table::ComputedAttributes,
            &name_key(tenant, &definition.name),
        )
        .delete(Table::ComputedAttributes, &pending_key(tenant, id));
    bump_version(&mut batch, tenant);
    store.commit(batch).map_err(|e| match e {
        tessera_store::Error::Conflict { .. } => Error::Conflict,
        other => other.into(),
    })?;
    Ok(definition)
}

/// Moves an attribute's status (the backfill: NEW → PROCESSING → PROCESSED/FAILED), unless
/// a client changed it meanwhile (a disable wins over the backfill).
pub(crate) fn set_status(
    store: &dyn Store,
    tenant: &Tenant,
    id: &str,
    from: Status,
    to: Status,
    now_ms: i64,
) -> Result<Option<ComputedAttribute>> {
    let Some((mut definition, bytes)) = get_raw(store, tenant, id)? else {
        return Ok(None);
    };
    if definition.status != from {
        return Ok(None);
    }
    definition.status = to;
    definition.update_epoch = now_ms;
    if to == Status::Processed {
        definition.last_evaluation_ts = Some(now_ms);
    }
    let mut batch = WriteBatch::new();
    put(&mut batch, tenant, &definition, Some(bytes))?;
    match store.commit(batch) {
        Ok(_) => Ok(Some(definition)),
        Err(tessera_store::Error::Conflict { .. }) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn documented_sum_expression_is_read() {
        let a = analyze("xEvent[(commerce.checkouts.value > 0.0 or commerce.purchases.value > 1.0 or commerce.order.priceTotal >= 10.0) and (timestamp occurs <= 7 days before now)].sum(commerce.order.priceTotal)").unwrap();
        assert_eq!(a.function, Function::Sum);
        assert!(a.filter.is_some());
        assert_eq!(a.path, ["commerce", "order", "priceTotal"]);
    }

    #[test]
    fn count_min_max_and_most_recent_are_read() {
        let count = analyze(r#"xEvent[eventType = "download"].count()"#).unwrap();
        assert_eq!((count.function, count.path.len()), (Function::Count, 0));
        let min = analyze("xEvent.min(commerce.shipping.shipDate)").unwrap();
        assert_eq!(min.function, Function::Min);
        assert!(min.filter.is_none());
        let recent =
            analyze(r#"xEvent[eventType = "view"].topN(timestamp, 1).head().web.page.name"#)
                .unwrap();
        assert_eq!(recent.function, Function::MostRecent);
        assert_eq!(recent.path, ["web", "page", "name"]);
    }

    #[test]
    fn other_expressions_are_refused() {
        for text in [
            "person.age > 3",
            "xEvent.sum(1 + 2)",
            "xEvent.average(x)",
            "xEvent.count(x)",
            "xEvent.topN(timestamp, 2).head().x",
            "orders.sum(price)",
            "xEvent[",
        ] {
            assert!(analyze(text).is_err(), "{text}");
        }
    }

    fn attribute(id: &str, pql: &str) -> ComputedAttribute {
        ComputedAttribute {
            id: id.into(),
            name: id.into(),
            display_name: String::new(),
            description: String::new(),
            expression: Expression {
                kind: "PQL".into(),
                format: "pql/text".into(),
                value: pql.into(),
            },
            keep_current: false,
            duration: Duration {
                count: 7,
                unit: Unit::Days,
            },
            allow_larger_windows: false,
            status: Status::Processed,
            merge_function: analyze(pql).unwrap().function,
            tenant_field: "_t".into(),
            create_epoch: 0,
            update_epoch: 0,
            last_evaluation_ts: None,
        }
    }

    /// Attributes sharing a filter test it once; each still gets its own filter's answer.
    #[test]
    fn live_set_answers_like_each_attribute_alone() {
        let texts = [
            r#"xEvent[eventType = "buy"].sum(v)"#,
            "xEvent.count()",
            r#"xEvent[eventType = "view"].count()"#,
            r#"xEvent[eventType = "buy"].count()"#,
            "xEvent.max(v)",
            r#"xEvent[v > 2].count()"#,
            // Evaluated on the event itself: nested elements, missing fields, functions.
            r#"xEvent[items[sku = "a"].count() > 0].count()"#,
            r#"xEvent[not(missing = 1) and eventType.startsWith("b")].count()"#,
            // On a one-event set: any `^`, `timestamp` (a parsed time there).
            r#"xEvent[items[sku = ^.eventType].count() > 0].count()"#,
            r#"xEvent[timestamp occurs <= 1 days before now].count()"#,
            r#"xEvent[timestamp > "2019-06-01T00:00:00Z"].count()"#,
            r#"xEvent[^.xEvent.count() = 1].count()"#,
        ];
        let compile = || -> Vec<Compiled> {
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| Compiled::new(attribute(&i.to_string(), t)).unwrap())
                .collect()
        };
        let live = Live::new(compile());
        assert_eq!(live.same_filter_as, [0, 1, 2, 0, 1, 5, 6, 7, 8, 9, 10, 11]);
        let on_event: Vec<bool> = live.attrs.iter().map(|a| a.on_event.is_some()).collect();
        assert_eq!(
            on_event,
            [true, false, true, true, false, true, true, true, false, false, false, false]
        );
        let alone = compile();
        let ts = tessera_pql::time::parse_timestamp("2020-01-01T00:00:00Z").unwrap();
        let mut accepted = Vec::new();
        for event in [
            serde_json::json!({"eventType": "buy", "v": 3, "timestamp": "2020-01-01T00:00:00Z"}),
            serde_json::json!({"eventType": "view", "v": 1, "timestamp": "2020-01-01T00:00:00Z"}),
            serde_json::json!({"v": 5, "timestamp": "2020-01-01T00:00:00Z"}),
            serde_json::json!({"eventType": "buy", "items": [{"sku": "a"}, {"sku": "buy"}],
                "timestamp": "2020-01-01T00:00:00Z"}),
            serde_json::json!({"eventType": "b", "missing": 1, "items": [{"sku": "b"}]}),
        ] {
            live.accepting(&event, ts, &mut accepted);
            let single = EventSet::new(vec![event]);
            let expected: Vec<bool> = alone.iter().map(|a| a.accepts(&single, ts)).collect();
            assert_eq!(accepted, expected);
        }
    }

    /// What ingestion digests of an event reads back as what the consumer would compute
    /// from the event itself, for every function and kind of value; a digest of another
    /// shape is refused rather than misread.
    #[test]
    fn a_digest_reads_back_as_the_events_contributions() {
        let texts = [
            r#"xEvent[eventType = "buy"].sum(v)"#,
            r#"xEvent[eventType = "buy"].count()"#,
            "xEvent.min(v)",
            "xEvent.max(shipped)",
            "xEvent.min(shipped)",
            "xEvent.topN(timestamp, 1).head().page",
            r#"xEvent[eventType = "view"].topN(timestamp, 1).head().v"#,
            r#"xEvent[items[sku = ^.eventType].count() > 0].count()"#,
        ];
        let live = Live::new(
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| Compiled::new(attribute(&i.to_string(), t)).unwrap())
                .collect(),
        );
        let ts = tessera_pql::time::parse_timestamp("2020-01-01T00:00:00Z").unwrap();
        let events = [
            serde_json::json!({"eventType": "buy", "v": 3.25, "shipped": "2020-01-02T00:00:00Z",
                "page": {"name": "home", "tags": ["a", 1]}}),
            serde_json::json!({"eventType": "view", "v": -7, "page": "cart",
                "items": [{"sku": "view"}]}),
            serde_json::json!({"eventType": "buy", "v": "not a number", "shipped": 12,
                "page": null}),
            serde_json::json!({"v": u64::MAX, "shipped": "not a date", "page": true}),
        ];
        for event in &events {
            let expected = live.contributions(event, ts);
            assert!(expected.iter().any(Option::is_some), "{event}");
            let digest = Digester::digest(&live, event, ts);
            assert_eq!(live.read_digest(digest, ts), Some(expected), "{event}");
        }
        let first = Digester::digest(&live, &events[0], ts);
        let mut short = first.clone();
        short.pop();
        assert_eq!(live.read_digest(short, ts), None, "too few values");
        let mut longer = first.clone();
        longer.push(Value::Null);
        assert_eq!(live.read_digest(longer, ts), None, "too many values");
        for (at, wrong) in [
            (0, serde_json::json!("3.25")),
            (1, serde_json::json!(-1)),
            (2, serde_json::json!([1, 2])),
            (3, serde_json::json!({"n": 1})),
            (5, serde_json::json!(1)),
        ] {
            let mut other = first.clone();
            other[at] = wrong.clone();
            assert_eq!(live.read_digest(other, ts), None, "{wrong} at {at}");
        }
        let again = Live::new(Vec::new());
        assert_ne!(Digester::serial(&live), Digester::serial(&again));
    }

    #[test]
    fn filter_is_evaluated_on_the_event_at_its_time() {
        let definition = ComputedAttribute {
            id: "a".into(),
            name: "n".into(),
            display_name: String::new(),
            description: String::new(),
            expression: Expression {
                kind: "PQL".into(),
                format: "pql/text".into(),
                value:
                    r#"xEvent[eventType = "buy" and timestamp occurs <= 7 days before now].sum(v)"#
                        .into(),
            },
            keep_current: false,
            duration: Duration {
                count: 7,
                unit: Unit::Days,
            },
            allow_larger_windows: false,
            status: Status::Processed,
            merge_function: Function::Sum,
            tenant_field: "_t".into(),
            create_epoch: 0,
            update_epoch: 0,
            last_evaluation_ts: None,
        };
        let compiled = Compiled::new(definition).unwrap();
        let event =
            serde_json::json!({"eventType": "buy", "v": 3, "timestamp": "2020-01-01T00:00:00Z"});
        let ts = tessera_pql::time::parse_timestamp("2020-01-01T00:00:00Z").unwrap();
        let single = EventSet::new(vec![event.clone()]);
        assert!(compiled.accepts(&single, ts));
        assert_eq!(compiled.value_of(&event), Some(&serde_json::json!(3)));
        let other = EventSet::new(vec![
            serde_json::json!({"eventType": "view", "timestamp": "2020-01-01T00:00:00Z"}),
        ]);
        assert!(!compiled.accepts(&other, ts));
    }
}
