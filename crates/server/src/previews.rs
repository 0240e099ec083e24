//! Segment previews and estimates (AEP `/preview`, `/estimate`): a PQL expression evaluated
//! asynchronously over the sandbox's profiles, or over a deterministic sample of them, without
//! writing anything.
//!
//! Lifecycle: `NEW` at creation, `RUNNING` once the runner thread takes it, then
//! `RESULT_READY` or `FAILED`. A preview and its estimate are one job sharing one id.
//!
//! State lives in memory, not in the store: a preview is a throw-away question about the
//! data as it is now, AEP documents no durability for it, and its results (matching profile
//! ids) would otherwise be written for every keystroke of a segment builder. Finished
//! previews are forgotten [`TTL`] after they finished; a restart forgets all of them (a GET
//! then answers 404 and the client creates a new one). At most [`MAX_LIVE`] previews are kept
//! per server, and at most [`MAX_RESULTS`] matching profiles per preview are kept for paging
//! (counts cover every profile read).
//!
//! Sampling follows AEP's table with one knob, `sample_size` (`[segmentation]
//! preview_sample_size`, default 1,000,000): a sandbox of at most `sample_size` profiles is
//! read in full; up to 20 × `sample_size`, about `sample_size` are read; beyond, 5%. A profile
//! is in the sample when a hash of its id (graph id, or the identity for `graphType: none`)
//! falls below the sampling fraction: the same data gives the same sample, a profile's
//! membership in the sample does not depend on walk order, and the estimate scales the
//! matches by total ÷ read, with the standard error of a proportion under sampling without
//! replacement.
//!
//! `graphType: pdg` evaluates each identity graph as one profile (the sandbox default merge
//! policy's attribute merge, with stitching); `none` evaluates each identity as its own
//! profile. Absent, the default policy decides.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tessera_identity::{IdentityKey, Namespaces};
use tessera_model::Tenant;
use tessera_profile::policy::{GraphType, PROFILE_CLASS};
use tessera_segment::batch::{self, Run};
use tessera_segment::definition::{Expression, SegmentDefinition};
use tessera_store::{Store, WriteBatch};

use crate::system_jobs::now_ms;

/// How long a finished preview stays readable.
pub const TTL: Duration = Duration::from_secs(3600);
/// Most previews kept at once (finished ones past their TTL do not count).
pub const MAX_LIVE: usize = 1000;
/// Most matching profiles kept per preview for `GET /preview/{id}` paging.
pub const MAX_RESULTS: usize = 10_000;
/// Graphs read per page of the walk; progress is published and DELETE noticed per page.
const PAGE: usize = 500;
/// Past this many multiples of `sample_size`, AEP reads 5% of the profiles.
const FIXED_SAMPLE_UPTO: u64 = 20;

/// Why a preview operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// No such preview (never made, deleted, expired, or made before a restart).
    #[error("preview {id} does not exist")]
    NotFound {
        /// Requested id.
        id: String,
    },
    /// The request is wrong; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// Too many previews are kept; delete some or wait for them to expire.
    #[error("too many previews are open ({0}); delete finished ones or retry later")]
    TooMany(usize),
}

type Result<T> = std::result::Result<T, PreviewError>;

/// Sampling configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewConfig {
    /// Profiles read in full up to this many; the sample size up to 20 times as many.
    pub sample_size: u64,
}

impl Default for PreviewConfig {
    /// AEP's figures: full below 1M, 1M up to 20M, 5% beyond.
    fn default() -> Self {
        Self {
            sample_size: 1_000_000,
        }
    }
}

impl PreviewConfig {
    /// How many of `total` profiles a preview reads.
    pub fn rows_to_read(&self, total: u64) -> u64 {
        if total <= self.sample_size {
            total
        } else if total <= self.sample_size.saturating_mul(FIXED_SAMPLE_UPTO) {
            self.sample_size
        } else {
            total.div_ceil(20)
        }
    }
}

/// AEP's preview states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PreviewState {
    /// Accepted.
    New,
    /// Being evaluated.
    Running,
    /// Done.
    ResultReady,
    /// Stopped by an error.
    Failed,
}

