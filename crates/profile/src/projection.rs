//! Field projection: keeping only the dotted paths a caller asked for (`fields=a.b,c`).
//!
//! Shared by the profile lookup, the event lookup and profile export, so that every API that
//! takes AEP's `fields` parameter reads it the same way: paths are comma-separated, blanks are
//! ignored, a path that does not exist (or runs through a non-object) contributes nothing, and
//! arrays are kept whole (AEP projects into objects only).
//!
//! [`Projection`] is the same idea for a reader that must see everything under its paths
//! (the computed-attribute consumer, through ingestion's hand-over of events): built once,
//! applied in place (what is dropped is freed, nothing is copied), and a path that runs
//! through an array keeps the whole array, since PQL looks a field up in every element.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Keeps only the requested dotted paths of `entity`.
pub fn project(entity: &Map<String, Value>, fields: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let parts: Vec<&str> = field.split('.').collect();
        let mut source = Some(entity);
        let mut value = None;
        for (index, part) in parts.iter().enumerate() {
            let Some(map) = source else { break };
            match map.get(*part) {
                Some(found) if index + 1 == parts.len() => value = Some(found.clone()),
                Some(Value::Object(next)) => source = Some(next),
                _ => break,
            }
        }
        let Some(value) = value else { continue };
        let mut target = &mut out;
        for (index, part) in parts.iter().enumerate() {
            if index + 1 == parts.len() {
                target.insert((*part).to_owned(), value.clone());
                break;
            }
            let entry = target
                .entry((*part).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(next) => target = next,
                _ => break,
            }
        }
    }
    out
}

/// Field paths of an event, as a tree: a name maps to `None` for its whole value, or to the
/// paths kept inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection(BTreeMap<String, Option<Projection>>);

impl Projection {
    /// The projection keeping every one of `paths` (and what lies under them).
    pub fn of_paths<'a>(paths: impl IntoIterator<Item = &'a [String]>) -> Self {
        let mut projection = Projection::default();
        for path in paths {
            projection.add(path);
        }
        projection
    }

    /// Also keeps `path` and what lies under it (an empty path adds nothing).
    pub fn add(&mut self, path: &[String]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        match self.0.get_mut(first) {
            Some(None) => {}
            Some(Some(inner)) if !rest.is_empty() => inner.add(rest),
            _ if rest.is_empty() => {
                self.0.insert(first.clone(), None);
            }
            _ => {
                self.0
                    .insert(first.clone(), Some(Projection::of_paths([rest])));
            }
        }
    }

    /// Also keeps what `other` keeps.
    pub fn merge(&mut self, other: &Projection) {
        for (name, theirs) in &other.0 {
            match (self.0.get_mut(name), theirs) {
                (Some(None), _) => {}
                (Some(mine @ Some(_)), None) => *mine = None,
                (Some(Some(mine)), Some(theirs)) => mine.merge(theirs),
                (None, _) => {
                    self.0.insert(name.clone(), theirs.clone());
                }
            }
        }
    }

    /// Whether everything `other` keeps is kept here.
    pub fn covers(&self, other: &Projection) -> bool {
        other
            .0
            .iter()
            .all(|(name, theirs)| match (self.0.get(name), theirs) {
                (None, _) => false,
                (Some(None), _) => true,
                (Some(Some(_)), None) => false,
                (Some(Some(mine)), Some(theirs)) => mine.covers(theirs),
            })
    }

    /// Drops what is not kept; a value that is not an object is kept whole.
    pub fn apply(&self, event: &mut Map<String, Value>) {
        event.retain(|name, value| match self.0.get(name) {
            None => false,
            Some(None) => true,
            Some(Some(inner)) => {
                if let Value::Object(fields) = value {
                    inner.apply(fields);
                }
                true
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keeps_requested_paths_and_ignores_missing_ones() {
        let entity = json!({"person": {"name": {"firstName": "J", "lastName": "D"}, "age": 3},
            "tags": ["a"], "x": 1});
        let projected = project(
            entity.as_object().unwrap(),
            " person.name.firstName, tags ,nope.deeper,x.y,",
        );
        assert_eq!(
            Value::Object(projected),
            json!({"person": {"name": {"firstName": "J"}}, "tags": ["a"]})
        );
    }

    fn tree(paths: &[&str]) -> Projection {
        let paths: Vec<Vec<String>> = paths
            .iter()
            .map(|p| p.split('.').map(str::to_owned).collect())
            .collect();
        Projection::of_paths(paths.iter().map(Vec::as_slice))
    }

    #[test]
    fn projections_keep_what_lies_under_their_paths() {
        let mut event = match json!({
            "_id": "a", "eventType": "web",
            "web": {"webPageDetails": {"name": "home", "URL": "u"}, "webReferrer": {"URL": "r"}},
            "productListItems": [{"SKU": "s", "name": "n"}],
            "identityMap": {"ECID": [{"id": "1"}]}
        }) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let cut = tree(&[
            "eventType",
            "web.webPageDetails.name",
            "productListItems.SKU",
        ]);
        cut.apply(&mut event);
        assert_eq!(
            Value::Object(event),
            json!({"eventType": "web", "web": {"webPageDetails": {"name": "home"}},
                "productListItems": [{"SKU": "s", "name": "n"}]}),
            "arrays are kept whole"
        );
        // A shorter path keeps the whole value; merging keeps the wider of the two.
        assert_eq!(tree(&["web.a", "web"]), tree(&["web"]));
        assert_eq!(tree(&["web", "web.a"]), tree(&["web"]));
        let mut merged = tree(&["web.a.b", "eventType"]);
        merged.merge(&tree(&["web.a", "commerce.order"]));
        assert_eq!(merged, tree(&["web.a", "eventType", "commerce.order"]));
        merged.merge(&tree(&["commerce"]));
        assert_eq!(merged, tree(&["web.a", "eventType", "commerce"]));
        assert!(merged.covers(&tree(&["web.a.x", "commerce.order.priceTotal"])));
        assert!(!merged.covers(&tree(&["web"])));
        assert!(!merged.covers(&tree(&["timestamp"])));
    }
}
