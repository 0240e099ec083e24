//! Feed entries decoded in place, for consumers that handle each entry once.
//!
//! Every consumer decodes every entry. Decoded into [`ChangeEntry`], an event's entry is a
//! dozen strings (tenant, dataset, identities, receipt, `_id`), each allocated and freed
//! again a moment later; that was most of the decoding, itself a sixth of the streaming
//! worker's time. An [`EntryView`] borrows those strings from the page's bytes instead.

use std::borrow::Cow;

use super::{corrupt, ChangeEntry, ChangeKind, GraphGrowth, SegmentChange, Stored};
use crate::error::Result;

/// A feed entry whose strings borrow the bytes it was decoded from (see [`ChangeEntry`]
/// for what each field means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView<'a> {
    /// Organisation.
    pub org: Cow<'a, str>,
    /// Sandbox.
    pub sandbox: Cow<'a, str>,
    /// Dataset written.
    pub dataset_id: Cow<'a, str>,
    /// What kind of write.
    pub kind: ChangeKind,
    /// Primary identity namespace.
    pub namespace: Cow<'a, str>,
    /// Primary identity value.
    pub id: Cow<'a, str>,
    /// Every identity the record carried (`namespace`, `id`).
    pub identities: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Receipt of the write.
    pub xaction_id: Cow<'a, str>,
    /// When it was applied (ms since epoch).
    pub applied_ms: i64,
    /// The event's `timestamp` (ms) for events.
    pub event_ms: Option<i64>,
    /// The event's `_id` for events.
    pub event_id: Option<Cow<'a, str>>,
    /// The graph the record's identities belong to after it was applied.
    pub graph: Option<u64>,
    /// For membership entries: the segment and the new status.
    pub segment: Option<SegmentChange>,
    /// Graphs this record merged into `graph`.
    pub absorbed: Vec<u64>,
    /// What the record's linking did to `graph`.
    pub growth: GraphGrowth,
}

impl ChangeEntry {
    /// This entry as a view borrowing its strings.
    pub fn view(&self) -> EntryView<'_> {
        EntryView {
            org: Cow::Borrowed(&self.org),
            sandbox: Cow::Borrowed(&self.sandbox),
            dataset_id: Cow::Borrowed(&self.dataset_id),
            kind: self.kind,
            namespace: Cow::Borrowed(&self.namespace),
            id: Cow::Borrowed(&self.id),
            identities: self
                .identities
                .iter()
                .map(|(ns, id)| (Cow::Borrowed(ns.as_str()), Cow::Borrowed(id.as_str())))
                .collect(),
            xaction_id: Cow::Borrowed(&self.xaction_id),
            applied_ms: self.applied_ms,
            event_ms: self.event_ms,
            event_id: self.event_id.as_deref().map(Cow::Borrowed),
            graph: self.graph,
            segment: self.segment.clone(),
            absorbed: self.absorbed.clone(),
            growth: self.growth,
        }
    }

    fn into_view(self) -> EntryView<'static> {
        EntryView {
            org: Cow::Owned(self.org),
            sandbox: Cow::Owned(self.sandbox),
            dataset_id: Cow::Owned(self.dataset_id),
            kind: self.kind,
            namespace: Cow::Owned(self.namespace),
            id: Cow::Owned(self.id),
            identities: self
                .identities
                .into_iter()
                .map(|(ns, id)| (Cow::Owned(ns), Cow::Owned(id)))
                .collect(),
            xaction_id: Cow::Owned(self.xaction_id),
            applied_ms: self.applied_ms,
            event_ms: self.event_ms,
            event_id: self.event_id.map(Cow::Owned),
            graph: self.graph,
            segment: self.segment,
            absorbed: self.absorbed,
            growth: self.growth,
        }
    }
}

impl EntryView<'_> {
    /// The entry with its strings owned.
    pub fn into_owned(self) -> ChangeEntry {
        ChangeEntry {
            org: self.org.into_owned(),
            sandbox: self.sandbox.into_owned(),
            dataset_id: self.dataset_id.into_owned(),
            kind: self.kind,
            namespace: self.namespace.into_owned(),
            id: self.id.into_owned(),
            identities: self
                .identities
                .into_iter()
                .map(|(ns, id)| (ns.into_owned(), id.into_owned()))
                .collect(),
            xaction_id: self.xaction_id.into_owned(),
            applied_ms: self.applied_ms,
            event_ms: self.event_ms,
            event_id: self.event_id.map(Cow::into_owned),
            graph: self.graph,
            segment: self.segment,
            absorbed: self.absorbed,
            growth: self.growth,
        }
    }
}

/// A string borrowed from the input when it can be (bincode always can): serde borrows a
/// `Cow<str>` only for a field marked `borrow`, not inside a tuple or a vector.
#[derive(serde::Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// The binary entry's fields, in the order [`super::BinaryEntryRef`] writes them.
#[derive(serde::Deserialize)]
struct BinaryEntryView<'a> {
    #[serde(borrow)]
    org: Cow<'a, str>,
    #[serde(borrow)]
    sandbox: Cow<'a, str>,
    #[serde(borrow)]
    dataset_id: Cow<'a, str>,
    kind: ChangeKind,
    #[serde(borrow)]
    namespace: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    identities: Vec<(Text<'a>, Text<'a>)>,
    #[serde(borrow)]
    xaction_id: Cow<'a, str>,
    applied_ms: i64,
    event_ms: Option<i64>,
    #[serde(borrow)]
    event_id: Option<Text<'a>>,
    graph: Option<u64>,
    segment: Option<SegmentChange>,
    absorbed: Vec<u64>,
}

/// Decodes a stored entry in place (entries stored as JSON, from before the binary form,
/// are decoded owned).
pub(super) fn decode_view(bytes: &[u8]) -> Result<EntryView<'_>> {
    use bincode::Options as _;
    let (body, growth) = match super::stored(bytes)? {
        Stored::Binary { body, growth } => (body, growth),
        Stored::Json => {
            return serde_json::from_slice(bytes)
                .map(ChangeEntry::into_view)
                .map_err(corrupt)
        }
    };
    let e: BinaryEntryView<'_> = bincode::DefaultOptions::new()
        .deserialize(body)
        .map_err(corrupt)?;
    Ok(EntryView {
        org: e.org,
        sandbox: e.sandbox,
        dataset_id: e.dataset_id,
        kind: e.kind,
        namespace: e.namespace,
        id: e.id,
        // The same layout, so the vector is reused in place.
        identities: e
            .identities
            .into_iter()
            .map(|(ns, id)| (ns.0, id.0))
            .collect(),
        xaction_id: e.xaction_id,
        applied_ms: e.applied_ms,
        event_ms: e.event_ms,
        event_id: e.event_id.map(|t| t.0),
        graph: e.graph,
        segment: e.segment,
        absorbed: e.absorbed,
        growth,
    })
}
