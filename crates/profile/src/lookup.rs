//! Profile lookup: the merged profile of any identity under a merge policy.
//!
//! Hot path: the identity's graph pointer (one point read), then the graph's materialized
//! view (one point read) holding the merged profile for this policy revision. On a miss the
//! profile is merged from the fragments and the view is filled for the next reader (see
//! [`crate::view`] for why a fill can never leave a stale profile behind).

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tessera_model::Tenant;
use tessera_store::{Store, Table};

use crate::error::{Error, Result};
use crate::fragment;
use crate::merged::{merge, Sourced};
use crate::policy::MergePolicy;
use crate::view::{self, Entry};
use crate::IdentityKey;

/// A merged profile ready to serve.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Identities whose fragments were merged (the graph under `pdg`, the identity under
    /// `none`).
    pub members: Vec<IdentityKey>,
    /// Contributing datasets.
    pub sources: Vec<String>,
    /// Receipts of the contributing writes.
    pub tags: Vec<String>,
    /// Latest contributing change (ms).
    pub last_modified: i64,
    /// Merged XDM entity as JSON text.
    pub entity: Box<RawValue>,
    /// The identity graph the looked-up identity belongs to (so callers adding per-graph
    /// data, such as segment memberships, need not resolve it again).
    pub graph: Option<u64>,
}

/// Outcome of a lookup.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The merged profile.
    Found(Profile),
    /// No fragment exists for the identity (or its graph).
    NotFound,
    /// The graph is larger than lookups serve.
    TooManyIdentities(usize),
}

impl From<Entry> for Lookup {
    fn from(entry: Entry) -> Self {
        match entry {
            Entry::Found {
                members,
                sources,
                tags,
                last_modified,
                entity,
            } => Lookup::Found(Profile {
                members,
                sources,
                tags,
                last_modified,
                entity,
                graph: None,
            }),
            Entry::NotFound => Lookup::NotFound,
            Entry::TooManyIdentities { count } => Lookup::TooManyIdentities(count),
        }
    }
}

/// Name of the view entry serving `identity` under `policy`: per graph when the policy
/// stitches (and per graph-size limit, a setting that may change across restarts while
/// views persist), per identity when it does not.
fn entry_name(policy: &MergePolicy, identity: &IdentityKey, max_identities: usize) -> String {
    if policy.stitches() {
        format!("{}|max{max_identities}", policy.revision_tag())
    } else {
        format!(
            "{}|{}|{}",
            policy.revision_tag(),
            identity.namespace,
            identity.id
        )
    }
}

/// The merged profile of `identity` under `policy`; graphs with more than `max_identities`
/// members are refused (AEP: 422 "Too many related identities") when the policy stitches.
pub fn lookup(
    store: &dyn Store,
    tenant: &Tenant,
    identity: &IdentityKey,
    policy: &MergePolicy,
    max_identities: usize,
) -> Result<Lookup> {
    let Some(graph) = tessera_identity::graph_id(store, tenant, identity)? else {
        // Never linked (a dataset outside the identity graph): nothing to cache against.
        return Ok(compute(
            store,
            tenant,
            vec![identity.clone()],
            policy,
            max_identities,
        )?
        .into());
    };
    let name = entry_name(policy, identity, max_identities);
    let read = store.get(Table::ProfileViews, &view::key(tenant, graph))?;
    if let Some(document) = &read {
        if let Some(entry) = view::entry(document, &name)? {
            return Ok(in_graph(entry.into(), graph));
        }
    }
    let members = if policy.stitches() {
        match tessera_identity::resolve(store, tenant, identity)? {
            Some(found) if found.id == graph => found.identities().cloned().collect(),
            // Moved to another graph since the pointer read: serve the new state, keep
            // nothing (the entry would be filed under the wrong graph).
            Some(_) | None => {
                return Ok(compute(
                    store,
                    tenant,
                    vec![identity.clone()],
                    policy,
                    max_identities,
                )?
                .into())
            }
        }
    } else {
        vec![identity.clone()]
    };
    let entry = compute(store, tenant, members, policy, max_identities)?;
    view::fill(store, tenant, graph, read.as_deref(), &name, &entry)?;
    Ok(in_graph(entry.into(), graph))
}

fn in_graph(found: Lookup, graph: u64) -> Lookup {
    match found {
        Lookup::Found(profile) => Lookup::Found(Profile {
            graph: Some(graph),
            ..profile
        }),
        other => other,
    }
}

/// Merges `members`' fragments under `policy` into the merged entity alone, from the
/// fragments themselves: for evaluations that read the document (batch segmentation), with
/// no text form to build and parse back. `None`: no fragment (or none the policy uses);
/// the caller checks the graph size limit.
pub fn compute_entity(
    store: &dyn Store,
    tenant: &Tenant,
    members: &[IdentityKey],
    policy: &MergePolicy,
) -> Result<Option<Map<String, Value>>> {
    Ok(merge_members(store, tenant, members, policy)?.map(|merged| merged.entity))
}

