//! The merged profile: fragments combined under a merge policy's attribute rule.
//!
//! - `timestampOrdered`: for each field the most recently updated fragment wins,
//!   non-conflicting fields from all fragments are kept.
//! - `dataSetPrecedence`: the fragment of the earliest-listed dataset wins; datasets not
//!   listed contribute nothing (AEP: "datasets not listed are not merged at all"). Between
//!   fragments of one dataset (several identities of one graph) the most recent wins.
//!
//! In both, `identityMap` is the union of the contributing fragments' maps. The result
//! depends only on the fragments, never on the order they are read in (DESIGN.md invariant
//! 3): fragments are applied weakest first with a total tie-break (rank, last-modified,
//! dataset, identity). Which fragments are passed (one identity or the whole graph) is the
//! caller's half of the policy.

use serde_json::{Map, Value};

use crate::fragment::Fragment;
use crate::merge::{overlay, Nulls};
use crate::policy::{AttributeMerge, MergeType};
use crate::IdentityKey;

/// A fragment with where it came from.
#[derive(Debug, Clone)]
pub struct Sourced {
    /// Dataset holding it.
    pub dataset: String,
    /// Identity it is filed under.
    pub identity: IdentityKey,
    /// The fragment.
    pub fragment: Fragment,
}

/// The merged profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// Merged XDM entity, `identityMap` included.
    pub entity: Map<String, Value>,
    /// Datasets that contributed, sorted.
    pub sources: Vec<String>,
    /// Receipts of the contributing writes, sorted.
    pub tags: Vec<String>,
    /// Latest last-modified time of the contributing fragments (ms).
    pub last_modified: i64,
}

/// Merges fragments timestamp-ordered; `graph` lists every identity of the profile, which
/// join the fragments' own identityMap entries in the merged `identityMap`.
pub fn timestamp_ordered(fragments: Vec<Sourced>, graph: &[IdentityKey]) -> Merged {
    merge(
        fragments,
        &AttributeMerge {
            kind: MergeType::TimestampOrdered,
            order: None,
        },
        graph,
    )
}

