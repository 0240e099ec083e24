//! Profile lookup: the merged profile of any identity under a merge policy.
//!
//! Hot path: the identity's graph pointer (one point read), then the graph's materialized
//! view (one point read) holding the merged profile for this policy revision. On a miss the
//! profile is merged from the fragments and the view is filled for the next reader (see
//! [`crate::view`] for why a fill can never leave a stale profile behind).

use serde_json::value::RawValue;
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
            }),
            Entry::NotFound => Lookup::NotFound,
            Entry::TooManyIdentities { count } => Lookup::TooManyIdentities(count),
        }
    }
}

/// Name of the view entry serving `identity` under `policy`: per graph when the policy
/// stitches, per identity when it does not.
fn entry_name(policy: &MergePolicy, identity: &IdentityKey) -> String {
    if policy.stitches() {
        policy.revision_tag()
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
    let name = entry_name(policy, identity);
    let read = store.get(Table::ProfileViews, &view::key(tenant, graph))?;
    if let Some(document) = &read {
        if let Some(entry) = view::entry(document, &name)? {
            return Ok(entry.into());
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
    Ok(entry.into())
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
    let mut fragments = Vec::new();
    for member in &members {
        for (dataset, fragment) in fragment::for_identity(store, tenant, member)? {
            fragments.push(Sourced {
                dataset,
                identity: member.clone(),
                fragment,
            });
        }
    }
    if fragments.is_empty() {
        return Ok(Entry::NotFound);
    }
    let merged = merge(fragments, &policy.attribute_merge, &[]);
    if merged.sources.is_empty() {
        // Every fragment came from a dataset the policy leaves out.
        return Ok(Entry::NotFound);
    }
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
