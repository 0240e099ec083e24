//! The change feed: a durable, totally ordered log of every applied record.
//!
//! Each apply appends one entry in the same atomic batch as the record itself, so the feed
//! never holds an entry for a write that did not happen, nor misses one that did. The store
//! numbers entries in commit order (`WriteBatch::append`), which lets consumers (computed
//! attributes, streaming segmentation, activation) read from a checkpoint and be sure they
//! skipped nothing. Delivery is at-least-once: a consumer that crashes between handling
//! entries and saving its checkpoint sees them again.
//!
//! One feed serves every tenant (entries name their tenant), so a consumer needs one
//! checkpoint, not one per sandbox.

use std::sync::{Arc, Mutex, PoisonError};

use tessera_identity::IdentityKey;
use tessera_model::Tenant;
use tessera_profile::erase::Erased;
use tessera_store::{Direction, Key, KeyReader, ScanRange, Scope, Store, Table, WriteBatch};

use crate::error::{Error, Result};

mod view;

pub use view::EntryView;

fn feed_prefix() -> Key {
    Key::builder(&Scope::System).str("feed").finish()
}

fn checkpoint_prefix() -> Key {
    Key::builder(&Scope::System).str("checkpoint").finish()
}

fn checkpoint_key(consumer: &str) -> Key {
    Key::extend(&checkpoint_prefix()).str(consumer).finish()
}

/// What kind of write an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// A profile record fragment was written (replaced or upserted).
    Record,
    /// An experience event was appended.
    Event,
    /// A person was erased (`DELETE /access/entities`): `identities` lists every identity
    /// whose fragments, events and graph entries were removed. Consumers drop what they
    /// derived from them (memberships, exports); the entry is also the audit record.
    Erased,
    /// A profile entered or left a segment (`segment` says which and how); `graph` is the
    /// profile, `identities` its identities.
    Membership,
    /// A graph changed members without a record of its own (an unlink through the identity
    /// API, the erasure of one of its identities, an eviction that split it, or a record
    /// whose primary identity was left out of linking, whose own entry names no graph;
    /// this entry, right after it, names the graph the record's other identities joined,
    /// and `absorbed` the graphs that merged into it): `identities`
    /// are the members of one resulting graph (empty when nothing is left of it), `graph` the
    /// graph it came from. Consumers re-derive what they keep per profile for every graph
    /// the entry leads to, and drop it for `graph` when that no longer exists.
    GraphChanged,
}

/// What a [`ChangeKind::Membership`] entry reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentChange {
    /// Segment definition id.
    pub segment_id: String,
    /// `realized` or `exited`.
    pub status: String,
    /// When the profile last started to qualify (ms).
    pub last_qualification_time: i64,
}

/// One feed entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEntry {
    /// Organisation.
    pub org: String,
    /// Sandbox.
    pub sandbox: String,
    /// Dataset written.
    pub dataset_id: String,
    /// Record or event.
    pub kind: ChangeKind,
    /// Primary identity namespace of the record.
    pub namespace: String,
    /// Primary identity value.
    pub id: String,
    /// Every identity the record carried (`namespace`, `id`), for the identity graph.
    #[serde(default)]
    pub identities: Vec<(String, String)>,
    /// Receipt of the write.
    pub xaction_id: String,
    /// When it was applied (ms since epoch).
    pub applied_ms: i64,
    /// The event's `timestamp` (ms) for events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_ms: Option<i64>,
    /// The event's `_id` for events, so a consumer reads the event with one point lookup
    /// (identity, time, dataset and `_id` make its key). Absent in entries written before
    /// it was added; consumers then find the event by its receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The identity graph the record's identities belong to after it was applied: the
    /// profile that holds the record. Absent for datasets not enabled for identity and for
    /// a primary left out of linking (blocked, non-people), whose record belongs to the
    /// graph the primary joined before, if any: consumers look the primary up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<u64>,
    /// For membership entries: the segment and the new status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentChange>,
    /// Graphs this record merged into `graph`. Their ids never come back (they redirect to
    /// the survivor), so what consumers keep under them can go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absorbed: Vec<u64>,
    /// What the record's linking did to `graph`: created it, grew it by new identities, or
    /// merged the `absorbed` graphs into it cleanly.
    #[serde(default, skip_serializing_if = "GraphGrowth::is_none")]
    pub growth: GraphGrowth,
}