/// What a client asked for, validated by the route.
#[derive(Debug, Clone)]
pub struct NewPreview {
    /// The expression (parsed and type-checked by the caller).
    pub expression: Expression,
    /// `graphType`; `None`: the default merge policy's.
    pub graph_type: Option<GraphType>,
}

/// A preview as the API shows it.
#[derive(Debug, Clone)]
pub struct Preview {
    /// Sandbox.
    pub tenant: Tenant,
    /// `previewQueryId` (UUID).
    pub query_id: String,
    /// `previewId`: unpadded base64 of `0:<app id>:<previewQueryId>:0`.
    pub preview_id: String,
    /// The app id inside `previewId`.
    pub app_id: String,
    /// The expression.
    pub expression: Expression,
    /// `graphType` as asked.
    pub graph_type: Option<GraphType>,
    /// State.
    pub state: PreviewState,
    /// Profiles of the sandbox (graphs, or identities for `graphType: none`).
    pub total_rows: u64,
    /// Profiles the run reads (the sample size; the actual count once finished).
    pub rows_to_read: u64,
    /// Profiles read so far.
    pub read: u64,
    /// Profiles of those that matched.
    pub matched: u64,
    /// Matched profiles per identity namespace code (a profile counts once per namespace).
    pub by_namespace: BTreeMap<String, u64>,
    /// Matching profiles, each its identities with the addressed one first (at most
    /// [`MAX_RESULTS`]; a page of them when read through [`Previews::get`]).
    pub results: Vec<Vec<IdentityKey>>,
    /// How many matching profiles are kept in all.
    pub result_count: usize,
    /// Why it failed.
    pub error: Option<String>,
    finished: Option<Instant>,
}

impl Preview {
    /// Estimated matching profiles of the whole sandbox.
    pub fn estimated_size(&self) -> u64 {
        if self.read == 0 {
            return 0;
        }
        // Exact when everything was read; scaled from the sample otherwise.
        let scaled = (self.matched as f64) * (self.total_rows as f64) / (self.read as f64);
        scaled.round() as u64
    }

    /// Standard error of [`Self::estimated_size`]: 0 for a full read; otherwise that of the
    /// sample proportion (with the finite-population correction), scaled to the total.
    pub fn standard_error(&self) -> f64 {
        if self.read == 0 || self.read >= self.total_rows {
            return 0.0;
        }
        let n = self.read as f64;
        let total = self.total_rows as f64;
        let p = self.matched as f64 / n;
        let correction = (total - n) / (total - 1.0).max(1.0);
        let se = total * (p * (1.0 - p) / n * correction).sqrt();
        (se * 100.0).round() / 100.0
    }
}

/// `previewId` of a query: unpadded base64 of `0:<app id>:<previewQueryId>:0`. The URL-safe
/// alphabet keeps it one path segment; for AEP's observed ids (hex, `-`, `:`) it produces the
/// same text as the standard alphabet, and [`query_id_of`] accepts either.
pub fn preview_id(app_id: &str, query_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("0:{app_id}:{query_id}:0"))
}

/// The `previewQueryId` inside a `previewId` (either base64 alphabet, padded or not).
pub fn query_id_of(preview_id: &str) -> Option<String> {
    let trimmed = preview_id.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split(':');
    let (_, _, query, _) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(query.to_owned())
}

/// A 64-bit mix of a graph id (splitmix64's finaliser): sequential ids spread evenly.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A stable hash of an identity (FNV-1a, then mixed); not `DefaultHasher`, whose output may
/// change between Rust releases and would move the sample.
fn identity_hash(identity: &IdentityKey) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in identity
        .namespace
        .bytes()
        .chain(std::iter::once(0))
        .chain(identity.id.bytes())
    {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// Whether a unit with `hash` is in a sample of `rows` out of `total`.
fn sampled(hash: u64, rows: u64, total: u64) -> bool {
    if rows >= total {
        return true;
    }
    let threshold = (u128::from(rows) << 64) / u128::from(total.max(1));
    u128::from(hash) < threshold
}

type Live = HashMap<String, Preview>;

/// The preview service: the in-memory previews and the runner's queue.
#[derive(Clone)]
pub struct Previews {
    engine: Engine,
    queue: SyncSender<String>,
    app_id: String,
}

/// What evaluates previews: the shared previews and the store, without the queue's sending
/// side (a runner holding it would keep its own channel open and never see the service go).
#[derive(Clone)]
pub struct Engine {
    live: Arc<Mutex<Live>>,
    store: Arc<dyn Store>,
    max_identities: usize,
    config: PreviewConfig,
}

/// What the runner thread waits on.
pub type Wake = Receiver<String>;

impl std::fmt::Debug for Previews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Previews").finish_non_exhaustive()
    }
}

