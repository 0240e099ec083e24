//! Materialized merged profiles: one stored document per identity graph holding the merged
//! profile for each merge policy (and, for policies without stitching, each identity) that
//! was looked up since the graph last changed, so a hot lookup is one point read.
//!
//! Exactness without locks: every write that can change a merged profile (a fragment write,
//! a change of the graph's membership, a deletion) puts a *tombstone with a fresh generation*
//! into the graph's view key inside its own atomic batch. A reader that fills the view first
//! reads the key, computes the merge from what it reads afterwards, and commits the fill with
//! the precondition "the view key still holds what I read". A write in between changes the
//! generation, the precondition fails and the (possibly stale) fill is dropped. A plain delete
//! would not do: absent → absent again would let a stale fill through (ABA).
//!
//! Key: `tenant, "v", graph` in `Table::ProfileViews`.

use tessera_identity::IdentityKey;
use tessera_model::Tenant;
use tessera_store::{Key, Store, Table, WriteBatch};

use crate::error::Result;

/// Key of `graph`'s view document.
pub fn key(tenant: &Tenant, graph: u64) -> Key {
    Key::tenant(tenant).str("v").u64(graph).finish()
}

/// A view document holding nothing, with a generation no earlier read can have seen.
fn tombstone() -> Vec<u8> {
    let generation = uuid::Uuid::new_v4().simple().to_string();
    serde_json::json!({ "gen": generation })
        .to_string()
        .into_bytes()
}

/// Adds to `batch` the invalidation of `graph`'s view.
pub fn invalidate(batch: &mut WriteBatch, tenant: &Tenant, graph: u64) {
    batch.put(Table::ProfileViews, &key(tenant, graph), tombstone());
}

/// Adds to `batch` the invalidation of the view of the graph `identity` belongs to (nothing
/// when it belongs to none: then no view can exist for it).
pub fn invalidate_identity(
    store: &dyn Store,
    batch: &mut WriteBatch,
    tenant: &Tenant,
    identity: &IdentityKey,
) -> Result<()> {
    if let Some(graph) = tessera_identity::graph_id(store, tenant, identity)? {
        invalidate(batch, tenant, graph);
    }
    Ok(())
}

/// What a view remembers for one (policy revision, scope) pair.
// Externally tagged: an internally tagged enum buffers its content, which `RawValue`
// cannot be read from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Entry {
    /// A merged profile.
    #[serde(rename_all = "camelCase")]
    Found {
        /// Identities whose fragments were merged.
        members: Vec<IdentityKey>,
        /// Contributing datasets.
        sources: Vec<String>,
        /// Receipts of the contributing writes.
        tags: Vec<String>,
        /// Latest contributing change (ms).
        last_modified: i64,
        /// The merged XDM entity, as JSON text (served without re-encoding).
        entity: Box<serde_json::value::RawValue>,
    },
    /// No fragment exists.
    NotFound,
    /// The graph exceeds the lookup limit.
    #[serde(rename_all = "camelCase")]
    TooManyIdentities {
        /// Its size.
        count: usize,
    },
}

#[derive(serde::Deserialize)]
struct DocRead<'a> {
    #[serde(rename = "gen")]
    generation: String,
    #[serde(borrow, default)]
    entries: std::collections::BTreeMap<String, &'a serde_json::value::RawValue>,
}

#[derive(serde::Serialize)]
struct DocWrite<'a> {
    #[serde(rename = "gen")]
    generation: &'a str,
    entries: std::collections::BTreeMap<&'a str, &'a serde_json::value::RawValue>,
}

fn corrupt(e: serde_json::Error) -> crate::Error {
    crate::Error::Corrupt {
        what: "profile view",
        reason: e.to_string(),
    }
}

/// The entry `name` of a stored view document, if present.
pub fn entry(document: &[u8], name: &str) -> Result<Option<Entry>> {
    let doc: DocRead<'_> = serde_json::from_slice(document).map_err(corrupt)?;
    doc.entries
        .get(name)
        .map(|raw| serde_json::from_str(raw.get()).map_err(corrupt))
        .transpose()
}

