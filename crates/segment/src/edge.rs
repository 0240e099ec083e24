//! Edge (synchronous) segments: evaluated on lookup, so a profile read returns current
//! membership without waiting for the streaming consumer.
//!
//! The compiled synchronous segments of each sandbox are cached per process and revalidated
//! on every use against the definitions and merge-policy revisions (two point reads).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use tessera_identity::Graph;
use tessera_model::Tenant;
use tessera_store::{Store, WriteBatch};

use crate::batch::{self, Change, Compiled, Run};
use crate::error::Result;
use crate::membership::Membership;

type Cached = ((u64, u64), Arc<Vec<Compiled>>);

/// Per-process cache of each sandbox's compiled synchronous segments.
#[derive(Default)]
pub struct EdgeSegments {
    entries: Mutex<HashMap<Tenant, Cached>>,
}

impl std::fmt::Debug for EdgeSegments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeSegments").finish_non_exhaustive()
    }
}

impl EdgeSegments {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sandbox's synchronous segments, compiled in dependency order with every segment
    /// they read (`inSegment` of a non-synchronous segment reads its stored membership).
    pub fn segments(&self, store: &dyn Store, tenant: &Tenant) -> Result<Arc<Vec<Compiled>>> {
        let revisions = (
            crate::definition::revision(store, tenant)?,
            tessera_profile::policy::revision(store, tenant)?,
        );
        if let Some((cached, segments)) = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
        {
            if *cached == revisions {
                return Ok(Arc::clone(segments));
            }
        }
        let definitions: Vec<_> = crate::definition::list(store, tenant)?
            .into_iter()
            .filter(|d| d.evaluation_info.synchronous.enabled)
            .collect();
        let compiled = if definitions.is_empty() {
            Vec::new()
        } else {
            let policies = tessera_profile::policy::load(store, tenant)?;
            batch::compile(definitions, &policies)?
        };
        let compiled = Arc::new(compiled);
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant.clone(), (revisions, Arc::clone(&compiled)));
        Ok(compiled)
    }
}

/// The memberships of `graph` with its synchronous segments evaluated at `now_ms`; nothing is
/// written (the streaming consumer records transitions).
pub fn memberships(
    store: &dyn Store,
    tenant: &Tenant,
    graph: &Graph,
    segments: &[Compiled],
    now_ms: i64,
    max_identities: usize,
) -> Result<BTreeMap<String, Membership>> {
    let never = || false;
    let no_record = |_: &mut WriteBatch, _: &[Change]| Ok(());
    let run = Run {
        store,
        tenant,
        now_ms,
        max_identities,
        should_stop: &never,
        record: &no_record,
        use_views: true,
    };
    batch::current_memberships(&run, graph, segments)
}
