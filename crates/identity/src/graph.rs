//! The identity graph.
//!
//! Stored in the tenant's scope:
//! - `Table::Identities`: `namespace, id` → the graph the identity belongs to and the graphs
//!   it moved through (its cluster history; see the `pointer` module).
//! - `Table::Graphs`: `graph id` → the graph's head: members (with first/last seen and the
//!   datasets they came from), or a redirect to the graph that absorbed it; its links
//!   (which pair, when first and last made, by which record: a base document beside the
//!   head and a log of later additions, see the `links` module) and its history log.
//!
//! A [`GraphTxn`] reads through an overlay, so several records of one write batch see each
//! other's links, and at the end emits every change into the caller's batch together with
//! preconditions on everything it read: a concurrent writer on another thread or node makes
//! the commit fail with a conflict instead of losing a merge.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::RngCore;
use tessera_model::Tenant;
use tessera_store::{Key, Scope, Store, Table, WriteBatch};

use crate::error::{Error, Result};
use crate::key::IdentityKey;
use crate::links::{self, LinkLog};
use crate::pointer;
use crate::rules::LinkingRules;

/// Longest redirect chain followed before giving up (merges rewrite members' pointers, so
/// chains only serve readers holding old graph ids).
const MAX_REDIRECTS: usize = 16;
/// Datasets remembered per member.
const MAX_MEMBER_DATASETS: usize = 10;
/// Batches remembered per member and per link (the most recent).
pub(crate) const MAX_BATCHES: usize = 10;

/// Graph limits.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Most identities in one graph (AEP: 50).
    pub max_identities: usize,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self { max_identities: 50 }
    }
}

/// One identity of a graph.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The identity.
    pub identity: IdentityKey,
    /// First time a record carried it (ms).
    pub first_seen: i64,
    /// Last time a record carried it (ms).
    pub last_seen: i64,
    /// Datasets it came from (most recent last, capped).
    pub datasets: Vec<String>,
    /// Batches it came from (most recent last, capped); records streamed one by one belong
    /// to none.
    #[serde(default)]
    pub batches: Vec<String>,
}

/// A link two identities share because a record carried both.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// One end (the record's primary identity when it was made).
    pub a: IdentityKey,
    /// Other end.
    pub b: IdentityKey,
    /// First made (ms).
    pub first_seen: i64,
    /// Last confirmed (ms).
    pub last_seen: i64,
    /// Receipt of the record that made it first.
    pub xaction_id: String,
    /// Dataset of that record.
    pub dataset: String,
    /// Every dataset whose records asserted the link (capped), for the graph API's edge
    /// metadata and for deleting a dataset's links.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Batches whose records asserted the link (the most recent, capped), oldest first,
    /// for the graph API's `batch_ids`.
    #[serde(default)]
    pub batches: Vec<LinkBatch>,
}

/// A batch whose records asserted a link, and the last time one did. The time makes the
/// pieces of a graph's links fold to the same batches in any order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkBatch {
    /// The batch id.
    pub id: String,
    /// Last assertion (ms).
    pub at: i64,
}

impl Link {
    pub(crate) fn joins(&self, x: &IdentityKey, y: &IdentityKey) -> bool {
        (&self.a == x && &self.b == y) || (&self.a == y && &self.b == x)
    }

    fn touches(&self, x: &IdentityKey) -> bool {
        &self.a == x || &self.b == x
    }
}

/// A live graph.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Graph {
    /// Graph id.
    pub id: u64,
    /// Creation time (ms); on a merge the oldest graph survives.
    pub created: i64,
    /// Last change (ms).
    pub updated: i64,
    /// Its identities.
    pub members: Vec<Member>,
    /// Its links.
    pub links: Vec<Link>,
}

impl Graph {
    /// Whether `identity` belongs to the graph.
    pub fn contains(&self, identity: &IdentityKey) -> bool {
        self.members.iter().any(|m| &m.identity == identity)
    }

    /// Member identities.
    pub fn identities(&self) -> impl Iterator<Item = &IdentityKey> {
        self.members.iter().map(|m| &m.identity)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GraphDoc {
    Live(Graph),
    Redirect { to: u64, at: i64 },
}

fn identity_key(tenant: &Tenant, identity: &IdentityKey) -> Key {
    Key::tenant(tenant)
        .str(&identity.namespace)
        .str(&identity.id)
        .finish()
}

pub(crate) fn graph_key(tenant: &Tenant, id: u64) -> Key {
    Key::tenant(tenant).u64(id).finish()
}

/// The stored head of a graph: members only (links are stored apart, so lookups and profile
/// merges read a small document), or a redirect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum StoredHead {
    /// A live graph whose links are all in its base document.
    Live {
        id: u64,
        created: i64,
        updated: i64,
        members: Vec<Member>,
    },
    Redirect {
        to: u64,
        at: i64,
    },
    /// A live graph with links in log rows or in graphs it absorbed as well.
    Logged {
        id: u64,
        created: i64,
        updated: i64,
        members: Vec<Member>,
        log: LinkLog,
    },
}

impl StoredHead {
    /// The graph (without links) and where its links are, or for a redirect where it
    /// leads and since when (`to`, `at`).
    fn into_live(self) -> std::result::Result<(Graph, LinkLog), (u64, i64)> {
        let (id, created, updated, members, log) = match self {
            StoredHead::Live {
                id,
                created,
                updated,
                members,
            } => (id, created, updated, members, LinkLog::default()),
            StoredHead::Logged {
                id,
                created,
                updated,
                members,
                log,
            } => (id, created, updated, members, log),
            StoredHead::Redirect { to, at } => return Err((to, at)),
        };
        let graph = Graph {
            id,
            created,
            updated,
            members,
            links: Vec::new(),
        };
        Ok((graph, log))
    }
}

/// [`StoredHead`] borrowing its members, so writing a head copies nothing; encodes to the
/// same bytes (bincode writes variant index and fields alike, so the variants keep
/// [`StoredHead`]'s order).
#[derive(serde::Serialize)]
enum StoredHeadRef<'a> {
    Live {
        id: u64,
        created: i64,
        updated: i64,
        members: &'a [Member],
    },
    Redirect {
        to: u64,
        at: i64,
    },
    Logged {
        id: u64,
        created: i64,
        updated: i64,
        members: &'a [Member],
        log: &'a LinkLog,
    },
}

impl<'a> StoredHeadRef<'a> {
    fn live(graph: &'a Graph, log: &'a LinkLog) -> Self {
        if log.is_empty() {
            StoredHeadRef::Live {
                id: graph.id,
                created: graph.created,
                updated: graph.updated,
                members: &graph.members,
            }
        } else {
            StoredHeadRef::Logged {
                id: graph.id,
                created: graph.created,
                updated: graph.updated,
                members: &graph.members,
                log,
            }
        }
    }
}

/// Leading byte of a stored graph document: its format. Graph documents are read on every
/// profile lookup and rewritten on every linking record, so they use a compact binary
/// encoding (bincode) rather than JSON. Version 1 wrote fixed-width integers and lengths;
/// version 2 writes them as varints, about a third fewer bytes per linking record for the
/// journal and memtable to absorb. Version 3 (written now) is version 2 with the batches of
/// members and links. All are read: the older ones into [`legacy`] shapes, which gain empty
/// batches.
const GRAPH_FORMAT_FIXINT: u8 = 1;
const GRAPH_FORMAT_VARINT: u8 = 2;
const GRAPH_FORMAT_BATCHES: u8 = 3;

fn varint_options() -> impl bincode::Options {
    bincode::DefaultOptions::new()
}

pub(crate) fn decode<T: Stored>(bytes: &[u8]) -> Result<T> {
    use bincode::Options as _;
    let corrupt = |e: bincode::Error| Error::Corrupt {
        what: "graph",
        reason: e.to_string(),
    };
    match bytes.split_first() {
        Some((&GRAPH_FORMAT_BATCHES, body)) => varint_options().deserialize(body).map_err(corrupt),
        Some((&GRAPH_FORMAT_VARINT, body)) => varint_options()
            .deserialize::<T::Legacy>(body)
            .map(T::from_legacy)
            .map_err(corrupt),
        Some((&GRAPH_FORMAT_FIXINT, body)) => bincode::deserialize::<T::Legacy>(body)
            .map(T::from_legacy)
            .map_err(corrupt),
        Some((format, _)) => Err(Error::Corrupt {
            what: "graph",
            reason: format!("unknown graph format {format}"),
        }),
        None => Err(Error::Corrupt {
            what: "graph",
            reason: "empty graph document".into(),
        }),
    }
}

/// A stored graph document, and its shape before batches were kept.
pub(crate) trait Stored: serde::de::DeserializeOwned {
    type Legacy: serde::de::DeserializeOwned;
    fn from_legacy(legacy: Self::Legacy) -> Self;
}

impl Stored for StoredHead {
    type Legacy = legacy::StoredHead;
    fn from_legacy(legacy: legacy::StoredHead) -> Self {
        let members =
            |members: Vec<legacy::Member>| members.into_iter().map(Member::from).collect();
        match legacy {
            legacy::StoredHead::Live {
                id,
                created,
                updated,
                members: old,
            } => StoredHead::Live {
                id,
                created,
                updated,
                members: members(old),
            },
            legacy::StoredHead::Redirect { to, at } => StoredHead::Redirect { to, at },
            legacy::StoredHead::Logged {
                id,
                created,
                updated,
                members: old,
                log,
            } => StoredHead::Logged {
                id,
                created,
                updated,
                members: members(old),
                log,
            },
        }
    }
}

impl Stored for Vec<Link> {
    type Legacy = Vec<legacy::Link>;
    fn from_legacy(legacy: Vec<legacy::Link>) -> Self {
        legacy.into_iter().map(Link::from).collect()
    }
}

impl From<legacy::Member> for Member {
    fn from(old: legacy::Member) -> Self {
        Member {
            identity: old.identity,
            first_seen: old.first_seen,
            last_seen: old.last_seen,
            datasets: old.datasets,
            batches: Vec::new(),
        }
    }
}

impl From<legacy::Link> for Link {
    fn from(old: legacy::Link) -> Self {
        Link {
            a: old.a,
            b: old.b,
            first_seen: old.first_seen,
            last_seen: old.last_seen,
            xaction_id: old.xaction_id,
            dataset: old.dataset,
            datasets: old.datasets,
            batches: Vec::new(),
        }
    }
}