/// How a record's linking grew its graph, for consumers keeping per-graph state derived
/// from the members' events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphGrowth {
    /// The record created the graph.
    #[serde(default)]
    pub created: bool,
    /// The graph grew, and all it gained came with this record: the identities it added had
    /// never been seen (no earlier record or event of theirs is stored), and nothing merged,
    /// was evicted or split off.
    #[serde(default)]
    pub grew_by_new_identities: bool,
    /// The record merged the `absorbed` graphs into this one, and besides their members the
    /// graph gained only identities never seen (as above); nothing was evicted or split off.
    /// State kept per graph can then be combined from the merged graphs' states.
    #[serde(default)]
    pub clean_merge: bool,
}

impl GraphGrowth {
    /// No flag set (what entries written before the flags decode to).
    pub fn is_none(&self) -> bool {
        *self == GraphGrowth::default()
    }

    fn to_byte(self) -> u8 {
        u8::from(self.created)
            | (u8::from(self.grew_by_new_identities) << 1)
            | (u8::from(self.clean_merge) << 2)
    }

    fn from_byte(byte: u8) -> Self {
        GraphGrowth {
            created: byte & 1 != 0,
            grew_by_new_identities: byte & 2 != 0,
            clean_merge: byte & 4 != 0,
        }
    }
}

/// Adds the record of an erasure of `subject` (`DELETE /access/entities`): one
/// [`ChangeKind::Erased`] entry naming every identity whose data went and the graph it was
/// in, then, when one identity left a graph that remains, [`ChangeKind::GraphChanged`]
/// entries for what remains of it (parts split off have ids no other entry names). The
/// entries are also the erasure's audit trail.
pub fn append_erased(
    batch: &mut WriteBatch,
    tenant: &Tenant,
    subject: &IdentityKey,
    erased: &Erased,
    receipt: &str,
    applied_ms: i64,
) -> Result<()> {
    append(
        batch,
        &graph_entry(
            tenant,
            ChangeKind::Erased,
            subject,
            &erased.identities,
            erased.graph,
            receipt,
            applied_ms,
        ),
    )?;
    if let (false, Some(graph)) = (erased.remaining.is_empty(), erased.graph) {
        append_graph_changes(
            batch,
            tenant,
            graph,
            &erased.remaining,
            subject,
            receipt,
            applied_ms,
        )?;
    }
    Ok(())
}

/// Adds one [`ChangeKind::GraphChanged`] entry per graph in `parts` (the members of each
/// resulting graph), all coming from graph `origin`; when no part has a member (nothing is
/// left of `origin`) one entry without identities, filed under `gone`, says so. Entries
/// name members rather than graph ids because consumers resolve them when they read the
/// entry, when later writes may have moved them again. `receipt` names the cause.
pub fn append_graph_changes(
    batch: &mut WriteBatch,
    tenant: &Tenant,
    origin: u64,
    parts: &[Vec<IdentityKey>],
    gone: &IdentityKey,
    receipt: &str,
    applied_ms: i64,
) -> Result<()> {
    let entry = |who: &IdentityKey, members: &[IdentityKey]| {
        graph_entry(
            tenant,
            ChangeKind::GraphChanged,
            who,
            members,
            Some(origin),
            receipt,
            applied_ms,
        )
    };
    let mut any = false;
    for members in parts {
        let Some(first) = members.first() else {
            continue;
        };
        append(batch, &entry(first, members))?;
        any = true;
    }
    if !any {
        append(batch, &entry(gone, &[]))?;
    }
    Ok(())
}

/// Adds the record of a link made without the record's primary identity (blocked or
/// non-people, so left out of linking): one [`ChangeKind::GraphChanged`] entry naming the
/// `members` of `graph`, which the record's other identities joined, and the graphs that
/// merged into it. The record's own entry names no graph (its data belongs to the profile
/// its primary is in); this one lets consumers hear what became of `graph`.
#[allow(clippy::too_many_arguments)]
pub fn append_linked_without_primary(
    batch: &mut WriteBatch,
    tenant: &Tenant,
    graph: u64,
    members: &[IdentityKey],
    absorbed: &[u64],
    primary: &IdentityKey,
    receipt: &str,
    applied_ms: i64,
) -> Result<()> {
    let mut entry = graph_entry(
        tenant,
        ChangeKind::GraphChanged,
        members.first().unwrap_or(primary),
        members,
        Some(graph),
        receipt,
        applied_ms,
    );
    entry.absorbed = absorbed.to_vec();
    append(batch, &entry)
}