/// Merges fragments under `rule`; `graph` as for [`timestamp_ordered`].
pub fn merge(mut fragments: Vec<Sourced>, rule: &AttributeMerge, graph: &[IdentityKey]) -> Merged {
    // Rank 0 is weakest. Timestamp order: all equal. Precedence: the first listed dataset
    // ranks highest; unlisted ones are dropped.
    let rank = |dataset: &str| -> Option<usize> {
        match (&rule.kind, &rule.order) {
            (MergeType::TimestampOrdered, _) => Some(0),
            (MergeType::DataSetPrecedence, Some(order)) => order
                .iter()
                .position(|d| d == dataset)
                .map(|position| order.len() - position),
            (MergeType::DataSetPrecedence, None) => None,
        }
    };
    let mut ranked: Vec<(usize, Sourced)> = fragments
        .drain(..)
        .filter_map(|f| rank(&f.dataset).map(|r| (r, f)))
        .collect();
    ranked.sort_by(|(ra, a), (rb, b)| {
        (ra, a.fragment.last_modified, &a.dataset, &a.identity).cmp(&(
            rb,
            b.fragment.last_modified,
            &b.dataset,
            &b.identity,
        ))
    });
    let fragments: Vec<Sourced> = ranked.into_iter().map(|(_, f)| f).collect();
    let mut entity = Map::new();
    // identityMap: namespace → entries, keyed by id so each identity appears once; the
    // most recent fragment's entry (with its flags) wins.
    let mut identity_map: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, Value>,
    > = std::collections::BTreeMap::new();
    let mut sources = std::collections::BTreeSet::new();
    let mut tags = std::collections::BTreeSet::new();
    let mut last_modified = 0;
    for sourced in &fragments {
        let mut record = sourced.fragment.record.clone();
        if let Some(Value::Object(map)) = record.remove("identityMap") {
            for (namespace, entries) in map {
                for entry in entries.as_array().into_iter().flatten() {
                    if let Some(id) = entry.get("id").and_then(Value::as_str) {
                        identity_map
                            .entry(namespace.clone())
                            .or_default()
                            .insert(id.to_owned(), entry.clone());
                    }
                }
            }
        }
        overlay(&mut entity, &record, Nulls::Ignore);
        sources.insert(sourced.dataset.clone());
        tags.insert(sourced.fragment.xaction_id.clone());
        last_modified = last_modified.max(sourced.fragment.last_modified);
    }
    for identity in graph {
        let known = identity_map.iter().any(|(ns, entries)| {
            ns.eq_ignore_ascii_case(&identity.namespace) && entries.contains_key(&identity.id)
        });
        if !known {
            identity_map
                .entry(identity.namespace.clone())
                .or_default()
                .insert(
                    identity.id.clone(),
                    serde_json::json!({ "id": identity.id }),
                );
        }
    }
    if !identity_map.is_empty() {
        let map: Map<String, Value> = identity_map
            .into_iter()
            .map(|(ns, entries)| (ns, Value::Array(entries.into_values().collect())))
            .collect();
        entity.insert("identityMap".to_owned(), Value::Object(map));
    }
    Merged {
        entity,
        sources: sources.into_iter().collect(),
        tags: tags.into_iter().collect(),
        last_modified,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn sourced(dataset: &str, id: &str, modified: i64, record: Value) -> Sourced {
        Sourced {
            dataset: dataset.into(),
            identity: IdentityKey::new("CRMID", id),
            fragment: Fragment {
                v: 1,
                last_modified: modified,
                xaction_id: format!("x{modified}"),
                record: record.as_object().unwrap().clone(),
            },
        }
    }

    #[test]
    fn most_recent_fragment_wins_per_field_and_identities_unite() {
        let fragments = vec![
            sourced(
                "crm",
                "c1",
                10,
                json!({"person": {"name": {"firstName": "Jane", "lastName": "Doe"}}, "loyalty": {"tier": "gold"},
                "identityMap": {"CRMID": [{"id": "c1", "primary": true}]}}),
            ),
            sourced(
                "web",
                "c1",
                20,
                json!({"person": {"name": {"lastName": "Smith"}}, "loyalty": {"tier": null},
                "identityMap": {"Email": [{"id": "j@x.com"}]}}),
            ),
        ];
        let graph = vec![
            IdentityKey::new("CRMID", "c1"),
            IdentityKey::new("Email", "j@x.com"),
            IdentityKey::new("ECID", "e1"),
        ];
        let merged = timestamp_ordered(fragments, &graph);
        assert_eq!(
            merged.entity["person"],
            json!({"name": {"firstName": "Jane", "lastName": "Smith"}})
        );
        assert_eq!(
            merged.entity["loyalty"],
            json!({"tier": "gold"}),
            "a null is an absent value, not a deletion"
        );
        assert_eq!(
            merged.entity["identityMap"]["CRMID"],
            json!([{"id": "c1", "primary": true}])
        );
        assert_eq!(
            merged.entity["identityMap"]["ECID"],
            json!([{"id": "e1"}]),
            "graph identities join the map"
        );
        assert_eq!(merged.sources, ["crm", "web"]);
        assert_eq!(merged.last_modified, 20);
    }

    #[test]
    fn dataset_precedence_wins_regardless_of_time_and_drops_unlisted_datasets() {
        let fragments = vec![
            sourced(
                "crm",
                "c1",
                10,
                json!({"a": "crm", "b": "crm", "identityMap": {"CRMID": [{"id": "c1"}]}}),
            ),
            sourced("web", "c1", 30, json!({"a": "web", "c": "web"})),
            sourced("loyalty", "c1", 40, json!({"a": "loyalty", "d": "loyalty"})),
        ];
        let rule = AttributeMerge {
            kind: MergeType::DataSetPrecedence,
            order: Some(vec!["crm".into(), "web".into()]),
        };
        let merged = merge(fragments, &rule, &[]);
        assert_eq!(
            merged.entity["a"],
            json!("crm"),
            "crm outranks newer web data"
        );
        assert_eq!(
            merged.entity["c"],
            json!("web"),
            "non-conflicting fields kept"
        );
        assert!(
            !merged.entity.contains_key("d"),
            "unlisted dataset excluded"
        );
        assert_eq!(merged.sources, ["crm", "web"]);
        assert_eq!(merged.last_modified, 30);
    }

    proptest! {
        #[test]
        fn precedence_merge_does_not_depend_on_arrival_order(
            values in proptest::collection::vec((0i64..5, 0u8..3, 0u8..4, 0usize..4), 1..8),
            seed in any::<u64>(),
        ) {
            let fragments: Vec<Sourced> = values
                .iter()
                .enumerate()
                .map(|(i, (modified, field, value, dataset))| {
                    sourced(&format!("ds{dataset}"), &format!("c{i}"), *modified, json!({ "f": { format!("k{field}"): value } }))
                })
                .collect();
            let mut shuffled = fragments.clone();
            shuffled.rotate_left((seed % fragments.len() as u64) as usize);
            shuffled.reverse();
            let rule = AttributeMerge {
                kind: MergeType::DataSetPrecedence,
                order: Some(vec!["ds2".into(), "ds0".into(), "ds1".into()]),
            };
            prop_assert_eq!(merge(fragments, &rule, &[]), merge(shuffled, &rule, &[]));
        }

        #[test]
        fn merge_does_not_depend_on_arrival_order(
            values in proptest::collection::vec((0i64..5, 0u8..3, 0u8..4), 1..8),
            seed in any::<u64>(),
        ) {
            let fragments: Vec<Sourced> = values
                .iter()
                .enumerate()
                .map(|(i, (modified, field, value))| {
                    sourced(&format!("ds{i}"), "c1", *modified, json!({ "f": { format!("k{field}"): value } }))
                })
                .collect();
            let mut shuffled = fragments.clone();
            // A deterministic shuffle from the seed.
            let len = shuffled.len();
            for i in 0..len {
                let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % len as u64) as usize;
                shuffled.swap(i, j);
            }
            prop_assert_eq!(timestamp_ordered(fragments, &[]), timestamp_ordered(shuffled, &[]));
        }
    }
}