/// Graph documents as formats 1 and 2 wrote them (bincode is positional: a field added to
/// [`Member`] or [`Link`] needs the old shape to read old bytes).
pub(crate) mod legacy {
    use super::{IdentityKey, LinkLog};

    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct Member {
        pub identity: IdentityKey,
        pub first_seen: i64,
        pub last_seen: i64,
        pub datasets: Vec<String>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct Link {
        pub a: IdentityKey,
        pub b: IdentityKey,
        pub first_seen: i64,
        pub last_seen: i64,
        pub xaction_id: String,
        pub dataset: String,
        pub datasets: Vec<String>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub enum StoredHead {
        Live {
            id: u64,
            created: i64,
            updated: i64,
            members: Vec<Member>,
        },
        Redirect {
            to: u64,
            at: i64,
        },
        Logged {
            id: u64,
            created: i64,
            updated: i64,
            members: Vec<Member>,
            log: LinkLog,
        },
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    use bincode::Options as _;
    let mut bytes = vec![GRAPH_FORMAT_BATCHES];
    varint_options()
        .serialize_into(&mut bytes, value)
        .map_err(|e| Error::Corrupt {
            what: "graph",
            reason: e.to_string(),
        })?;
    Ok(bytes)
}

/// Reads a graph by id following redirects; with `with_links`, also its links.
fn read_graph(
    store: &dyn Store,
    tenant: &Tenant,
    mut id: u64,
    with_links: bool,
) -> Result<Option<Graph>> {
    for _ in 0..MAX_REDIRECTS {
        let Some(bytes) = store.get(Table::Graphs, &graph_key(tenant, id))? else {
            return Ok(None);
        };
        match decode::<StoredHead>(&bytes)?.into_live() {
            Ok((mut graph, log)) => {
                if with_links {
                    graph.links = links::read_whole(store, tenant, graph.id, &log)?.0;
                }
                return Ok(Some(graph));
            }
            Err((to, _)) => id = to,
        }
    }
    Err(Error::Corrupt {
        what: "graph",
        reason: format!("redirect chain from graph {id} is too long"),
    })
}

/// The graph `identity` belongs to, if it was ever seen: its members, without links (the
/// lookup path reads only the small members document). Use [`resolve_with_links`] for edges.
pub fn resolve(
    store: &dyn Store,
    tenant: &Tenant,
    identity: &IdentityKey,
) -> Result<Option<Graph>> {
    resolve_inner(store, tenant, identity, false)
}

/// Like [`resolve`], with the graph's links.
pub fn resolve_with_links(
    store: &dyn Store,
    tenant: &Tenant,
    identity: &IdentityKey,
) -> Result<Option<Graph>> {
    resolve_inner(store, tenant, identity, true)
}

/// The id of the graph `identity` belongs to (one point read; pointers always name a live
/// graph because merges and splits rewrite them in the same batch).
pub fn graph_id(store: &dyn Store, tenant: &Tenant, identity: &IdentityKey) -> Result<Option<u64>> {
    store
        .get(Table::Identities, &identity_key(tenant, identity))?
        .map(|pointer| pointer::graph_of(&pointer))
        .transpose()
        .map(Option::flatten)
}

/// Like [`graph_id`], and makes `batch` expect the identity's graph pointer unchanged, so a
/// writer that invalidates the graph's view (deleting profile data, say) cannot commit
/// after the identity moved to another graph whose view it would then leave stale.
pub fn graph_id_checked(
    store: &dyn Store,
    batch: &mut WriteBatch,
    tenant: &Tenant,
    identity: &IdentityKey,
) -> Result<Option<u64>> {
    let key = identity_key(tenant, identity);
    let pointer = store.get(Table::Identities, &key)?;
    let graph = pointer
        .as_deref()
        .map(pointer::graph_of)
        .transpose()?
        .flatten();
    batch.expect(Table::Identities, &key, pointer);
    Ok(graph)
}

/// One page of [`scan_identities`].
#[derive(Debug, Clone, Default)]
pub struct IdentityPage {
    /// Identities with the graph each belongs to, in key order.
    pub identities: Vec<(IdentityKey, u64)>,
    /// Where the next page starts (`None`: this was the last).
    pub next: Option<Vec<u8>>,
}

/// One page of a tenant's identities with the graph each belongs to, for whole-tenant
/// reports; pass the page's `next` back to continue.
pub fn scan_identities(
    store: &dyn Store,
    tenant: &Tenant,
    resume_after: Option<Vec<u8>>,
    limit: usize,
) -> Result<IdentityPage> {
    let mut range =
        tessera_store::ScanRange::prefix(Key::scope_prefix(&Scope::Tenant(tenant.clone())));
    range.resume_after = resume_after;
    let rows = store.scan(
        Table::Identities,
        &range,
        tessera_store::Direction::Forward,
        limit,
    )?;
    let mut page = Vec::with_capacity(rows.len());
    for row in &rows {
        let (_, mut reader) = tessera_store::KeyReader::with_scope(&row.key)?;
        let namespace = reader.string()?;
        // The table also holds cluster history under `~clusters`: not identity pointers.
        if namespace.starts_with('~') {
            continue;
        }
        let id = reader.string()?;
        // Identities that left their graph keep a pointer for their cluster history.
        if let Some(graph) = pointer::graph_of(&row.value)? {
            page.push((IdentityKey::new(namespace, id), graph));
        }
    }
    let next = match rows.last() {
        Some(last) if rows.len() >= limit => Some(last.key.clone()),
        _ => None,
    };
    Ok(IdentityPage {
        identities: page,
        next,
    })
}

fn resolve_inner(
    store: &dyn Store,
    tenant: &Tenant,
    identity: &IdentityKey,
    with_links: bool,
) -> Result<Option<Graph>> {
    let Some(pointer) = store.get(Table::Identities, &identity_key(tenant, identity))? else {
        return Ok(None);
    };
    let Some(id) = pointer::graph_of(&pointer)? else {
        return Ok(None);
    };
    match read_graph(store, tenant, id, with_links)? {
        Some(graph) => Ok(Some(graph)),
        None => Err(Error::Corrupt {
            what: "graph",
            reason: format!("identity {identity} points at missing graph {id}"),
        }),
    }
}

/// Live graphs of the sandbox in id order, members only, starting after graph `after`: for
/// walks over every profile (statistics, exports, demos). Redirects and other keys of the
/// table are skipped.
pub fn graphs(
    store: &dyn Store,
    tenant: &Tenant,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<Graph>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let scope = Key::scope_prefix(&Scope::Tenant(tenant.clone()));
    let mut found = Vec::new();
    // Heads are the u64-keyed entries, after the string-keyed logs (string tag < u64 tag):
    // start right after graph 0's key, so the walk never reads through the history logs.
    if after.is_none() {
        if let Some(graph) = read_graph(store, tenant, 0, false)?.filter(|g| g.id == 0) {
            found.push(graph);
        }
    }
    let mut range = tessera_store::ScanRange::prefix(scope.clone())
        .resume_after(graph_key(tenant, after.unwrap_or(0)).into_bytes());
    let scope_len = scope.as_bytes().len();
    // Each head is followed by its links key, and absorbed graphs leave redirects: read in
    // pages until enough.
    loop {
        let rows = store.scan(
            Table::Graphs,
            &range,
            tessera_store::Direction::Forward,
            limit.saturating_mul(2).clamp(2, 10_000),
        )?;
        let Some(last) = rows.last().map(|r| r.key.clone()) else {
            return Ok(found);
        };
        for row in rows {
            let Some(rest) = row.key.get(scope_len..) else {
                continue;
            };
            let mut reader = tessera_store::KeyReader::new(rest);
            let Ok(id) = reader.u64() else {
                // Past the heads: history logs and other string-keyed entries.
                return Ok(found);
            };
            if !reader.is_done() {
                continue;
            }
            if let Ok((graph, _)) = decode::<StoredHead>(&row.value)?.into_live() {
                found.push(Graph { id, ..graph });
                if found.len() == limit {
                    return Ok(found);
                }
            }
        }
        range = tessera_store::ScanRange::prefix(scope.clone()).resume_after(last);
    }
}

/// A graph by id (following redirects), with its links, for readers holding an id.
pub fn graph_by_id(store: &dyn Store, tenant: &Tenant, id: u64) -> Result<Option<Graph>> {
    read_graph(store, tenant, id, true)
}

/// Like [`graph_by_id`] without the links (members only: one small read).
pub fn members_by_id(store: &dyn Store, tenant: &Tenant, id: u64) -> Result<Option<Graph>> {
    read_graph(store, tenant, id, false)
}

/// What one record's identities did to the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkOutcome {
    /// The graph the record's identities now belong to.
    pub graph: u64,
    /// Graphs merged into it by this record.
    pub absorbed: Vec<u64>,
    /// Identities removed to keep the graph within its limit.
    pub evicted: Vec<IdentityKey>,
    /// Graphs split off when an eviction disconnected the rest.
    pub split_off: Vec<u64>,
    /// The record created the graph.
    pub created: bool,
    /// The graph grew, and only by identities seen for the first time (no record of an
    /// identity-enabled dataset carried them before, in this transaction or earlier):
    /// nothing merged, was evicted or split off. Keepers of per-graph state derived from
    /// the members' events can then extend it instead of recomputing it.
    pub grew_by_new_identities: bool,
    /// The record merged other graphs into this one (`absorbed`), and besides their members
    /// the graph gained only identities seen for the first time: nothing was evicted or split
    /// off. Per-graph state derived from the members' events can then be combined from the
    /// merged graphs' states instead of recomputed.
    pub clean_merge: bool,
}

/// Where a linking record came from, as its graph remembers it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'s> {
    /// Its dataset.
    pub dataset: &'s str,
    /// Its batch, when it came in one.
    pub batch: Option<&'s str>,
    /// Its receipt.
    pub xaction_id: &'s str,
}

/// Keeps `value` as the most recent of at most `cap` distinct values.
fn remember_recent(list: &mut Vec<String>, value: &str, cap: usize) {
    if list.last().map(String::as_str) == Some(value) {
        return;
    }
    list.retain(|v| v != value);
    list.push(value.to_owned());
    if list.len() > cap {
        list.remove(0);
    }
}

/// A value read from the store, and its current value in the transaction.
#[derive(Debug)]
struct Slot<T> {
    original: Option<Vec<u8>>,
    current: Option<T>,
    dirty: bool,
    /// A record of this transaction linked it (identities only).
    linked: bool,
}

/// Graph changes of one atomic batch, for one tenant.
pub struct GraphTxn<'a> {
    store: &'a dyn Store,
    tenant: Tenant,
    config: GraphConfig,
    /// Ranks a namespace for eviction: lower ranks go first.
    eviction_rank: Box<dyn Fn(&str) -> u8 + 'a>,
    identities: BTreeMap<IdentityKey, Slot<u64>>,
    graphs: BTreeMap<u64, Slot<GraphDoc>>,
    /// Where each live graph read keeps its links (from its head), as this transaction
    /// changes it: merges hand the absorbed graphs' pieces to the survivor.
    logs: BTreeMap<u64, LinkLog>,
    /// Graphs whose links the transaction read whole, with the keys of the rows they came
    /// from: their `links` are the full set, rewritten at the end as one base document in
    /// place of those rows. A live graph not listed has its stored links unread; its `links`
    /// hold only what this transaction's records made or confirmed, stored as a log row.
    /// No precondition guards the rows themselves: every transaction that writes or deletes
    /// one also rewrites the graph's head, whose precondition catches the race.
    whole: BTreeMap<u64, Vec<Key>>,
    /// Rows of graphs read whole and then absorbed by a graph whose links stayed unread:
    /// their links moved into the survivor's log row.
    obsolete: Vec<Key>,
    history: Vec<(u64, HistoryEntry)>,
    rules: LinkingRules,
    /// Every linking record reads its graphs' links whole (as all did before the log rows):
    /// the oracle the property tests compare the log against.
    links_always_whole: bool,
    /// Latest time the transaction was told about (stamps identities' cluster history).
    clock: i64,
    /// Graphs whose set of members changes in this transaction (an identity joined, left or
    /// moved): what readers derived from the membership must be refreshed.
    reshaped: BTreeSet<u64>,
    /// Logs to remove at commit (erasure), which hold identity values: graph history logs
    /// (`Table::Graphs`) and identities' cluster histories (`Table::Identities`).
    erased_logs: Vec<(Table, Key)>,
    /// Identities erased outright: their pointers go, cluster history and all (an identity
    /// that merely left its graph keeps its history in its pointer).
    erased: BTreeSet<IdentityKey>,
    /// The store's read version noted before the first read: preconditions on what the
    /// transaction read need no second read for keys nobody wrote since.
    read_at: Option<u64>,
}