fn merge_members(
    store: &dyn Store,
    tenant: &Tenant,
    members: &[IdentityKey],
    policy: &MergePolicy,
) -> Result<Option<crate::merged::Merged>> {
    let mut fragments = Vec::new();
    for member in members {
        for (dataset, fragment) in fragment::for_identity(store, tenant, member)? {
            fragments.push(Sourced {
                dataset,
                identity: member.clone(),
                fragment,
            });
        }
    }
    if fragments.is_empty() {
        return Ok(None);
    }
    let merged = merge(fragments, &policy.attribute_merge, &[]);
    // No source: every fragment came from a dataset the policy leaves out.
    Ok((!merged.sources.is_empty()).then_some(merged))
}

/// Merges `members`' fragments under `policy`, from the fragments themselves.
pub fn compute(
    store: &dyn Store,
    tenant: &Tenant,
    members: Vec<IdentityKey>,
    policy: &MergePolicy,
    max_identities: usize,
) -> Result<Entry> {
    if policy.stitches() && members.len() > max_identities {
        return Ok(Entry::TooManyIdentities {
            count: members.len(),
        });
    }
    let Some(merged) = merge_members(store, tenant, &members, policy)? else {
        return Ok(Entry::NotFound);
    };
    let entity = serde_json::value::to_raw_value(&merged.entity).map_err(|e| Error::Corrupt {
        what: "merged profile",
        reason: e.to_string(),
    })?;
    Ok(Entry::Found {
        members,
        sources: merged.sources,
        tags: merged.tags,
        last_modified: merged.last_modified,
        entity,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use serde_json::json;
    use tessera_identity::{GraphConfig, GraphTxn};
    use tessera_store::{EmbeddedStore, StoreOptions, WriteBatch};

    use super::*;
    use crate::fragment::WriteMode;
    use crate::policy::BUILTIN_ID;

    fn write(
        store: &EmbeddedStore,
        tenant: &Tenant,
        who: &IdentityKey,
        name: &str,
        invalidate: bool,
    ) {
        let mut batch = WriteBatch::new();
        let record = json!({"person": {"name": {"firstName": name}}});
        fragment::write(
            store,
            &mut batch,
            tenant,
            "ds",
            who,
            record.as_object().unwrap().clone(),
            WriteMode::Replace,
            1,
            "x",
        )
        .unwrap();
        if invalidate {
            view::invalidate_identity(store, &mut batch, tenant, who).unwrap();
        }
        store.commit(batch).unwrap();
    }

    fn first_name(found: Lookup) -> String {
        let Lookup::Found(profile) = found else {
            panic!("not found")
        };
        let entity: serde_json::Value = serde_json::from_str(profile.entity.get()).unwrap();
        entity["person"]["name"]["firstName"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_hot_lookup_is_served_by_the_view_until_a_write_invalidates_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let tenant = Tenant::parse("A@AdobeOrg", "prod").unwrap();
        let jane = IdentityKey::new("Email", "jane@example.com");
        let crm = IdentityKey::new("CRMID", "j1");
        let mut txn = GraphTxn::new(&store, tenant.clone(), GraphConfig::default(), |_| 0);
        txn.link(&[jane.clone(), crm.clone()], 1, "ds", "x")
            .unwrap();
        let mut batch = WriteBatch::new();
        txn.finish(&mut batch).unwrap();
        store.commit(batch).unwrap();
        let policy = crate::policy::load(&store, &tenant)
            .unwrap()
            .get(BUILTIN_ID)
            .unwrap()
            .clone();

        write(&store, &tenant, &jane, "Jane", true);
        assert_eq!(
            first_name(lookup(&store, &tenant, &crm, &policy, 50).unwrap()),
            "Jane"
        );
        // A write that (wrongly) skips invalidation is not seen: proof the view answered.
        write(&store, &tenant, &jane, "Hidden", false);
        assert_eq!(
            first_name(lookup(&store, &tenant, &jane, &policy, 50).unwrap()),
            "Jane"
        );
        // A proper write is seen at once.
        write(&store, &tenant, &jane, "Janet", true);
        assert_eq!(
            first_name(lookup(&store, &tenant, &crm, &policy, 50).unwrap()),
            "Janet"
        );
        // A lower graph limit (a restart with another setting) is not answered from the view.
        assert!(matches!(
            lookup(&store, &tenant, &crm, &policy, 1).unwrap(),
            Lookup::TooManyIdentities(2)
        ));
    }
}