/// An entry about identities rather than a record (erasures, graph changes): filed under
/// `who`, naming `members`, from `graph`.
fn graph_entry(
    tenant: &Tenant,
    kind: ChangeKind,
    who: &IdentityKey,
    members: &[IdentityKey],
    graph: Option<u64>,
    receipt: &str,
    applied_ms: i64,
) -> ChangeEntry {
    ChangeEntry {
        org: tenant.org.to_string(),
        sandbox: tenant.sandbox.to_string(),
        dataset_id: String::new(),
        kind,
        namespace: who.namespace.clone(),
        id: who.id.clone(),
        identities: members
            .iter()
            .map(|i| (i.namespace.clone(), i.id.clone()))
            .collect(),
        xaction_id: receipt.to_owned(),
        applied_ms,
        event_ms: None,
        event_id: None,
        graph,
        segment: None,
        absorbed: Vec::new(),
        growth: GraphGrowth::default(),
    }
}

/// Adds `entry` to `batch`; its sequence number comes back in the commit's `appended`.
pub fn append(batch: &mut WriteBatch, entry: &ChangeEntry) -> Result<()> {
    batch.append(Table::ChangeFeed, &feed_prefix(), encode(entry)?);
    Ok(())
}

/// Leading byte of a binary feed entry. Every consumer decodes every entry, and with
/// JSON that was the largest share of the consumers' time; bincode decodes several times
/// faster. Entries written as JSON before start with `{` and still decode.
const FEED_FORMAT_BINARY: u8 = 1;
/// [`FEED_FORMAT_BINARY`]'s body followed by one byte of [`GraphGrowth`] flags (written
/// now).
const FEED_FORMAT_BINARY_GROWTH: u8 = 2;

/// [`ChangeEntry`]'s fields in bincode's fixed order: a format without field names cannot
/// skip absent optional fields the way the JSON form does. New fields go at the end, under
/// a new format byte.
#[derive(serde::Serialize)]
struct BinaryEntryRef<'a> {
    org: &'a str,
    sandbox: &'a str,
    dataset_id: &'a str,
    kind: ChangeKind,
    namespace: &'a str,
    id: &'a str,
    identities: &'a [(String, String)],
    xaction_id: &'a str,
    applied_ms: i64,
    event_ms: Option<i64>,
    event_id: Option<&'a str>,
    graph: Option<u64>,
    segment: Option<&'a SegmentChange>,
    absorbed: &'a [u64],
}

fn corrupt(reason: impl ToString) -> Error {
    Error::Corrupt {
        what: "change feed entry",
        reason: reason.to_string(),
    }
}

fn encode(entry: &ChangeEntry) -> Result<Vec<u8>> {
    use bincode::Options as _;
    let binary = BinaryEntryRef {
        org: &entry.org,
        sandbox: &entry.sandbox,
        dataset_id: &entry.dataset_id,
        kind: entry.kind,
        namespace: &entry.namespace,
        id: &entry.id,
        identities: &entry.identities,
        xaction_id: &entry.xaction_id,
        applied_ms: entry.applied_ms,
        event_ms: entry.event_ms,
        event_id: entry.event_id.as_deref(),
        graph: entry.graph,
        segment: entry.segment.as_ref(),
        absorbed: &entry.absorbed,
    };
    let mut bytes = Vec::with_capacity(160);
    bytes.push(FEED_FORMAT_BINARY_GROWTH);
    bincode::DefaultOptions::new()
        .serialize_into(&mut bytes, &binary)
        .map_err(corrupt)?;
    bytes.push(entry.growth.to_byte());
    Ok(bytes)
}

/// A stored entry by its format.
enum Stored<'a> {
    /// The bincode body, and the growth flags stored after it (none in the first form).
    Binary { body: &'a [u8], growth: GraphGrowth },
    /// The JSON form written before the binary one.
    Json,
}