/// One change in a graph's life, kept in its history log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// When (ms).
    pub at: i64,
    /// What happened: `created`, `merged`, `evicted`, `split`, `unlinked-identity`,
    /// `unlinked-link`, `links-removed-by-rules`, `rejected-by-rules` (a record naming two
    /// values of a unique namespace, not linked).
    pub event: String,
    /// Graphs involved besides this one (absorbed, split off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub graphs: Vec<u64>,
    /// Identities involved (evicted, removed, the two ends of a removed link).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<IdentityKey>,
    /// Receipt of the record that caused it, when a record did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xaction_id: Option<String>,
}

/// A graph's history log. Entries are keyed by time, then by the nonce of the transaction
/// that wrote them and their place in it; logs written before that were numbered (an
/// append log), and those keys sort before any time-keyed one.
fn history_prefix(tenant: &Tenant, graph: u64) -> Key {
    Key::tenant(tenant).str("history").u64(graph).finish()
}

/// One move of an identity into a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterMove {
    /// The graph it joined.
    pub cluster: u64,
    /// When (ms).
    pub at: i64,
}

/// The graphs an identity has belonged to, newest first (AEP's cluster history): the moves
/// kept in its pointer and the older ones spilled into rows.
pub fn cluster_history(
    store: &dyn Store,
    tenant: &Tenant,
    identity: &IdentityKey,
) -> Result<Vec<ClusterMove>> {
    let rows = store.scan(
        Table::Identities,
        &tessera_store::ScanRange::prefix(pointer::spilled_moves_prefix(tenant, identity)),
        tessera_store::Direction::Reverse,
        1_000,
    )?;
    let mut moves = match store.get(Table::Identities, &identity_key(tenant, identity))? {
        Some(bytes) => pointer::decode(&bytes)?.moves,
        None => Vec::new(),
    };
    for row in &rows {
        moves.push(
            serde_json::from_slice::<ClusterMove>(&row.value).map_err(|e| Error::Corrupt {
                what: "cluster history",
                reason: e.to_string(),
            })?,
        );
    }
    // Spilled rows sort by time; rows written when moves were an append log sort by
    // sequence: order everything by time explicitly.
    moves.sort_by_key(|m| std::cmp::Reverse(m.at));
    Ok(moves)
}

/// A graph's history, oldest first (by the time of the record or request that caused each
/// entry; entries of one transaction in the order it made them).
pub fn history(store: &dyn Store, tenant: &Tenant, graph: u64) -> Result<Vec<HistoryEntry>> {
    let rows = store.scan(
        Table::Graphs,
        &tessera_store::ScanRange::prefix(history_prefix(tenant, graph)),
        tessera_store::Direction::Forward,
        10_000,
    )?;
    rows.iter()
        .map(|row| {
            serde_json::from_slice(&row.value).map_err(|e| Error::Corrupt {
                what: "graph history",
                reason: e.to_string(),
            })
        })
        .collect()
}

impl<'a> GraphTxn<'a> {
    /// Starts a transaction. `eviction_rank` orders namespaces for eviction (lower first);
    /// within a rank the least recently seen identity goes first.
    pub fn new(
        store: &'a dyn Store,
        tenant: Tenant,
        config: GraphConfig,
        eviction_rank: impl Fn(&str) -> u8 + 'a,
    ) -> Self {
        Self {
            store,
            tenant,
            config,
            eviction_rank: Box::new(eviction_rank),
            identities: BTreeMap::new(),
            graphs: BTreeMap::new(),
            logs: BTreeMap::new(),
            whole: BTreeMap::new(),
            obsolete: Vec::new(),
            history: Vec::new(),
            rules: LinkingRules::default(),
            links_always_whole: false,
            clock: 0,
            reshaped: BTreeSet::new(),
            erased_logs: Vec::new(),
            erased: BTreeSet::new(),
            read_at: store.read_version(),
        }
    }

    /// Applies the sandbox's linking rules (unique namespaces, priority) to every link.
    pub fn with_rules(mut self, rules: LinkingRules) -> Self {
        self.rules = rules;
        self
    }

    /// Makes every linking record read its graphs' links whole and rewrite them as one
    /// document, for tests that compare the cheaper log against it.
    #[doc(hidden)]
    pub fn reading_links_whole(mut self) -> Self {
        self.links_always_whole = true;
        self
    }

    fn pointer(&mut self, identity: &IdentityKey) -> Result<Option<u64>> {
        if let Some(slot) = self.identities.get(identity) {
            return Ok(slot.current);
        }
        let original = self
            .store
            .get(Table::Identities, &identity_key(&self.tenant, identity))?;
        let current = original
            .as_deref()
            .map(pointer::graph_of)
            .transpose()?
            .flatten();
        self.identities.insert(
            identity.clone(),
            Slot {
                original,
                current,
                dirty: false,
                linked: false,
            },
        );
        Ok(current)
    }

    fn set_pointer(&mut self, identity: &IdentityKey, graph: Option<u64>) -> Result<()> {
        self.pointer(identity)?;
        if let Some(slot) = self.identities.get_mut(identity) {
            if slot.current != graph {
                self.reshaped.extend(slot.current);
                self.reshaped.extend(graph);
                slot.current = graph;
                slot.dirty = true;
            }
        }
        Ok(())
    }

    /// The transaction's view of graph document `id`, read into the overlay on first use.
    fn doc_ref(&mut self, id: u64) -> Result<Option<&GraphDoc>> {
        if !self.graphs.contains_key(&id) {
            self.load(id)?;
        }
        Ok(self.graphs.get(&id).and_then(|slot| slot.current.as_ref()))
    }

    /// Moves live graph `id` out of the overlay for a caller that will store its successor
    /// (or a redirect) with [`GraphTxn::set_doc`]; an error leaves the transaction unusable,
    /// as every error of `link` does.
    fn take_live(&mut self, id: u64) -> Result<Graph> {
        self.doc_ref(id)?;
        match self
            .graphs
            .get_mut(&id)
            .and_then(|slot| slot.current.take())
        {
            Some(GraphDoc::Live(graph)) => Ok(graph),
            _ => Err(Error::Corrupt {
                what: "graph",
                reason: format!("graph {id} is not live"),
            }),
        }
    }

    /// The live graph `identity` belongs to as `(created, id)`, without copying it.
    fn live_graph(&mut self, identity: &IdentityKey) -> Result<Option<(i64, u64)>> {
        let Some(mut id) = self.pointer(identity)? else {
            return Ok(None);
        };
        for _ in 0..MAX_REDIRECTS {
            match self.doc_ref(id)? {
                Some(GraphDoc::Live(graph)) => return Ok(Some((graph.created, graph.id))),
                Some(GraphDoc::Redirect { to, .. }) => id = *to,
                None => {
                    return Err(Error::Corrupt {
                        what: "graph",
                        reason: format!("identity {identity} points at missing graph {id}"),
                    })
                }
            }
        }
        Err(Error::Corrupt {
            what: "graph",
            reason: "redirect chain too long".into(),
        })
    }

    /// The id of the live graph `identity` belongs to, as the transaction sees it.
    pub fn graph_id_of(&mut self, identity: &IdentityKey) -> Result<Option<u64>> {
        Ok(self.live_graph(identity)?.map(|(_, id)| id))
    }

    fn load(&mut self, id: u64) -> Result<()> {
        let original = self
            .store
            .get(Table::Graphs, &graph_key(&self.tenant, id))?;
        let current = match original.as_deref().map(decode::<StoredHead>).transpose()? {
            Some(head) => Some(match head.into_live() {
                Ok((graph, log)) => {
                    self.logs.insert(id, log);
                    GraphDoc::Live(graph)
                }
                Err((to, at)) => GraphDoc::Redirect { to, at },
            }),
            None => None,
        };
        // A graph that does not exist has no links (and a redirect's belong to the graph
        // that absorbed it): known whole without a read.
        if !matches!(current, Some(GraphDoc::Live(_))) {
            self.whole.insert(id, Vec::new());
        }
        self.graphs.insert(
            id,
            Slot {
                original,
                current,
                dirty: false,
                linked: false,
            },
        );
        Ok(())
    }

    /// Reads every link of live graph `id` into the overlay, once, under the links its
    /// records made in this transaction so far.
    fn ensure_whole(&mut self, id: u64) -> Result<()> {
        self.doc_ref(id)?;
        if self.whole.contains_key(&id) {
            return Ok(());
        }
        let log = self.logs.get(&id).cloned().unwrap_or_default();
        let (stored, keys) = links::read_whole(self.store, &self.tenant, id, &log)?;
        if let Some(Slot {
            current: Some(GraphDoc::Live(graph)),
            ..
        }) = self.graphs.get_mut(&id)
        {
            let made_here = std::mem::replace(&mut graph.links, stored);
            links::fold(&mut graph.links, made_here);
        }
        self.whole.insert(id, keys);
        Ok(())
    }