fn lock(live: &Mutex<Live>) -> MutexGuard<'_, Live> {
    // A panic while holding the lock leaves plain data behind; the runner marks its preview
    // failed on error, so the map stays usable.
    live.lock().unwrap_or_else(PoisonError::into_inner)
}

fn purge(live: &mut Live) {
    live.retain(|_, p| p.finished.is_none_or(|f| f.elapsed() < TTL));
}

impl Previews {
    /// The service and the queue its runner reads (see [`spawn`]).
    pub fn new(
        store: Arc<dyn Store>,
        max_identities: usize,
        config: PreviewConfig,
    ) -> (Self, Wake) {
        let (queue, wake) = sync_channel(MAX_LIVE);
        let service = Self {
            engine: Engine {
                live: Arc::new(Mutex::new(HashMap::new())),
                store,
                max_identities,
                config,
            },
            queue,
            // One app id per server process: previews live in its memory only.
            app_id: format!("app-{}", uuid::Uuid::new_v4()),
        };
        (service, wake)
    }

    /// Accepts a preview; the runner evaluates it.
    pub fn create(&self, tenant: &Tenant, request: NewPreview) -> Result<Preview> {
        let query_id = uuid::Uuid::new_v4().to_string();
        let preview = Preview {
            tenant: tenant.clone(),
            preview_id: preview_id(&self.app_id, &query_id),
            app_id: self.app_id.clone(),
            query_id: query_id.clone(),
            expression: request.expression,
            graph_type: request.graph_type,
            state: PreviewState::New,
            total_rows: 0,
            rows_to_read: 0,
            read: 0,
            matched: 0,
            by_namespace: BTreeMap::new(),
            results: Vec::new(),
            result_count: 0,
            error: None,
            finished: None,
        };
        {
            let mut live = lock(&self.engine.live);
            purge(&mut live);
            if live.len() >= MAX_LIVE {
                return Err(PreviewError::TooMany(live.len()));
            }
            live.insert(query_id.clone(), preview.clone());
        }
        if self.queue.try_send(query_id.clone()).is_err() {
            // Full queue (bounded by MAX_LIVE, so only when the runner has stopped).
            lock(&self.engine.live).remove(&query_id);
            return Err(PreviewError::TooMany(MAX_LIVE));
        }
        tracing::info!(preview = %query_id, "preview accepted");
        Ok(preview)
    }

    /// A preview, with `results` cut to `offset..offset + limit`.
    pub fn get(&self, tenant: &Tenant, id: &str, offset: usize, limit: usize) -> Result<Preview> {
        let not_found = || PreviewError::NotFound { id: id.to_owned() };
        let query = query_id_of(id).ok_or_else(not_found)?;
        let mut live = lock(&self.engine.live);
        purge(&mut live);
        let preview = live
            .get(&query)
            .filter(|p| &p.tenant == tenant)
            .ok_or_else(not_found)?;
        let page = preview
            .results
            .iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        Ok(Preview {
            results: page,
            ..preview.clone()
        })
    }

    /// Deletes a preview (the runner stops at its next page); `false` when there was none.
    pub fn delete(&self, tenant: &Tenant, id: &str) -> bool {
        let Some(query) = query_id_of(id) else {
            return false;
        };
        let mut live = lock(&self.engine.live);
        if live.get(&query).is_some_and(|p| &p.tenant == tenant) {
            live.remove(&query);
            return true;
        }
        false
    }

    /// The evaluator (for the runner thread, and tests that run previews in place).
    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }
}

impl Engine {
    /// Updates a preview if it still exists; `false` when it was deleted (stop).
    fn update(&self, query: &str, change: impl FnOnce(&mut Preview)) -> bool {
        match lock(&self.live).get_mut(query) {
            Some(preview) => {
                change(preview);
                true
            }
            None => false,
        }
    }

