//! The logical tables of DESIGN.md §4. Each is its own keyspace (LSM tree) in the embedded
//! backend and its own relation in the PostgreSQL backend, so tables with different access
//! patterns (append-heavy events, point-read identities) can be tuned apart.

/// A logical table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Store metadata (format version) and per-sandbox facts (`Key::tenant` scope).
    Meta,
    /// Sandboxes per organisation.
    Sandboxes,
    /// XDM schemas and descriptors.
    Schemas,
    /// Datasets (catalog).
    Datasets,
    /// Ingestion batches and their status.
    Batches,
    /// Identity namespaces.
    Namespaces,
    /// `(namespace, id) → graph`.
    Identities,
    /// `graph → members`.
    Graphs,
    /// `(dataset, ns, id) → fragment document`.
    Fragments,
    /// `(ns, id, ts, _id) → event document`.
    Events,
    /// Merge policies.
    MergePolicies,
    /// Computed attribute definitions and values.
    ComputedAttributes,
    /// Segment definitions.
    Segments,
    /// `(graph, segment) → membership status`.
    Memberships,
    /// Activation destinations.
    Destinations,
    /// Activation outbox.
    Outbox,
    /// Asynchronous jobs.
    Jobs,
    /// The durable, ordered change feed.
    ChangeFeed,
    /// Consumer checkpoints on the change feed.
    Checkpoints,
    /// Streaming connections (inlets), by tenant and by id.
    Inlets,
    /// Materialized merged profiles per graph and merge policy (a cache kept exact by the
    /// writes that change what it was computed from).
    ProfileViews,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 21] = [
        Table::Meta,
        Table::Sandboxes,
        Table::Schemas,
        Table::Datasets,
        Table::Batches,
        Table::Namespaces,
        Table::Identities,
        Table::Graphs,
        Table::Fragments,
        Table::Events,
        Table::MergePolicies,
        Table::ComputedAttributes,
        Table::Segments,
        Table::Memberships,
        Table::Destinations,
        Table::Outbox,
        Table::Jobs,
        Table::ChangeFeed,
        Table::Checkpoints,
        Table::Inlets,
        Table::ProfileViews,
    ];

    /// Stable on-disk name. Never rename: it names files in existing data directories.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Sandboxes => "sandboxes",
            Table::Schemas => "schemas",
            Table::Datasets => "datasets",
            Table::Batches => "batches",
            Table::Namespaces => "namespaces",
            Table::Identities => "identities",
            Table::Graphs => "graphs",
            Table::Fragments => "fragments",
            Table::Events => "events",
            Table::MergePolicies => "merge_policies",
            Table::ComputedAttributes => "computed_attributes",
            Table::Segments => "segments",
            Table::Memberships => "memberships",
            Table::Destinations => "destinations",
            Table::Outbox => "outbox",
            Table::Jobs => "jobs",
            Table::ChangeFeed => "change_feed",
            Table::Checkpoints => "checkpoints",
            Table::Inlets => "inlets",
            Table::ProfileViews => "profile_views",
        }
    }

    /// Whether the embedded backend keeps this table's values in its row cache: point-read,
    /// hot tables (identity pointers and graph heads on every linking record and lookup;
    /// sandbox, namespace and merge-policy revisions on every request; merged views, which
    /// are what a hot lookup returns).
    pub const fn row_cached(self) -> bool {
        matches!(
            self,
            Table::Sandboxes
                | Table::Namespaces
                | Table::Identities
                | Table::Graphs
                | Table::MergePolicies
                | Table::ProfileViews
        )
    }

    /// Position in [`Table::ALL`], used to index per-table handles.
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (position, table) in Table::ALL.iter().enumerate() {
            assert_eq!(table.index(), position, "{table:?}");
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Table::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Table::ALL.len());
    }
}