    fn set_doc(&mut self, id: u64, doc: GraphDoc) -> Result<()> {
        self.doc_ref(id)?;
        if let Some(slot) = self.graphs.get_mut(&id) {
            slot.current = Some(doc);
            slot.dirty = true;
        }
        Ok(())
    }

    fn clear_doc(&mut self, id: u64) -> Result<()> {
        self.doc_ref(id)?;
        if let Some(slot) = self.graphs.get_mut(&id) {
            slot.current = None;
            slot.dirty = true;
        }
        Ok(())
    }

    /// The live graph `identity` belongs to, as the transaction sees it (a copy; prefer
    /// [`GraphTxn::graph_id_of`] when the id is enough).
    pub fn graph_of(&mut self, identity: &IdentityKey) -> Result<Option<Graph>> {
        let Some((_, id)) = self.live_graph(identity)? else {
            return Ok(None);
        };
        self.ensure_whole(id)?;
        match self.doc_ref(id)? {
            Some(GraphDoc::Live(graph)) => Ok(Some(graph.clone())),
            _ => Err(Error::Corrupt {
                what: "graph",
                reason: format!("graph {id} is not live"),
            }),
        }
    }

    fn fresh_id(&mut self) -> Result<u64> {
        loop {
            let id = rand::thread_rng().next_u64().max(1);
            if self.doc_ref(id)?.is_none() {
                return Ok(id);
            }
        }
    }

    /// [`GraphTxn::link_from`] for a record of no batch.
    pub fn link(
        &mut self,
        identities: &[IdentityKey],
        at: i64,
        dataset: &str,
        xaction_id: &str,
    ) -> Result<Option<LinkOutcome>> {
        self.link_from(
            identities,
            at,
            &Source {
                dataset,
                batch: None,
                xaction_id,
            },
        )
    }