    /// Evaluates one accepted preview in place (the runner thread, and tests).
    pub fn run(&self, query: &str) {
        let Some((tenant, expression, graph_type)) = ({
            let mut live = lock(&self.live);
            live.get_mut(query).map(|p| {
                p.state = PreviewState::Running;
                (p.tenant.clone(), p.expression.clone(), p.graph_type)
            })
        }) else {
            return;
        };
        let started = Instant::now();
        let outcome = self.evaluate(query, &tenant, expression, graph_type);
        self.update(query, |p| {
            p.finished = Some(Instant::now());
            match outcome {
                Ok(()) => {
                    p.state = PreviewState::ResultReady;
                    // The sample's actual size, now that it is known.
                    p.rows_to_read = p.read;
                }
                Err(error) => {
                    tracing::warn!(preview = %query, %error, "preview failed");
                    p.state = PreviewState::Failed;
                    p.error = Some(error);
                }
            }
        });
        tracing::info!(preview = %query, ms = started.elapsed().as_millis() as u64, "preview finished");
    }

    fn evaluate(
        &self,
        query: &str,
        tenant: &Tenant,
        expression: Expression,
        graph_type: Option<GraphType>,
    ) -> std::result::Result<(), String> {
        let store = self.store.as_ref();
        let policies = tessera_profile::policy::load(store, tenant).map_err(|e| e.to_string())?;
        let mut policy = policies.default_for(PROFILE_CLASS);
        if let Some(kind) = graph_type {
            policy.identity_graph.kind = kind;
        }
        let per_identity = !policy.stitches();
        let now = now_ms();
        let definition =
            SegmentDefinition::new(format!("preview:{query}"), expression, Vec::new(), now);
        let compiled = batch::compile_one(definition, policy).map_err(|e| e.to_string())?;
        let namespaces = Namespaces::load(store, tenant).map_err(|e| e.to_string())?;

        // Pass 1: how many profiles there are, to size the sample.
        let mut total = 0u64;
        let mut after = None;
        loop {
            let page =
                tessera_identity::graphs(store, tenant, after, PAGE).map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for graph in &page {
                if per_identity {
                    total += graph.members.len() as u64;
                } else if graph.members.len() <= self.max_identities {
                    total += 1;
                }
            }
            if !self.update(query, |_| {}) {
                return Ok(());
            }
        }
        let rows = self.config.rows_to_read(total);
        if !self.update(query, |p| {
            p.total_rows = total;
            p.rows_to_read = rows;
        }) {
            return Ok(());
        }

        // Pass 2: evaluate the sampled profiles; publish progress per page.
        let never = || false;
        let record = |_: &mut WriteBatch, _: &[batch::Change]| Ok(());
        let run = Run {
            store,
            tenant,
            now_ms: now,
            max_identities: self.max_identities,
            should_stop: &never,
            record: &record,
            use_views: false,
        };
        let mut after = None;
        loop {
            let page =
                tessera_identity::graphs(store, tenant, after, PAGE).map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            let mut read = 0u64;
            let mut found: Vec<Vec<IdentityKey>> = Vec::new();
            for graph in &page {
                let mut units: Vec<Vec<IdentityKey>> = Vec::new();
                if per_identity {
                    for member in &graph.members {
                        if sampled(identity_hash(&member.identity), rows, total) {
                            units.push(vec![member.identity.clone()]);
                        }
                    }
                } else if graph.members.len() <= self.max_identities
                    && sampled(mix(graph.id), rows, total)
                {
                    // The addressed identity is the oldest, as batch segmentation reports.
                    let mut members = graph.members.clone();
                    members.sort_by(|a, b| {
                        (a.first_seen, &a.identity).cmp(&(b.first_seen, &b.identity))
                    });
                    units.push(members.into_iter().map(|m| m.identity).collect());
                }
                for unit in units {
                    read += 1;
                    if batch::matches_profile(&run, graph.id, &unit, &compiled)
                        .map_err(|e| e.to_string())?
                    {
                        found.push(unit);
                    }
                }
            }
            let alive = self.update(query, |p| {
                p.read += read;
                p.matched += found.len() as u64;
                for unit in found {
                    let codes: BTreeSet<&str> = unit.iter().map(|i| i.namespace.as_str()).collect();
                    for code in codes {
                        // AEP reports namespaces by numeric id; a code the sandbox no longer
                        // knows is reported as itself rather than dropped.
                        let id = namespaces
                            .by_code(code)
                            .map_or_else(|| code.to_owned(), |n| n.id.to_string());
                        *p.by_namespace.entry(id).or_default() += 1;
                    }
                    if p.results.len() < MAX_RESULTS {
                        p.results.push(unit);
                    }
                    p.result_count = p.results.len();
                }
            });
            if !alive {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Starts the runner thread: it evaluates previews one at a time in creation order; it ends
/// when every [`Previews`] handle is dropped.
pub fn spawn(previews: &Previews, wake: Wake) -> std::io::Result<std::thread::JoinHandle<()>> {
    let engine = previews.engine();
    std::thread::Builder::new()
        .name("tessera-previews".into())
        .spawn(move || {
            while let Ok(query) = wake.recv() {
                engine.run(&query);
            }
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn preview_ids_round_trip_and_match_aeps_observed_shape() {
        let id = preview_id(
            "app-32be0328-3f31-4b64-8d84-acd0c4fbdad3",
            "e890068b-f5ca-4a8f-a6b5-af87ff0caac3",
        );
        assert_eq!(id, "MDphcHAtMzJiZTAzMjgtM2YzMS00YjY0LThkODQtYWNkMGM0ZmJkYWQzOmU4OTAwNjhiLWY1Y2EtNGE4Zi1hNmI1LWFmODdmZjBjYWFjMzow");
        assert_eq!(
            query_id_of(&id).as_deref(),
            Some("e890068b-f5ca-4a8f-a6b5-af87ff0caac3")
        );
        assert_eq!(query_id_of("not base64!"), None);
        assert_eq!(query_id_of("MDox"), None, "0:1 has too few parts");
    }

    #[test]
    fn sample_sizes_follow_aeps_table() {
        let aep = PreviewConfig::default();
        assert_eq!(aep.rows_to_read(999_999), 999_999);
        assert_eq!(aep.rows_to_read(1_000_000), 1_000_000);
        assert_eq!(aep.rows_to_read(15_000_000), 1_000_000);
        assert_eq!(aep.rows_to_read(40_000_000), 2_000_000);
        let small = PreviewConfig { sample_size: 10 };
        assert_eq!(small.rows_to_read(50), 10);
        assert_eq!(small.rows_to_read(1000), 50);
    }

    #[test]
    fn sampling_is_deterministic_and_close_to_its_fraction() {
        let picked: Vec<u64> = (0..10_000u64)
            .filter(|id| sampled(mix(*id), 1000, 10_000))
            .collect();
        let again: Vec<u64> = (0..10_000u64)
            .filter(|id| sampled(mix(*id), 1000, 10_000))
            .collect();
        assert_eq!(picked, again);
        assert!((850..1150).contains(&picked.len()), "{}", picked.len());
        assert!((0..10u64).all(|id| sampled(mix(id), 10, 10)), "full read");
    }

    #[test]
    fn estimates_scale_the_sample() {
        let mut p = Preview {
            tenant: Tenant::parse("ORG@AdobeOrg", "prod").unwrap(),
            query_id: String::new(),
            preview_id: String::new(),
            app_id: String::new(),
            expression: Expression {
                kind: "PQL".into(),
                format: "pql/text".into(),
                value: "true".into(),
            },
            graph_type: None,
            state: PreviewState::ResultReady,
            total_rows: 100,
            rows_to_read: 100,
            read: 100,
            matched: 30,
            by_namespace: BTreeMap::new(),
            results: Vec::new(),
            result_count: 0,
            error: None,
            finished: None,
        };
        assert_eq!((p.estimated_size(), p.standard_error()), (30, 0.0));
        p.total_rows = 1000;
        assert_eq!(p.estimated_size(), 300);
        // 1000 × sqrt(0.3 × 0.7 / 100 × 900 / 999) ≈ 43.5
        assert!(
            (p.standard_error() - 43.5).abs() < 0.1,
            "{}",
            p.standard_error()
        );
    }
}