fn stored(bytes: &[u8]) -> Result<Stored<'_>> {
    match bytes.split_first() {
        Some((&FEED_FORMAT_BINARY, body)) => Ok(Stored::Binary {
            body,
            growth: GraphGrowth::default(),
        }),
        Some((&FEED_FORMAT_BINARY_GROWTH, rest)) => match rest.split_last() {
            Some((flags, body)) => Ok(Stored::Binary {
                body,
                growth: GraphGrowth::from_byte(*flags),
            }),
            None => Err(corrupt("empty feed entry")),
        },
        Some((b'{', _)) => Ok(Stored::Json),
        Some((format, _)) => Err(corrupt(format!("unknown feed entry format {format}"))),
        None => Err(corrupt("empty feed entry")),
    }
}

fn decode(bytes: &[u8]) -> Result<ChangeEntry> {
    view::decode_view(bytes).map(EntryView::into_owned)
}

fn sequence_of(key: &[u8], prefix_len: usize) -> Result<u64> {
    let rest = key
        .get(prefix_len..)
        .ok_or(tessera_store::Error::MalformedKey {
            offset: prefix_len,
            reason: "feed key shorter than its prefix",
        })?;
    Ok(KeyReader::new(rest).u64()?)
}

/// Up to `limit` entries numbered above `after`, in order.
pub fn read(store: &dyn Store, after: u64, limit: usize) -> Result<Vec<(u64, ChangeEntry)>> {
    page(store, after, limit)?.into_iter().collect()
}

/// Up to `limit` entries numbered above `after`, as stored, each decoded when the consumer
/// reaches it. For consumers that handle entries one by one: a page of decoded entries
/// (~300 bytes each) is a large block allocated and freed on every pass, which showed in
/// the computed-attribute consumer's profile as page faults of freshly mapped memory.
pub fn page(store: &dyn Store, after: u64, limit: usize) -> Result<Page> {
    let prefix = feed_prefix();
    let prefix_len = prefix.as_bytes().len();
    let mut range = ScanRange::prefix(prefix.clone());
    if after > 0 {
        range = range.resume_after(Key::extend(&prefix).u64(after).finish().into_bytes());
    }
    let rows = store.scan(Table::ChangeFeed, &range, Direction::Forward, limit)?;
    Ok(Page {
        rows: rows.into(),
        prefix_len,
    })
}

/// [`page`], or the page `shared` holds when it was read from the same place with the same
/// limit.
///
/// For a thread that runs several consumers one after the other: when they are caught up
/// together, each would otherwise scan the same new entries again. Entries never change
/// once written, so a page read a moment ago is a valid page, only perhaps shorter than
/// one read now. A consumer that takes a short page for "caught up" must therefore only
/// see pages read since the last wake-up: the thread [`SharedPage::clear`]s it before each
/// round. A record ingestion applies after the page was read wakes the thread again, so it
/// is read in the next round; entries from writers that wake nobody (the identity API's
/// unlink, erasure, batch segment jobs) wait for the thread's next wake-up, as they did
/// when they landed just after a consumer's own read.
pub fn shared_page(
    store: &dyn Store,
    after: u64,
    limit: usize,
    shared: &SharedPage,
) -> Result<Page> {
    let mut last = shared.last.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(page) = last
        .as_ref()
        .filter(|p| p.after == after && p.limit == limit)
    {
        return Ok(page.page.clone());
    }
    let page = self::page(store, after, limit)?;
    *last = Some(SharedRead {
        after,
        limit,
        page: page.clone(),
    });
    Ok(page)
}

/// The last page read through [`shared_page`].
#[derive(Debug, Default)]
pub struct SharedPage {
    last: Mutex<Option<SharedRead>>,
}

#[derive(Debug)]
struct SharedRead {
    after: u64,
    limit: usize,
    page: Page,
}