    /// Applies one record's identities, linking every pair of them: `identities[0]` is the
    /// record's primary identity (its part is the record's graph when a split follows).
    pub fn link_from(
        &mut self,
        identities: &[IdentityKey],
        at: i64,
        source: &Source<'_>,
    ) -> Result<Option<LinkOutcome>> {
        let Source {
            dataset,
            xaction_id,
            ..
        } = *source;
        let Some(primary) = identities.first().cloned() else {
            return Ok(None);
        };
        self.clock = self.clock.max(at);
        // A record naming two values of one unique namespace is refused by the graph (AEP:
        // "rejected from Identity Service"); the record itself is still stored.
        if self.rules.is_active() && unique_overflow(identities.iter(), &self.rules).is_some() {
            // The decision is kept in the history of every graph the record would have
            // touched, so "why did this record not link?" has an answer.
            let mut graphs = Vec::new();
            for identity in identities {
                if let Some((_, id)) = self.live_graph(identity)? {
                    if !graphs.contains(&id) {
                        graphs.push(id);
                    }
                }
            }
            tracing::info!(
                graphs = ?graphs,
                xaction_id,
                "record names two values of a unique namespace; its identities were not linked"
            );
            for id in graphs {
                self.history.push((
                    id,
                    HistoryEntry {
                        at,
                        event: "rejected-by-rules".into(),
                        graphs: Vec::new(),
                        identities: identities.to_vec(),
                        xaction_id: Some(xaction_id.to_owned()),
                    },
                ));
            }
            return Ok(None);
        }
        // (created, id) of each graph the record touches; the documents stay in the overlay
        // until the survivor and the absorbed are taken out below (no copies).
        let mut involved: Vec<(i64, u64)> = Vec::new();
        for identity in identities {
            if let Some(found) = self.live_graph(identity)? {
                if !involved.contains(&found) {
                    involved.push(found);
                }
            }
        }
        // The oldest graph survives a merge (ties: lowest id), so ids held by readers stay
        // valid for the largest, longest-lived part.
        involved.sort_unstable();
        // A record of one identity already in a graph only marks it seen: no link is made
        // or confirmed, no member joins (so none is evicted), nothing merges. Everything
        // else works on the links.
        let mut touches_links =
            identities.len() > 1 || involved.len() > 1 || self.rules.is_active();
        if let (false, [only], [(_, id)]) = (touches_links, identities, involved.as_slice()) {
            // A pointer to a graph that does not list the identity would make it join
            // (and maybe evict): then the links are needed after all. So they are for a
            // graph over a limit lowered since it grew: evicting from it splits it by its
            // links, which must all be there.
            let max = self.config.max_identities;
            touches_links = !matches!(self.doc_ref(*id)?,
                Some(GraphDoc::Live(g)) if g.contains(only) && g.members.len() <= max);
        }
        if touches_links && self.needs_whole_links(&involved, identities) {
            for &(_, id) in &involved {
                self.ensure_whole(id)?;
            }
        }
        let created = involved.is_empty();
        let mut absorbed = Vec::new();
        // Identities whose stored pointer may be wrong after this record: only those are
        // rewritten (members that stay in the surviving graph already point at it).
        let mut moved: BTreeSet<IdentityKey> = identities.iter().cloned().collect();
        // The graph each member of an absorbed graph came from (for ids of split-off parts).
        let mut origin: HashMap<IdentityKey, u64> = HashMap::new();
        let mut graph = match involved.first() {
            Some(&(_, oldest)) => self.take_live(oldest)?,
            None => Graph {
                id: self.fresh_id()?,
                created: at,
                updated: at,
                members: Vec::new(),
                links: Vec::new(),
            },
        };
        for &(_, other_id) in involved.iter().skip(1) {
            let other = self.take_live(other_id)?;
            for member in other.members {
                moved.insert(member.identity.clone());
                origin.insert(member.identity.clone(), other_id);
                if !graph.contains(&member.identity) {
                    graph.members.push(member);
                }
            }
            links::fold(&mut graph.links, other.links);
            match self.whole.remove(&other_id) {
                // Its links were read whole: they are now the survivor's (in full, or in its
                // log row), and its rows go.
                Some(rows) => match self.whole.get_mut(&graph.id) {
                    Some(survivor_rows) => survivor_rows.extend(rows),
                    None => self.obsolete.extend(rows),
                },
                // Unread: its stored pieces become the survivor's, where they lie.
                None => {
                    let log = self.logs.remove(&other_id).unwrap_or_default();
                    self.logs
                        .entry(graph.id)
                        .or_default()
                        .inherit(other_id, log);
                }
            }
            absorbed.push(other_id);
        }
        let (mut added, mut added_only_new) = (false, true);
        // Identities that joined with this record (neither the survivor's nor an absorbed
        // graph's before): they have no say in which part keeps which id.
        let mut joined: Vec<&IdentityKey> = Vec::new();
        for identity in identities {
            match graph.members.iter_mut().find(|m| &m.identity == identity) {
                Some(member) => {
                    member.last_seen = member.last_seen.max(at);
                    member.first_seen = member.first_seen.min(at);
                    remember_recent(&mut member.datasets, dataset, MAX_MEMBER_DATASETS);
                    if let Some(batch) = source.batch {
                        remember_recent(&mut member.batches, batch, MAX_BATCHES);
                    }
                }
                None => {
                    // Seen for the first time: no pointer was stored and no earlier record
                    // of the transaction linked it.
                    added = true;
                    joined.push(identity);
                    added_only_new &= self
                        .identities
                        .get(identity)
                        .is_some_and(|slot| !slot.linked && slot.original.is_none());
                    graph.members.push(Member {
                        identity: identity.clone(),
                        first_seen: at,
                        last_seen: at,
                        datasets: vec![dataset.to_owned()],
                        batches: source.batch.map(str::to_owned).into_iter().collect(),
                    });
                }
            }
        }
        for identity in identities {
            if let Some(slot) = self.identities.get_mut(identity) {
                slot.linked = true;
            }
        }
        // A record links every pair of its identities.
        for (index, x) in identities.iter().enumerate() {
            for y in identities.iter().skip(index + 1) {
                if x == y {
                    continue;
                }
                links::absorb(&mut graph.links, links::made(x, y, at, source));
            }
        }
        graph.updated = at;
        let mut removed_by_rules = Vec::new();
        if self.rules.is_active() && unique_overflow(graph.identities(), &self.rules).is_some() {
            let (kept, removed) = replay(&graph, identities, &self.rules);
            graph.links = kept;
            removed_by_rules = removed;
        }
        let evicted = self.enforce_limit(&mut graph, identities);
        let mut split_off = Vec::new();
        // Links only disappear through eviction or the rules, so only they can disconnect.
        // Whether the record's part changed ids (it always keeps the survivor's otherwise).
        let mut renamed = false;
        // The graph that split, when its id lives on in a part other than the record's: its
        // history tells what it lost.
        let mut split_home = None;
        if !evicted.is_empty() || !removed_by_rules.is_empty() {
            let parts = components(&graph);
            // Each id the record met goes to the part holding most of the members that
            // graph had before (the survivor's first, being the oldest), so people pushed
            // apart keep the ids readers know them by: a person whose shared device moved
            // to someone else stays under their own id rather than handing it over with
            // the device. Members that outlast others in a full graph (people's ids over
            // devices and cookies) count first; then all of them; then the record's part.
            // Parts no id goes to get fresh ones.
            let former = |identity: &IdentityKey| match origin.get(identity) {
                Some(id) => Some(*id),
                None if joined.contains(&identity) => None,
                None => Some(graph.id),
            };
            // Oldest first; graphs of one age by their least member, not by id: ids are
            // random, and the outcome must not depend on them.
            let mut candidates: Vec<(i64, Option<&IdentityKey>, u64)> = involved
                .iter()
                .map(|&(created, id)| {
                    let least = graph.identities().filter(|m| former(m) == Some(id)).min();
                    (created, least, id)
                })
                .collect();
            candidates.sort_unstable();
            // Per part: the id it takes and that graph's creation time.
            let mut ids: Vec<Option<(u64, i64)>> = vec![None; parts.len()];
            for (created, _, candidate) in candidates {
                let heir = parts
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| ids.get(*index).is_some_and(Option::is_none))
                    .map(|(index, part)| {
                        // Former members by eviction rank, the most lasting first.
                        let mut lasting = [0_usize; 3];
                        let mut votes = 0_usize;
                        for member in part.iter().filter(|m| former(m) == Some(candidate)) {
                            votes += 1;
                            let rank = (self.eviction_rank)(&member.namespace).min(2);
                            if let Some(count) = lasting.get_mut(usize::from(2 - rank)) {
                                *count += 1;
                            }
                        }
                        let record = part.contains(&primary);
                        // Last, the part with the least identity: parts come in an order
                        // that depends on how the links were read.
                        (
                            lasting,
                            votes,
                            record,
                            std::cmp::Reverse(part.first()),
                            index,
                        )
                    })
                    .filter(|(_, votes, _, _, _)| *votes > 0)
                    .max();
                if let Some((_, _, _, _, index)) = heir {
                    if let Some(slot) = ids.get_mut(index) {
                        *slot = Some((candidate, created));
                    }
                }
            }
            let survivor_id = graph.id;
            let mut record_part = None;
            for (part, taken) in parts.into_iter().zip(ids) {
                let (id, created) = match taken {
                    Some((id, created)) if id == survivor_id => (id, created),
                    Some((id, created)) => {
                        absorbed.retain(|a| *a != id);
                        // Its old rows are the survivor's to replace; the piece is stored
                        // whole under its id again.
                        self.whole.insert(id, Vec::new());
                        (id, created)
                    }
                    None => (self.fresh_id()?, at),
                };
                if part.contains(&primary) {
                    record_part = Some((part, id, created));
                    continue;
                }
                let piece = carve(&graph, &part, id, created, at);
                for identity in piece.identities() {
                    self.set_pointer(identity, Some(id))?;
                }
                self.set_doc(id, GraphDoc::Live(piece))?;
                split_off.push(id);
            }
            let (members, id, created) = record_part.ok_or_else(|| Error::Corrupt {
                what: "graph",
                reason: "the record's primary identity is in no part".into(),
            })?;
            graph = carve(&graph, &members, id, created, at);
            if id != survivor_id {
                renamed = true;
                // Nothing of the old survivor stays live under its id unless a part took
                // it: then that part's document replaces it; otherwise it redirects.
                if split_off.contains(&survivor_id) {
                    split_home = Some(survivor_id);
                } else {
                    absorbed.push(survivor_id);
                }
            }
        }
        for identity in &evicted {
            self.set_pointer(identity, None)?;
        }
        for identity in graph
            .identities()
            .filter(|i| renamed || moved.contains(*i))
            .cloned()
            .collect::<Vec<_>>()
        {
            self.set_pointer(&identity, Some(graph.id))?;
        }
        for id in &absorbed {
            self.set_doc(*id, GraphDoc::Redirect { to: graph.id, at })?;
        }
        let id = graph.id;
        self.set_doc(id, GraphDoc::Live(graph))?;
        let note = |event: &str, graphs: Vec<u64>, identities: Vec<IdentityKey>| HistoryEntry {
            at,
            event: event.to_owned(),
            graphs,
            identities,
            xaction_id: Some(xaction_id.to_owned()),
        };
        if created {
            self.history
                .push((id, note("created", Vec::new(), identities.to_vec())));
        }
        if !absorbed.is_empty() {
            self.history
                .push((id, note("merged", absorbed.clone(), Vec::new())));
        }
        let home = split_home.unwrap_or(id);
        // The parts besides the one that kept the split graph's id.
        let others: Vec<u64> = split_off
            .iter()
            .copied()
            .chain(std::iter::once(id))
            .filter(|part| *part != home)
            .collect();
        if renamed && !involved.iter().any(|(_, graph)| *graph == id) {
            // The record's part is a new graph, born of the split.
            self.history
                .push((id, note("created", vec![home], Vec::new())));
        }
        if !evicted.is_empty() {
            self.history
                .push((home, note("evicted", Vec::new(), evicted.clone())));
        }
        if !removed_by_rules.is_empty() {
            let ends = removed_by_rules
                .iter()
                .flat_map(|l| [l.a.clone(), l.b.clone()])
                .collect();
            self.history
                .push((home, note("links-removed-by-rules", others.clone(), ends)));
        }
        if !others.is_empty() {
            self.history.push((home, note("split", others, Vec::new())));
        }
        let grew_by_new_identities = added
            && added_only_new
            && absorbed.is_empty()
            && evicted.is_empty()
            && split_off.is_empty();
        let clean_merge =
            !absorbed.is_empty() && added_only_new && evicted.is_empty() && split_off.is_empty();
        Ok(Some(LinkOutcome {
            graph: id,
            absorbed,
            evicted,
            split_off,
            created,
            grew_by_new_identities,
            clean_merge,
        }))
    }

    /// Removes `identity` from its graph (with its links); the rest splits into the parts
    /// that remain connected. Returns the graphs that exist afterwards, or `None` when the
    /// identity belongs to no graph.
    pub fn unlink_identity(&mut self, identity: &IdentityKey, at: i64) -> Result<Option<Vec<u64>>> {
        self.clock = self.clock.max(at);
        let Some(mut graph) = self.graph_of(identity)? else {
            return Ok(None);
        };
        graph.members.retain(|m| &m.identity != identity);
        graph.links.retain(|l| !l.touches(identity));
        self.set_pointer(identity, None)?;
        let id = graph.id;
        self.history.push((
            id,
            HistoryEntry {
                at,
                event: "unlinked-identity".into(),
                graphs: Vec::new(),
                identities: vec![identity.clone()],
                xaction_id: None,
            },
        ));
        self.settle(graph, at).map(Some)
    }

    /// Erases the whole graph of `identity`: every member's pointer, the graph, its links and
    /// its history, and the members' cluster histories (a data subject's deletion leaves no
    /// identity value behind in the graph tables). Returns the erased graph's id and members,
    /// or `None` when the identity belongs to no graph.
    pub fn erase_graph(
        &mut self,
        identity: &IdentityKey,
    ) -> Result<Option<(u64, Vec<IdentityKey>)>> {
        let Some(graph) = self.graph_of(identity)? else {
            return Ok(None);
        };
        let members: Vec<IdentityKey> = graph.identities().cloned().collect();
        for member in &members {
            self.set_pointer(member, None)?;
            self.erased_logs.push((
                Table::Identities,
                pointer::spilled_moves_prefix(&self.tenant, member),
            ));
            self.erased.insert(member.clone());
        }
        self.reshaped.insert(graph.id);
        // The graphs it absorbed left their history logs, which name the identities they
        // were created with: those go too, found through the `merged` entries.
        let mut logs = vec![graph.id];
        let mut next = 0;
        while let Some(&id) = logs.get(next) {
            next += 1;
            let stored = history(self.store, &self.tenant, id)?;
            let unstored = self
                .history
                .iter()
                .filter(|(graph, _)| *graph == id)
                .map(|(_, entry)| entry);
            for entry in stored.iter().chain(unstored) {
                if entry.event == "merged" {
                    for absorbed in &entry.graphs {
                        if !logs.contains(absorbed) {
                            logs.push(*absorbed);
                        }
                    }
                }
            }
        }
        for id in &logs {
            self.erased_logs
                .push((Table::Graphs, history_prefix(&self.tenant, *id)));
        }
        self.history.retain(|(id, _)| !logs.contains(id));
        if let Some(slot) = self.graphs.get_mut(&graph.id) {
            slot.current = None;
            slot.dirty = true;
        }
        Ok(Some((graph.id, members)))
    }

    /// Erases one identity: it leaves its graph (which splits if it held it together) and its
    /// cluster history goes. Returns the graphs that remain, or `None` when it had no graph.
    pub fn erase_identity(&mut self, identity: &IdentityKey, at: i64) -> Result<Option<Vec<u64>>> {
        let remaining = self.unlink_identity(identity, at)?;
        if remaining.is_some() {
            self.erased_logs.push((
                Table::Identities,
                pointer::spilled_moves_prefix(&self.tenant, identity),
            ));
            self.erased.insert(identity.clone());
            // The graph's history records that an identity left, not which one.
            for (_, entry) in &mut self.history {
                if entry.event == "unlinked-identity" && entry.identities.contains(identity) {
                    entry.event = "erased-identity".into();
                    entry.identities.clear();
                }
            }
        }
        Ok(remaining)
    }

    /// Removes the link between `a` and `b`; if nothing else connects them the graph splits.
    /// Returns the graphs that exist afterwards, or `None` when no such link exists.
    pub fn unlink(
        &mut self,
        a: &IdentityKey,
        b: &IdentityKey,
        at: i64,
    ) -> Result<Option<Vec<u64>>> {
        let Some(mut graph) = self.graph_of(a)? else {
            return Ok(None);
        };
        let before = graph.links.len();
        graph.links.retain(|l| !l.joins(a, b));
        if graph.links.len() == before {
            return Ok(None);
        }
        self.history.push((
            graph.id,
            HistoryEntry {
                at,
                event: "unlinked-link".into(),
                graphs: Vec::new(),
                identities: vec![a.clone(), b.clone()],
                xaction_id: None,
            },
        ));
        self.settle(graph, at).map(Some)
    }

    /// Stores a graph that lost members or links: the part holding its oldest member keeps
    /// the id, every other connected part becomes a new graph.
    fn settle(&mut self, graph: Graph, at: i64) -> Result<Vec<u64>> {
        let parts = components(&graph);
        let oldest = graph
            .members
            .iter()
            .min_by_key(|m| (m.first_seen, m.identity.clone()))
            .map(|m| m.identity.clone());
        let mut ids = vec![graph.id];
        let mut split_off = Vec::new();
        for part in &parts {
            if oldest.as_ref().is_some_and(|o| part.contains(o)) {
                continue;
            }
            let id = self.fresh_id()?;
            let piece = carve(&graph, part, id, at, at);
            for identity in piece.identities() {
                self.set_pointer(identity, Some(id))?;
            }
            self.set_doc(id, GraphDoc::Live(piece))?;
            self.history.push((
                id,
                HistoryEntry {
                    at,
                    event: "created".into(),
                    graphs: vec![graph.id],
                    identities: Vec::new(),
                    xaction_id: None,
                },
            ));
            split_off.push(id);
            ids.push(id);
        }
        let kept: BTreeSet<IdentityKey> = parts
            .into_iter()
            .find(|part| oldest.as_ref().is_some_and(|o| part.contains(o)))
            .unwrap_or_default();
        let remaining = carve(&graph, &kept, graph.id, graph.created, at);
        if !split_off.is_empty() {
            self.history.push((
                graph.id,
                HistoryEntry {
                    at,
                    event: "split".into(),
                    graphs: split_off,
                    identities: Vec::new(),
                    xaction_id: None,
                },
            ));
        }
        if remaining.members.is_empty() {
            ids.retain(|id| *id != graph.id);
            match ids.first() {
                Some(&to) => self.set_doc(graph.id, GraphDoc::Redirect { to, at })?,
                None => self.clear_doc(graph.id)?,
            }
        } else {
            self.set_doc(graph.id, GraphDoc::Live(remaining))?;
        }
        Ok(ids)
    }

    /// Removes members beyond the limit: never the current record's identities; lowest
    /// namespace rank first, then least recently seen, then oldest.
    fn enforce_limit(&self, graph: &mut Graph, current: &[IdentityKey]) -> Vec<IdentityKey> {
        let mut evicted = Vec::new();
        while graph.members.len() > self.config.max_identities {
            let candidate = graph
                .members
                .iter()
                .filter(|m| !current.contains(&m.identity))
                .min_by_key(|m| {
                    (
                        (self.eviction_rank)(&m.identity.namespace),
                        m.last_seen,
                        m.first_seen,
                        m.identity.clone(),
                    )
                })
                .map(|m| m.identity.clone());
            let Some(victim) = candidate else { break };
            graph.members.retain(|m| m.identity != victim);
            graph.links.retain(|l| !l.touches(&victim));
            evicted.push(victim);
        }
        evicted
    }

    /// Whether a record must read its graphs' links whole: only the graph limit and the
    /// linking rules need every link (to choose what to remove and find the parts left), a
    /// graph past [`links::COMPACT_AFTER_ROWS`] is due a rewrite, and a graph read whole
    /// already cannot absorb one whose links stayed unread. Decided from the members alone.
    fn needs_whole_links(&self, involved: &[(i64, u64)], identities: &[IdentityKey]) -> bool {
        if self.links_always_whole {
            return true;
        }
        let live = |id: &u64| match self.graphs.get(id) {
            Some(Slot {
                current: Some(GraphDoc::Live(graph)),
                ..
            }) => Some(graph),
            _ => None,
        };
        let mut at_most = identities.len();
        for (_, id) in involved {
            if self.whole.contains_key(id)
                || self.logs.get(id).is_some_and(LinkLog::wants_compaction)
            {
                return true;
            }
            at_most += live(id).map_or(0, |graph| graph.members.len());
        }
        // Most records: no rules, and even counting shared identities twice the graph stays
        // within its limit.
        if !self.rules.is_active() && at_most <= self.config.max_identities {
            return false;
        }
        let mut members: Vec<&IdentityKey> = identities.iter().collect();
        for (_, id) in involved {
            members.extend(live(id).into_iter().flat_map(Graph::identities));
        }
        members.sort_unstable();
        members.dedup();
        members.len() > self.config.max_identities
            || (self.rules.is_active()
                && unique_overflow(members.into_iter(), &self.rules).is_some())
    }

    /// Members of graph `id` as the transaction has it now (empty when it is not live).
    pub fn members_of(&mut self, id: u64) -> Result<Vec<IdentityKey>> {
        Ok(match self.doc_ref(id)? {
            Some(GraphDoc::Live(graph)) => graph.identities().cloned().collect(),
            _ => Vec::new(),
        })
    }

    /// Graphs whose membership this transaction changes so far (including graphs absorbed,
    /// split off or emptied).
    pub fn reshaped(&self) -> &BTreeSet<u64> {
        &self.reshaped
    }

    /// Emits every change into `batch`, with preconditions on everything read.
    pub fn finish(mut self, batch: &mut WriteBatch) -> Result<()> {
        for (table, prefix) in &self.erased_logs {
            // Logs are short (one entry per graph change); erasure is rare.
            for row in self.store.scan(
                *table,
                &tessera_store::ScanRange::prefix(prefix.clone()),
                tessera_store::Direction::Forward,
                usize::MAX,
            )? {
                batch.delete(*table, &Key::from_stored(row.key));
            }
        }
        let dirty_graphs = self.graphs.values().filter(|slot| slot.dirty).count();
        batch.reserve(
            self.history.len()
                + self.identities.values().filter(|slot| slot.dirty).count()
                + 2 * dirty_graphs,
            self.identities.len() + 2 * self.graphs.len(),
        );
        // Keyed by time, then this transaction's nonce and the entry's place in it, rather
        // than appended: an append needs the log's last sequence number, a reverse scan per
        // new graph that cost more than the rest of its commit.
        let nonce = rand::thread_rng().next_u64();
        for (place, (graph, entry)) in (0_u64..).zip(&self.history) {
            let bytes = serde_json::to_vec(entry).map_err(|e| Error::Corrupt {
                what: "graph history",
                reason: e.to_string(),
            })?;
            let key = Key::extend(&history_prefix(&self.tenant, *graph))
                .i64(entry.at)
                .u64(nonce)
                .u64(place)
                .finish();
            batch.put(Table::Graphs, &key, bytes);
        }
        for (identity, slot) in self.identities {
            let key = identity_key(&self.tenant, &identity);
            batch.expect_read_at(Table::Identities, &key, slot.original.clone(), self.read_at);
            if !slot.dirty {
                continue;
            }
            if self.erased.contains(&identity) {
                batch.delete(Table::Identities, &key);
                continue;
            }
            let mut stored = slot
                .original
                .as_deref()
                .map(pointer::decode)
                .transpose()?
                .unwrap_or_default();
            if let Some(graph) = slot.current.filter(|g| Some(*g) != stored.graph) {
                stored.moves.push(ClusterMove {
                    cluster: graph,
                    at: self.clock,
                });
            }
            stored.graph = slot.current;
            let spill = stored.moves.len().saturating_sub(pointer::MAX_MOVES);
            for step in stored.moves.drain(..spill) {
                let bytes = serde_json::to_vec(&step).map_err(|e| Error::Corrupt {
                    what: "cluster history",
                    reason: e.to_string(),
                })?;
                batch.put(
                    Table::Identities,
                    &pointer::spilled_move_key(&self.tenant, &identity, &step),
                    bytes,
                );
            }
            if stored.graph.is_none() && stored.moves.is_empty() {
                batch.delete(Table::Identities, &key);
            } else {
                batch.put(Table::Identities, &key, pointer::encode(&stored));
            }
        }
        // Links rows by key: a row replaced is deleted unless something is written under its
        // key again (a base document rewritten in place).
        let mut link_rows: BTreeMap<Key, Option<Vec<u8>>> = BTreeMap::new();
        for row in std::mem::take(&mut self.obsolete) {
            link_rows.entry(row).or_insert(None);
        }
        for (id, slot) in self.graphs {
            let key = graph_key(&self.tenant, id);
            let Slot {
                original,
                current,
                dirty,
                ..
            } = slot;
            batch.expect_read_at(Table::Graphs, &key, original, self.read_at);
            if !dirty {
                continue;
            }
            let whole = self.whole.remove(&id);
            for row in whole.iter().flatten() {
                link_rows.entry(row.clone()).or_insert(None);
            }
            match &current {
                Some(GraphDoc::Live(graph)) => {
                    let log = match whole {
                        Some(_) => {
                            if !graph.links.is_empty() {
                                let bytes = encode(&graph.links)?;
                                link_rows.insert(links::base_key(&self.tenant, id), Some(bytes));
                            }
                            LinkLog::default()
                        }
                        // What this transaction's records made or confirmed, beside the
                        // unread rest (a record of one identity makes nothing).
                        None => {
                            let mut log = self.logs.remove(&id).unwrap_or_default();
                            if let Some(at) = graph.links.iter().map(|l| l.first_seen).min() {
                                let row = links::log_key(&self.tenant, id, at, nonce);
                                link_rows.insert(row, Some(encode(&graph.links)?));
                                log.rows = log.rows.saturating_add(1);
                            }
                            log
                        }
                    };
                    batch.put(
                        Table::Graphs,
                        &key,
                        encode(&StoredHeadRef::live(graph, &log))?,
                    );
                }
                Some(GraphDoc::Redirect { to, at }) => {
                    let head = StoredHeadRef::Redirect { to: *to, at: *at };
                    batch.put(Table::Graphs, &key, encode(&head)?);
                }
                None => {
                    batch.delete(Table::Graphs, &key);
                }
            }
        }
        for (key, value) in link_rows {
            match value {
                Some(bytes) => {
                    batch.put(Table::Graphs, &key, bytes);
                }
                None => {
                    batch.delete(Table::Graphs, &key);
                }
            }
        }
        Ok(())
    }
}