/// Adds `entry` under `name` to the graph's view, on condition that the view still holds
/// `read` (what the caller read before computing the entry). Entries of other revisions of
/// the same policy (`name` up to its `@`) are dropped: they can never be served again.
/// A lost race is not an error: the fill is simply not kept.
pub fn fill(
    store: &dyn Store,
    tenant: &Tenant,
    graph: u64,
    read: Option<&[u8]>,
    name: &str,
    entry: &Entry,
) -> Result<()> {
    let encoded = serde_json::to_string(entry).map_err(corrupt)?;
    let raw = serde_json::value::RawValue::from_string(encoded).map_err(corrupt)?;
    let previous = read
        .map(serde_json::from_slice::<DocRead<'_>>)
        .transpose()
        .map_err(corrupt)?;
    let fresh_generation;
    let (generation, mut entries) = match &previous {
        Some(doc) => (
            doc.generation.as_str(),
            doc.entries
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
        None => {
            fresh_generation = uuid::Uuid::new_v4().simple().to_string();
            (fresh_generation.as_str(), Default::default())
        }
    };
    let policy = name.split('@').next().unwrap_or(name);
    entries.retain(|k, _| k.split('@').next() != Some(policy) || *k == name);
    entries.insert(name, &raw);
    let document = serde_json::to_vec(&DocWrite {
        generation,
        entries,
    })
    .map_err(corrupt)?;
    let key = key(tenant, graph);
    let mut batch = WriteBatch::new().derived();
    batch
        .expect(Table::ProfileViews, &key, read.map(<[u8]>::to_vec))
        .put(Table::ProfileViews, &key, document);
    match store.commit(batch) {
        Ok(_) | Err(tessera_store::Error::Conflict { .. }) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use tessera_store::{EmbeddedStore, StoreOptions};

    use super::*;

    fn found(name: &str) -> Entry {
        Entry::Found {
            members: vec![IdentityKey::new("Email", "a@b.c")],
            sources: vec!["ds".into()],
            tags: vec!["x1".into()],
            last_modified: 7,
            entity: serde_json::value::to_raw_value(&serde_json::json!({"n": name})).unwrap(),
        }
    }

    fn entity_of(entry: Option<Entry>) -> Option<String> {
        match entry {
            Some(Entry::Found { entity, .. }) => Some(entity.get().to_owned()),
            _ => None,
        }
    }

    #[test]
    fn a_fill_survives_only_if_nothing_wrote_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let tenant = Tenant::parse("A@AdobeOrg", "prod").unwrap();
        let view_key = key(&tenant, 9);

        // Fill from nothing, read back (round trip through the stored document).
        fill(&store, &tenant, 9, None, "p@1", &found("first")).unwrap();
        let stored = store.get(Table::ProfileViews, &view_key).unwrap().unwrap();
        assert_eq!(
            entity_of(entry(&stored, "p@1").unwrap()).unwrap(),
            r#"{"n":"first"}"#
        );
        assert!(entry(&stored, "q@1").unwrap().is_none());

        // A writer invalidates after a reader read the view: the reader's fill is dropped.
        let mut batch = WriteBatch::new();
        invalidate(&mut batch, &tenant, 9);
        store.commit(batch).unwrap();
        fill(&store, &tenant, 9, Some(&stored), "q@1", &found("stale")).unwrap();
        let now = store.get(Table::ProfileViews, &view_key).unwrap().unwrap();
        assert!(entry(&now, "q@1").unwrap().is_none(), "stale fill kept");
        assert!(
            entry(&now, "p@1").unwrap().is_none(),
            "invalidation kept an entry"
        );

        // The same with an invalidation landing on an absent view (no ABA).
        let mut batch = WriteBatch::new();
        invalidate(&mut batch, &tenant, 10);
        store.commit(batch).unwrap();
        fill(&store, &tenant, 10, None, "p@1", &found("stale")).unwrap();
        let ten = store
            .get(Table::ProfileViews, &key(&tenant, 10))
            .unwrap()
            .unwrap();
        assert!(entry(&ten, "p@1").unwrap().is_none());

        // A newer revision of a policy replaces the older one's entry; others stay.
        fill(&store, &tenant, 9, Some(&now), "p@1", &found("one")).unwrap();
        let now = store.get(Table::ProfileViews, &view_key).unwrap().unwrap();
        fill(&store, &tenant, 9, Some(&now), "other@3", &found("other")).unwrap();
        let now = store.get(Table::ProfileViews, &view_key).unwrap().unwrap();
        fill(&store, &tenant, 9, Some(&now), "p@2", &found("two")).unwrap();
        let now = store.get(Table::ProfileViews, &view_key).unwrap().unwrap();
        assert!(entry(&now, "p@1").unwrap().is_none());
        assert!(entry(&now, "p@2").unwrap().is_some());
        assert!(entry(&now, "other@3").unwrap().is_some());
    }
}