impl SharedPage {
    /// Forgets the page: the next read scans the store.
    pub fn clear(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Feed entries read by [`page`], not decoded yet. Cloning shares the rows.
#[derive(Debug, Clone)]
pub struct Page {
    rows: Arc<[tessera_store::Entry]>,
    prefix_len: usize,
}

impl Page {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the page is empty (the consumer is caught up).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Number of the last entry, if any.
    pub fn last_seq(&self) -> Result<Option<u64>> {
        self.rows
            .last()
            .map(|row| sequence_of(&row.key, self.prefix_len))
            .transpose()
    }

    /// The entries in order, each decoded in place when reached (see [`EntryView`]).
    pub fn views(&self) -> impl Iterator<Item = Result<(u64, EntryView<'_>)>> + '_ {
        self.rows.iter().map(|row| {
            let seq = sequence_of(&row.key, self.prefix_len)?;
            Ok((seq, view::decode_view(&row.value)?))
        })
    }
}

impl IntoIterator for Page {
    type Item = Result<(u64, ChangeEntry)>;
    type IntoIter = Box<dyn Iterator<Item = Result<(u64, ChangeEntry)>>>;

    fn into_iter(self) -> Self::IntoIter {
        // By index, so the iterator owns the shared rows (a borrowing iterator cannot be
        // returned from here).
        Box::new((0..self.rows.len()).filter_map(move |at| {
            self.rows.get(at).map(|row| {
                sequence_of(&row.key, self.prefix_len)
                    .and_then(|seq| Ok((seq, decode(&row.value)?)))
            })
        }))
    }
}

/// Number of the newest entry (0 when empty).
pub fn head(store: &dyn Store) -> Result<u64> {
    let prefix = feed_prefix();
    let prefix_len = prefix.as_bytes().len();
    let last = store.scan(
        Table::ChangeFeed,
        &ScanRange::prefix(prefix),
        Direction::Reverse,
        1,
    )?;
    match last.first() {
        Some(row) => sequence_of(&row.key, prefix_len),
        None => Ok(0),
    }
}

/// The last entry `consumer` has fully handled (0 when it never saved one).
pub fn checkpoint(store: &dyn Store, consumer: &str) -> Result<u64> {
    match store.get(Table::Checkpoints, &checkpoint_key(consumer))? {
        Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| Error::Corrupt {
                what: "checkpoint",
                reason: format!("{} bytes instead of 8", bytes.len()),
            }),
        None => Ok(0),
    }
}

/// Adds "consumer has handled everything up to `seq`" to `batch` — in the same batch as the
/// consumer's own writes when it has any, so effects and checkpoint land together.
pub fn save_checkpoint(batch: &mut WriteBatch, consumer: &str, seq: u64) {
    batch.put(
        Table::Checkpoints,
        &checkpoint_key(consumer),
        seq.to_be_bytes().to_vec(),
    );
}

/// Adds to `batch` the condition that `consumer`'s checkpoint is still `seq` (0: never
/// saved), for consumers that may run a pass from two threads (one commit wins, the other
/// fails with a conflict and re-reads).
pub fn expect_checkpoint(batch: &mut WriteBatch, consumer: &str, seq: u64) {
    let expected = (seq > 0).then(|| seq.to_be_bytes().to_vec());
    batch.expect(Table::Checkpoints, &checkpoint_key(consumer), expected);
}

/// Every consumer with its checkpoint.
pub fn consumers(store: &dyn Store) -> Result<Vec<(String, u64)>> {
    let prefix = checkpoint_prefix();
    let prefix_len = prefix.as_bytes().len();
    store
        .scan(
            Table::Checkpoints,
            &ScanRange::prefix(prefix),
            Direction::Forward,
            10_000,
        )?
        .into_iter()
        .map(|row| {
            let name = row
                .key
                .get(prefix_len..)
                .map(KeyReader::new)
                .ok_or(tessera_store::Error::MalformedKey {
                    offset: prefix_len,
                    reason: "checkpoint key shorter than its prefix",
                })
                .and_then(|mut reader| reader.string())?;
            let seq = <[u8; 8]>::try_from(row.value.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| Error::Corrupt {
                    what: "checkpoint",
                    reason: "not 8 bytes".into(),
                })?;
            Ok((name, seq))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_entry() -> ChangeEntry {
        ChangeEntry {
            org: "ORG@AdobeOrg".into(),
            sandbox: "prod".into(),
            dataset_id: "ds".into(),
            kind: ChangeKind::Membership,
            namespace: "Email".into(),
            id: "a@example.com".into(),
            identities: vec![
                ("Email".into(), "a@example.com".into()),
                ("ECID".into(), "1".repeat(38)),
            ],
            xaction_id: "x-1".into(),
            applied_ms: 1_700_000_000_000,
            event_ms: Some(-5),
            event_id: Some("e-1".into()),
            graph: Some(u64::MAX),
            segment: Some(SegmentChange {
                segment_id: "s".into(),
                status: "realized".into(),
                last_qualification_time: 7,
            }),
            absorbed: vec![3, 4],
            growth: GraphGrowth {
                created: false,
                grew_by_new_identities: true,
                clean_merge: true,
            },
        }
    }

    #[test]
    fn entries_round_trip_through_the_binary_form() -> Result<()> {
        let full = full_entry();
        let bytes = encode(&full)?;
        assert_eq!(bytes.first(), Some(&FEED_FORMAT_BINARY_GROWTH));
        assert_eq!(decode(&bytes)?, full);
        let view = view::decode_view(&bytes)?;
        assert_eq!(view, full.view());
        let borrowed =
            |text: &std::borrow::Cow<'_, str>| matches!(text, std::borrow::Cow::Borrowed(_));
        assert!(
            [
                &view.org,
                &view.sandbox,
                &view.dataset_id,
                &view.namespace,
                &view.id,
                &view.xaction_id
            ]
            .into_iter()
            .chain(view.event_id.as_ref())
            .chain(view.identities.iter().flat_map(|(ns, id)| [ns, id]))
            .all(borrowed),
            "a binary entry's view allocates no string"
        );
        for growth in (0..8).map(GraphGrowth::from_byte) {
            let entry = ChangeEntry {
                growth,
                ..full.clone()
            };
            assert_eq!(decode(&encode(&entry)?)?, entry);
            assert_eq!(view::decode_view(&encode(&entry)?)?, entry.view());
        }
        // The first binary form: the same body without the flags.
        let mut first = bytes.clone();
        first[0] = FEED_FORMAT_BINARY;
        first.pop();
        let without = ChangeEntry {
            growth: GraphGrowth::default(),
            ..full.clone()
        };
        assert_eq!(decode(&first)?, without);
        assert_eq!(view::decode_view(&first)?, without.view());
        let sparse = ChangeEntry {
            kind: ChangeKind::Event,
            identities: Vec::new(),
            event_ms: None,
            event_id: None,
            graph: None,
            segment: None,
            absorbed: Vec::new(),
            growth: GraphGrowth::default(),
            ..full
        };
        assert_eq!(decode(&encode(&sparse)?)?, sparse);
        assert_eq!(view::decode_view(&encode(&sparse)?)?, sparse.view());
        Ok(())
    }

    #[test]
    fn entries_written_as_json_still_decode() -> Result<()> {
        let full = full_entry();
        let json = serde_json::to_vec(&full).map_err(corrupt)?;
        assert_eq!(decode(&json)?, full);
        assert_eq!(view::decode_view(&json)?, full.view());
        Ok(())
    }

    #[test]
    fn a_shared_page_is_read_once_until_cleared() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| corrupt(e.to_string()))?;
        let store = tessera_store::EmbeddedStore::open(dir.path(), Default::default())?;
        let write = |n: usize| -> Result<()> {
            let mut batch = WriteBatch::new();
            for _ in 0..n {
                append(&mut batch, &full_entry())?;
            }
            store.commit(batch)?;
            Ok(())
        };
        write(3)?;
        let shared = SharedPage::default();
        assert_eq!(shared_page(&store, 0, 10, &shared)?.len(), 3);
        write(2)?;
        // The second consumer, starting where the first did, gets the page the first read.
        assert_eq!(shared_page(&store, 0, 10, &shared)?.len(), 3);
        assert_eq!(page(&store, 0, 10)?.len(), 5);
        // Another place or another limit is another page.
        assert_eq!(shared_page(&store, 0, 4, &shared)?.len(), 4);
        assert_eq!(shared_page(&store, 0, 10, &shared)?.len(), 5);
        write(1)?;
        shared.clear();
        assert_eq!(shared_page(&store, 0, 10, &shared)?.len(), 6);
        let third = shared_page(&store, 2, 10, &shared)?;
        let seqs = third
            .views()
            .map(|v| v.map(|(seq, _)| seq))
            .collect::<Result<Vec<_>>>()?;
        assert_eq!(seqs.len(), 4);
        assert_eq!(third.last_seq()?, seqs.last().copied());
        Ok(())
    }

    #[test]
    fn damaged_entries_are_refused() -> Result<()> {
        let mut bytes = encode(&full_entry())?;
        bytes.truncate(bytes.len() / 2);
        assert!(decode(&bytes).is_err());
        assert!(decode(&[9, 1, 2]).is_err());
        assert!(decode(&[]).is_err());
        assert!(view::decode_view(&bytes).is_err());
        assert!(view::decode_view(&[9, 1, 2]).is_err());
        assert!(view::decode_view(&[]).is_err());
        Ok(())
    }
}