/// Connected components of a graph's members over its links.
pub fn components(graph: &Graph) -> Vec<BTreeSet<IdentityKey>> {
    let index: HashMap<&IdentityKey, usize> = graph
        .identities()
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    let mut parent: Vec<usize> = (0..graph.members.len()).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while let Some(&p) = parent.get(x) {
            if p == x {
                break;
            }
            let grand = parent.get(p).copied().unwrap_or(p);
            if let Some(slot) = parent.get_mut(x) {
                *slot = grand;
            }
            x = p;
        }
        x
    }
    for link in &graph.links {
        if let (Some(&a), Some(&b)) = (index.get(&link.a), index.get(&link.b)) {
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            if ra != rb {
                if let Some(slot) = parent.get_mut(ra) {
                    *slot = rb;
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, BTreeSet<IdentityKey>> = BTreeMap::new();
    for (i, member) in graph.members.iter().enumerate() {
        let root = find(&mut parent, i);
        groups
            .entry(root)
            .or_default()
            .insert(member.identity.clone());
    }
    groups.into_values().collect()
}

/// The part of `graph` made of `members`, as graph `id` created at `created`.
fn carve(graph: &Graph, members: &BTreeSet<IdentityKey>, id: u64, created: i64, at: i64) -> Graph {
    Graph {
        id,
        created,
        updated: at,
        members: graph
            .members
            .iter()
            .filter(|m| members.contains(&m.identity))
            .cloned()
            .collect(),
        links: graph
            .links
            .iter()
            .filter(|l| members.contains(&l.a) && members.contains(&l.b))
            .cloned()
            .collect(),
    }
}

/// The first unique namespace with two or more identities among `identities`, if any.
fn unique_overflow<'i>(
    identities: impl Iterator<Item = &'i IdentityKey>,
    rules: &LinkingRules,
) -> Option<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for identity in identities {
        if rules.is_unique(&identity.namespace) {
            let count = seen
                .entry(identity.namespace.to_ascii_lowercase())
                .or_default();
            *count += 1;
            if *count >= 2 {
                return Some(identity.namespace.clone());
            }
        }
    }
    None
}

/// Rebuilds a graph's links under the unique-namespace rule: the incoming record's links
/// first, then the rest by the sum of their ends' priorities (lower first), newest first;
/// a link that would put two identities of a unique namespace into one component is
/// removed. Returns the kept and the removed links.
fn replay(graph: &Graph, record: &[IdentityKey], rules: &LinkingRules) -> (Vec<Link>, Vec<Link>) {
    let in_record = |l: &Link| record.contains(&l.a) && record.contains(&l.b);
    let mut order: Vec<&Link> = graph.links.iter().collect();
    order.sort_by_key(|l| {
        (
            !in_record(l),
            rules.priority(&l.a.namespace) + rules.priority(&l.b.namespace),
            std::cmp::Reverse(l.last_seen),
            l.a.clone(),
            l.b.clone(),
        )
    });
    let index: HashMap<&IdentityKey, usize> = graph
        .identities()
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    let mut parent: Vec<usize> = (0..graph.members.len()).collect();
    // Unique-namespace identities per component root.
    let mut unique: Vec<BTreeSet<String>> = graph
        .members
        .iter()
        .map(|m| {
            let mut set = BTreeSet::new();
            if rules.is_unique(&m.identity.namespace) {
                set.insert(m.identity.namespace.to_ascii_lowercase());
            }
            set
        })
        .collect();
    fn root(parent: &[usize], mut x: usize) -> usize {
        while let Some(&p) = parent.get(x) {
            if p == x {
                break;
            }
            x = p;
        }
        x
    }
    let (mut kept, mut removed) = (Vec::new(), Vec::new());
    for link in order {
        let (Some(&a), Some(&b)) = (index.get(&link.a), index.get(&link.b)) else {
            continue;
        };
        let (ra, rb) = (root(&parent, a), root(&parent, b));
        if ra == rb {
            kept.push(link.clone());
            continue;
        }
        let (ua, ub) = (
            unique.get(ra).cloned().unwrap_or_default(),
            unique.get(rb).cloned().unwrap_or_default(),
        );
        if ua.intersection(&ub).next().is_some() {
            removed.push(link.clone());
            continue;
        }
        if let Some(slot) = parent.get_mut(ra) {
            *slot = rb;
        }
        if let Some(target) = unique.get_mut(rb) {
            target.extend(ua);
        }
        kept.push(link.clone());
    }
    (kept, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(batches: Vec<String>) -> StoredHead {
        StoredHead::Live {
            id: 7,
            created: 1_700_000_000_000,
            updated: 1_700_000_100_000,
            members: vec![Member {
                identity: IdentityKey::new("Email", "a@example.com"),
                first_seen: 1_700_000_000_000,
                last_seen: 1_700_000_100_000,
                datasets: vec!["crm".into()],
                batches,
            }],
        }
    }

    fn legacy_head() -> legacy::StoredHead {
        legacy::StoredHead::Live {
            id: 7,
            created: 1_700_000_000_000,
            updated: 1_700_000_100_000,
            members: vec![legacy::Member {
                identity: IdentityKey::new("Email", "a@example.com"),
                first_seen: 1_700_000_000_000,
                last_seen: 1_700_000_100_000,
                datasets: vec!["crm".into()],
            }],
        }
    }

    #[test]
    fn documents_written_before_batches_and_varints_still_read() {
        use bincode::Options as _;
        let mut fixint = vec![GRAPH_FORMAT_FIXINT];
        fixint.extend(bincode::serialize(&legacy_head()).expect("serialize"));
        assert_eq!(
            decode::<StoredHead>(&fixint).expect("decode v1"),
            head(Vec::new())
        );
        let mut varint = vec![GRAPH_FORMAT_VARINT];
        varint.extend(
            varint_options()
                .serialize(&legacy_head())
                .expect("serialize"),
        );
        assert!(varint.len() < fixint.len());
        assert_eq!(
            decode::<StoredHead>(&varint).expect("decode v2"),
            head(Vec::new())
        );
        let old_link = legacy::Link {
            a: IdentityKey::new("Email", "a@example.com"),
            b: IdentityKey::new("ECID", "1"),
            first_seen: 1,
            last_seen: 2,
            xaction_id: "x".into(),
            dataset: "web".into(),
            datasets: vec!["web".into()],
        };
        let mut links = vec![GRAPH_FORMAT_VARINT];
        links.extend(
            varint_options()
                .serialize(&vec![old_link.clone()])
                .expect("serialize"),
        );
        assert_eq!(
            decode::<Vec<Link>>(&links).expect("decode v2 links"),
            vec![Link::from(old_link)]
        );

        let current = head(vec!["batch-1".into()]);
        let bytes = encode(&current).expect("encode");
        assert_eq!(bytes.first(), Some(&GRAPH_FORMAT_BATCHES));
        assert_eq!(decode::<StoredHead>(&bytes).expect("decode v3"), current);
        assert!(decode::<StoredHead>(&[9, 0]).is_err());
        let members = match current {
            StoredHead::Live { members, .. } | StoredHead::Logged { members, .. } => members,
            StoredHead::Redirect { .. } => Vec::new(),
        };
        let borrowed = StoredHeadRef::Live {
            id: 7,
            created: 1_700_000_000_000,
            updated: 1_700_000_100_000,
            members: &members,
        };
        assert_eq!(encode(&borrowed).expect("encode borrowed"), bytes);
    }

    /// A fresh store and the tenant the tests write to.
    fn open_store() -> (tempfile::TempDir, tessera_store::EmbeddedStore, Tenant) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            tessera_store::EmbeddedStore::open(dir.path(), tessera_store::StoreOptions::default())
                .expect("open store");
        let tenant = Tenant::parse("ORG@AdobeOrg", "prod").expect("tenant");
        (dir, store, tenant)
    }

    /// Applies one record in its own transaction; returns the batch it committed.
    fn record(store: &dyn Store, tenant: &Tenant, ids: &[IdentityKey], at: i64) -> WriteBatch {
        let mut txn = GraphTxn::new(store, tenant.clone(), GraphConfig::default(), |_| 0);
        txn.link(ids, at, "web", &format!("x{at}")).expect("link");
        let mut batch = WriteBatch::new();
        txn.finish(&mut batch).expect("finish");
        store.commit(batch.clone()).expect("commit");
        batch
    }

    fn touches(batch: &WriteBatch, key: &Key) -> bool {
        let writes = batch.ops().iter().any(|op| match op {
            tessera_store::Op::Put { key: k, .. } | tessera_store::Op::Delete { key: k, .. } => {
                k == key
            }
            tessera_store::Op::Append { .. } => false,
        });
        writes || batch.checks().iter().any(|c| &c.key == key)
    }

    #[test]
    fn a_record_of_one_known_identity_leaves_the_links_alone() {
        let (_dir, store, tenant) = open_store();
        let (a, b) = (
            IdentityKey::new("Email", "a@x.com"),
            IdentityKey::new("ECID", "1"),
        );
        record(&store, &tenant, &[a.clone(), b.clone()], 10);
        let id = graph_id(&store, &tenant, &a).expect("read").expect("graph");
        let batch = record(&store, &tenant, std::slice::from_ref(&a), 20);
        assert!(
            !touches(&batch, &links::base_key(&tenant, id)),
            "links neither read nor written"
        );
        assert!(
            touches(&batch, &graph_key(&tenant, id)),
            "the head records the visit"
        );
        let graph = graph_by_id(&store, &tenant, id)
            .expect("read")
            .expect("graph");
        let member = graph
            .members
            .iter()
            .find(|m| m.identity == a)
            .expect("member");
        assert_eq!(member.last_seen, 20);
        assert_eq!(graph.links.len(), 1);
        assert_eq!(graph.links.first().map(|l| l.last_seen), Some(10));
        // The next linking record still sees and confirms the stored link.
        record(&store, &tenant, &[b.clone(), a.clone()], 30);
        let graph = graph_by_id(&store, &tenant, id)
            .expect("read")
            .expect("graph");
        assert_eq!(graph.links.len(), 1);
        assert_eq!(graph.links.first().map(|l| l.last_seen), Some(30));
    }

    #[test]
    fn a_graph_of_one_identity_stores_no_links_row() {
        let (_dir, store, tenant) = open_store();
        let (a, b) = (
            IdentityKey::new("ECID", "1"),
            IdentityKey::new("Email", "b@x.com"),
        );
        record(&store, &tenant, std::slice::from_ref(&a), 10);
        let id = graph_id(&store, &tenant, &a).expect("read").expect("graph");
        let links = links::base_key(&tenant, id);
        assert_eq!(store.get(Table::Graphs, &links).expect("read"), None);
        let graph = graph_by_id(&store, &tenant, id)
            .expect("read")
            .expect("graph");
        assert!(graph.links.is_empty());
        // Linking it later adds a log row: the base document is neither read nor written.
        let batch = record(&store, &tenant, &[a.clone(), b.clone()], 20);
        assert!(!touches(&batch, &links));
        assert_eq!(log_rows(&store, &tenant, id), 1);
        let graph = graph_by_id(&store, &tenant, id)
            .expect("read")
            .expect("graph");
        assert_eq!(graph.links.len(), 1);
        assert!(graph.contains(&b));
    }

    fn log_rows(store: &dyn Store, tenant: &Tenant, id: u64) -> usize {
        store
            .scan(
                Table::Graphs,
                &tessera_store::ScanRange::prefix(links::log_prefix(tenant, id)),
                tessera_store::Direction::Forward,
                usize::MAX,
            )
            .expect("scan")
            .len()
    }

    fn stored_log(store: &dyn Store, tenant: &Tenant, id: u64) -> LinkLog {
        let bytes = store
            .get(Table::Graphs, &graph_key(tenant, id))
            .expect("read")
            .expect("head");
        let head = decode::<StoredHead>(&bytes).expect("decode");
        head.into_live().map(|(_, log)| log).expect("live")
    }

    fn email(n: u32) -> IdentityKey {
        IdentityKey::new("Email", format!("p{n}@x.com"))
    }

    #[test]
    fn a_merge_moves_no_links_and_the_survivor_reads_them_where_they_lie() {
        let (_dir, store, tenant) = open_store();
        let (a, b, c, d) = (email(1), email(2), email(3), email(4));
        record(&store, &tenant, &[a.clone(), b.clone()], 10);
        record(&store, &tenant, &[c.clone(), d.clone()], 20);
        let older = graph_id(&store, &tenant, &a).expect("read").expect("graph");
        let younger = graph_id(&store, &tenant, &c).expect("read").expect("graph");
        let batch = record(&store, &tenant, &[b.clone(), c.clone()], 30);
        for id in [older, younger] {
            assert!(
                !touches(&batch, &links::base_key(&tenant, id)),
                "graph {id}'s links neither read nor written by the merge"
            );
        }
        assert_eq!(log_rows(&store, &tenant, older), 1);
        assert_eq!(
            stored_log(&store, &tenant, older),
            LinkLog {
                inherited: vec![younger],
                rows: 2,
            }
        );
        let graph = graph_by_id(&store, &tenant, older)
            .expect("read")
            .expect("graph");
        let mut pairs: Vec<(i64, String)> = graph
            .links
            .iter()
            .map(|l| (l.first_seen, l.xaction_id.clone()))
            .collect();
        pairs.sort();
        assert_eq!(
            pairs,
            [(10, "x10".into()), (20, "x20".into()), (30, "x30".into())]
        );
        // Readers holding the absorbed id see the same graph, links and all.
        assert_eq!(
            graph_by_id(&store, &tenant, younger).expect("read"),
            Some(graph)
        );
    }

    #[test]
    fn pieces_past_the_limit_are_folded_into_one_document_by_the_next_linking_record() {
        let (_dir, store, tenant) = open_store();
        let (a, b) = (email(1), email(2));
        record(&store, &tenant, &[a.clone(), b.clone()], 0);
        let id = graph_id(&store, &tenant, &a).expect("read").expect("graph");
        let pieces = i64::from(links::COMPACT_AFTER_ROWS);
        for at in 1..=pieces {
            record(&store, &tenant, &[a.clone(), b.clone()], at);
        }
        assert_eq!(
            log_rows(&store, &tenant, id),
            links::COMPACT_AFTER_ROWS as usize
        );
        assert!(stored_log(&store, &tenant, id).wants_compaction());
        record(&store, &tenant, &[b.clone(), a.clone()], pieces + 1);
        assert_eq!(log_rows(&store, &tenant, id), 0);
        assert!(stored_log(&store, &tenant, id).is_empty());
        let graph = graph_by_id(&store, &tenant, id)
            .expect("read")
            .expect("graph");
        assert_eq!(graph.links.len(), 1);
        let link = graph.links.first().expect("link");
        assert_eq!((link.first_seen, link.last_seen), (0, pieces + 1));
        assert_eq!((&link.a, &link.b), (&a, &b));
    }

    #[test]
    fn erasing_a_graph_removes_every_piece_of_its_links() {
        let (_dir, store, tenant) = open_store();
        let (a, b, c, d) = (email(1), email(2), email(3), email(4));
        record(&store, &tenant, &[a.clone(), b.clone()], 10);
        record(&store, &tenant, &[c.clone(), d.clone()], 20);
        record(&store, &tenant, &[b.clone(), c.clone()], 30);
        record(&store, &tenant, &[d.clone(), a.clone()], 40);
        let id = graph_id(&store, &tenant, &a).expect("read").expect("graph");
        assert!(!stored_log(&store, &tenant, id).is_empty());
        let mut txn = GraphTxn::new(&store, tenant.clone(), GraphConfig::default(), |_| 0);
        txn.erase_graph(&a).expect("erase").expect("graph");
        let mut batch = WriteBatch::new();
        txn.finish(&mut batch).expect("finish");
        store.commit(batch).expect("commit");
        let rows = store
            .scan(
                Table::Graphs,
                &tessera_store::ScanRange::prefix(Key::scope_prefix(&Scope::Tenant(
                    tenant.clone(),
                ))),
                tessera_store::Direction::Forward,
                usize::MAX,
            )
            .expect("scan");
        let left: Vec<String> = rows
            .iter()
            .map(|row| String::from_utf8_lossy(&row.value).into_owned())
            .filter(|value| value.contains("@x.com"))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "no identity value left behind");
    }

    /// `(created, grew_by_new_identities, clean_merge)` of one record applied in `txn`.
    fn growth(txn: &mut GraphTxn<'_>, ids: &[IdentityKey], at: i64) -> (bool, bool, bool) {
        let outcome = txn
            .link(ids, at, "web", "x")
            .expect("link")
            .expect("linked");
        (
            outcome.created,
            outcome.grew_by_new_identities,
            outcome.clean_merge,
        )
    }

    fn commit(store: &dyn Store, txn: GraphTxn<'_>) {
        let mut batch = WriteBatch::new();
        txn.finish(&mut batch).expect("finish");
        store.commit(batch).expect("commit");
    }

    #[test]
    fn an_outcome_tells_whether_only_identities_never_seen_joined_the_graph() {
        let (_dir, store, tenant) = open_store();
        let new_txn = || GraphTxn::new(&store, tenant.clone(), GraphConfig::default(), |_| 0);
        let (a, b, c, d, e) = (email(1), email(2), email(3), email(4), email(5));
        let mut txn = new_txn();
        assert_eq!(
            growth(&mut txn, &[a.clone(), b.clone()], 1),
            (true, true, false)
        );
        // Seen earlier in the same transaction: not new any more.
        assert_eq!(
            growth(&mut txn, std::slice::from_ref(&c), 2),
            (true, true, false)
        );
        assert_eq!(
            growth(&mut txn, &[a.clone(), c.clone()], 3),
            (false, false, true),
            "a merge of two graphs, nothing else"
        );
        commit(&store, txn);
        let mut txn = new_txn();
        assert_eq!(
            growth(&mut txn, &[b.clone(), d.clone()], 4),
            (false, true, false)
        );
        assert_eq!(
            growth(&mut txn, std::slice::from_ref(&d), 5),
            (false, false, false),
            "nothing added"
        );
        // An identity that left its graph has a past, in this transaction or before.
        txn.unlink_identity(&d, 6).expect("unlink");
        assert_eq!(
            growth(&mut txn, &[d.clone(), e.clone()], 7),
            (true, false, false)
        );
        commit(&store, txn);
        let mut txn = new_txn();
        txn.unlink_identity(&e, 8).expect("unlink");
        commit(&store, txn);
        let mut txn = new_txn();
        assert_eq!(
            growth(&mut txn, std::slice::from_ref(&e), 9),
            (true, false, false)
        );
        // Merges that bring more than the merged graphs' members.
        let (f, g, h) = (email(6), email(7), email(8));
        assert_eq!(
            growth(&mut txn, std::slice::from_ref(&f), 10),
            (true, true, false)
        );
        assert_eq!(
            growth(&mut txn, &[a.clone(), f.clone(), g.clone()], 11),
            (false, false, true),
            "a merge and an identity never seen"
        );
        assert_eq!(
            growth(&mut txn, std::slice::from_ref(&h), 12),
            (true, true, false)
        );
        txn.unlink_identity(&e, 13).expect("unlink");
        assert_eq!(
            growth(&mut txn, &[a.clone(), h.clone(), e.clone()], 14),
            (false, false, false),
            "a merge and an identity with a past (e left its graph)"
        );
        commit(&store, txn);
        // A merge that evicts is not clean.
        let small = GraphConfig { max_identities: 3 };
        let mut txn = GraphTxn::new(&store, tenant.clone(), small, |_| 0);
        let (i, j, k, l) = (email(9), email(10), email(11), email(12));
        assert_eq!(
            growth(&mut txn, &[i.clone(), j.clone()], 15),
            (true, true, false)
        );
        assert_eq!(
            growth(&mut txn, &[k.clone(), l.clone()], 16),
            (true, true, false)
        );
        assert_eq!(
            growth(&mut txn, &[j.clone(), k.clone()], 17),
            (false, false, false),
            "four identities in a graph of at most three"
        );
    }

    #[test]
    fn a_lowered_limit_evicts_from_a_graph_read_whole_even_for_a_record_of_one_identity() {
        let (_dir, store, tenant) = open_store();
        let [a, b, c] = ["a", "b", "c"].map(|v| IdentityKey::new("CRMID", v));
        // a–b–c in a line, in separate transactions so the links are stored in pieces.
        record(&store, &tenant, &[a.clone(), b.clone()], 1);
        record(&store, &tenant, &[b.clone(), c.clone()], 2);
        let graph = resolve(&store, &tenant, &a)
            .expect("resolve")
            .expect("graph");
        // The limit is now 2; a visit of c alone evicts the least recently seen, a, and b–c
        // stay one graph.
        let mut txn = GraphTxn::new(
            &store,
            tenant.clone(),
            GraphConfig { max_identities: 2 },
            |_| 0,
        );
        let outcome = txn
            .link(std::slice::from_ref(&c), 3, "web", "x3")
            .expect("link");
        commit(&store, txn);
        assert_eq!(outcome.map(|o| o.evicted), Some(vec![a.clone()]));
        let kept = resolve(&store, &tenant, &c)
            .expect("resolve")
            .expect("graph");
        assert_eq!(kept.id, graph.id);
        assert_eq!(
            kept.identities().cloned().collect::<BTreeSet<_>>(),
            [b, c].into_iter().collect()
        );
        assert!(resolve(&store, &tenant, &a).expect("resolve").is_none());
    }

    #[test]
    fn members_and_links_remember_their_batches() {
        let (_dir, store, tenant) = open_store();
        let (crm, mail) = (
            IdentityKey::new("CRMID", "ann"),
            IdentityKey::new("Email", "ann@example.com"),
        );
        let ids = [crm.clone(), mail.clone()];
        let mut txn = GraphTxn::new(&store, tenant.clone(), GraphConfig::default(), |_| 0);
        for (at, batch) in [(1, Some("b1")), (2, None), (3, Some("b2")), (4, Some("b1"))] {
            let source = Source {
                dataset: "crm",
                batch,
                xaction_id: "x",
            };
            txn.link_from(&ids, at, &source).expect("link");
        }
        commit(&store, txn);
        let graph = resolve_with_links(&store, &tenant, &crm)
            .expect("resolve")
            .expect("graph");
        for member in &graph.members {
            assert_eq!(member.batches, ["b2", "b1"], "{}", member.identity);
        }
        assert_eq!(graph.links.len(), 1);
        assert_eq!(
            graph
                .links
                .first()
                .map(|l| l.batches.iter().map(|b| b.id.clone()).collect::<Vec<_>>()),
            Some(vec!["b2".to_owned(), "b1".to_owned()])
        );
    }

    #[test]
    fn logged_heads_encode_alike_owned_and_borrowed() {
        let log = LinkLog {
            inherited: vec![3, 9],
            rows: 4,
        };
        let StoredHead::Live {
            id,
            created,
            updated,
            members,
        } = head(vec!["b1".into()])
        else {
            panic!("a live head");
        };
        let owned = StoredHead::Logged {
            id,
            created,
            updated,
            members: members.clone(),
            log: log.clone(),
        };
        let graph = Graph {
            id,
            created,
            updated,
            members,
            links: Vec::new(),
        };
        let bytes = encode(&StoredHeadRef::live(&graph, &log)).expect("encode");
        assert_eq!(bytes, encode(&owned).expect("encode owned"));
        assert_eq!(decode::<StoredHead>(&bytes).expect("decode"), owned);
        assert_eq!(
            encode(&StoredHeadRef::live(&graph, &LinkLog::default())).expect("encode"),
            encode(&head(vec!["b1".into()])).expect("encode plain"),
            "a graph without pieces keeps the plain head"
        );
        let redirect = StoredHeadRef::Redirect { to: 5, at: 6 };
        assert_eq!(
            decode::<StoredHead>(&encode(&redirect).expect("encode")).expect("decode"),
            StoredHead::Redirect { to: 5, at: 6 }
        );
    }
}
