//! What ingestion reads out of an XDM record before writing it: its identities (identityMap
//! entries plus fields marked by identity descriptors), the primary one, and for events the
//! `_id` and `timestamp`.
//!
//! Namespace codes must be registered in the sandbox and identity values are normalised per
//! namespace type (`tessera_identity::Namespaces::normalize`), so the same person is always
//! filed under the same key.

use serde_json::{Map, Value};
use tessera_identity::Namespaces;
use tessera_profile::IdentityKey;
use tessera_schema::IdentityDescriptor;

use crate::error::{Rejection, RejectionCode};

/// An identity found in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundIdentity {
    /// Namespace code and normalised value.
    pub key: IdentityKey,
    /// Marked primary (identityMap `primary: true` or a primary descriptor).
    pub primary: bool,
}

fn pointer_to_path(pointer: &str) -> String {
    if pointer.starts_with('/') {
        pointer.to_owned()
    } else {
        format!("/{}", pointer.replace('.', "/"))
    }
}

/// Collects the record's identities, at most `max` of them.
pub fn identities(
    record: &Map<String, Value>,
    descriptors: &[IdentityDescriptor],
    namespaces: &Namespaces,
    max: usize,
) -> Result<Vec<FoundIdentity>, Rejection> {
    let mut found: Vec<FoundIdentity> = Vec::new();
    let mut push =
        |namespace: &str, raw: &str, primary: bool, path: String| -> Result<(), Rejection> {
            let (code, id) = namespaces.normalize(namespace, raw).map_err(|reason| {
                Rejection::field(RejectionCode::InvalidIdentity, &path, reason)
            })?;
            let key = IdentityKey::new(code, id);
            match found.iter_mut().find(|f| f.key == key) {
                Some(existing) => existing.primary |= primary,
                None => found.push(FoundIdentity { key, primary }),
            }
            Ok(())
        };
    if let Some(map) = record.get("identityMap") {
        let Some(map) = map.as_object() else {
            return Err(Rejection::field(
                RejectionCode::InvalidIdentity,
                "/identityMap",
                "must be an object",
            ));
        };
        for (namespace, entries) in map {
            let Some(entries) = entries.as_array() else {
                return Err(Rejection::field(
                    RejectionCode::InvalidIdentity,
                    &format!("/identityMap/{namespace}"),
                    "must be an array of identities",
                ));
            };
            for (index, entry) in entries.iter().enumerate() {
                let path = format!("/identityMap/{namespace}/{index}/id");
                let Some(id) = entry.get("id").and_then(Value::as_str) else {
                    return Err(Rejection::field(
                        RejectionCode::InvalidIdentity,
                        &path,
                        "id must be a string",
                    ));
                };
                let primary = entry
                    .get("primary")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                push(namespace, id, primary, path)?;
            }
        }
    }
    let document = Value::Object(record.clone());
    for descriptor in descriptors {
        let path = pointer_to_path(&descriptor.source_property);
        if let Some(value) = document.pointer(&path) {
            match value {
                Value::String(id) => push(&descriptor.namespace, id, descriptor.is_primary, path)?,
                Value::Null => {}
                _ => {
                    return Err(Rejection::field(
                        RejectionCode::InvalidIdentity,
                        &path,
                        "identity field must be a string",
                    ));
                }
            }
        }
    }
    if found.len() > max {
        return Err(Rejection::new(
            RejectionCode::TooManyIdentities,
            format!(
                "record carries {} identities; at most {max} are allowed",
                found.len()
            ),
        ));
    }
    Ok(found)
}

/// The identity the record is filed under: the one marked primary, or the only one.
pub fn primary(identities: &[FoundIdentity]) -> Result<&IdentityKey, Rejection> {
    let marked: Vec<&FoundIdentity> = identities.iter().filter(|f| f.primary).collect();
    match (marked.as_slice(), identities) {
        ([one], _) => Ok(&one.key),
        ([], [only]) => Ok(&only.key),
        ([], []) => Err(Rejection::new(
            RejectionCode::MissingPrimaryIdentity,
            "the record carries no identity (identityMap or a field with an identity descriptor)",
        )),
        ([], _) => Err(Rejection::new(
            RejectionCode::MissingPrimaryIdentity,
            "the record carries several identities and none is marked primary",
        )),
        (_, _) => Err(Rejection::new(
            RejectionCode::MissingPrimaryIdentity,
            format!(
                "several identities are marked primary: {}",
                marked
                    .iter()
                    .map(|f| f.key.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// The primary identity of an experience event under a namespace priority: the identity of
/// the highest-priority namespace present (identityMap `primary` flags are ignored, as AEP's
/// Profile does once priorities are set). Two identities of that namespace make the event
/// ambiguous, and it is refused.
pub fn primary_by_priority<'f>(
    identities: &'f [FoundIdentity],
    rules: &tessera_identity::LinkingRules,
) -> Result<&'f IdentityKey, Rejection> {
    let best = identities
        .iter()
        .map(|f| rules.priority(&f.key.namespace))
        .min()
        .ok_or_else(|| {
            Rejection::new(
                RejectionCode::MissingPrimaryIdentity,
                "the event carries no identity",
            )
        })?;
    let top: Vec<&FoundIdentity> = identities
        .iter()
        .filter(|f| rules.priority(&f.key.namespace) == best)
        .collect();
    let namespaces: std::collections::BTreeSet<String> = top
        .iter()
        .map(|f| f.key.namespace.to_ascii_lowercase())
        .collect();
    match top.as_slice() {
        [only] => Ok(&only.key),
        _ if namespaces.len() == 1 => Err(Rejection::new(
            RejectionCode::InvalidIdentity,
            format!(
                "the event carries {} identities of its highest-priority namespace {}; exactly one is allowed",
                top.len(),
                top.first().map(|f| f.key.namespace.as_str()).unwrap_or_default()
            ),
        )),
        // Several unlisted namespaces share the lowest rank: fall back to the marked primary.
        _ => primary(identities),
    }
}

/// The `_id` and `timestamp` (ms) of an experience event.
pub fn event_id_and_time(event: &Map<String, Value>) -> Result<(String, i64), Rejection> {
    let id = match event.get("_id") {
        Some(Value::String(id)) if !id.trim().is_empty() => id.trim().to_owned(),
        _ => {
            return Err(Rejection::field(
                RejectionCode::ValidationFailed,
                "/_id",
                "experience events need a non-empty string _id",
            ))
        }
    };
    let Some(Value::String(text)) = event.get("timestamp") else {
        return Err(Rejection::field(
            RejectionCode::ValidationFailed,
            "/timestamp",
            "experience events need a timestamp",
        ));
    };
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            Rejection::field(
                RejectionCode::ValidationFailed,
                "/timestamp",
                format!("not an RFC 3339 date-time: {e}"),
            )
        })?;
    let ms = i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).map_err(|_| {
        Rejection::field(
            RejectionCode::ValidationFailed,
            "/timestamp",
            "out of range",
        )
    })?;
    Ok((id, ms))
}

/// `extSourceSystemAudit.lastUpdatedDate` in ms, when the record carries a valid one: the
/// fragment's last-modified time for timestamp-ordered merging.
pub fn source_last_updated(record: &Map<String, Value>) -> Option<i64> {
    let text = record
        .get("extSourceSystemAudit")?
        .get("lastUpdatedDate")?
        .as_str()?;
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// The identities of a record without descriptors, under the standard namespaces.
    fn found(v: Value) -> Vec<FoundIdentity> {
        identities(&record(v), &[], &namespaces(), 20).unwrap()
    }

    fn namespaces() -> Namespaces {
        let dir = tempfile::tempdir().unwrap();
        let store = tessera_store::EmbeddedStore::open(dir.path(), Default::default()).unwrap();
        Namespaces::load(
            &store,
            &tessera_model::Tenant::parse("T@AdobeOrg", "prod").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn identities_from_map_and_descriptors_with_primary() {
        let rec = record(json!({
            "identityMap": {"Email": [{"id": "A@x.com", "primary": true}], "ECID": [{"id": "1".repeat(38)}]},
            "personalEmail": {"address": "a@X.com"},
            "loyalty": {"loyaltyID": "L-1"}
        }));
        let descriptors = vec![
            IdentityDescriptor {
                source_property: "/personalEmail/address".into(),
                namespace: "Email".into(),
                is_primary: false,
            },
            IdentityDescriptor {
                source_property: "/loyalty/loyaltyID".into(),
                namespace: "CRMID".into(),
                is_primary: false,
            },
        ];
        let found = identities(&rec, &descriptors, &namespaces(), 20).unwrap();
        assert_eq!(
            found.len(),
            3,
            "the descriptor's email is the same identity after normalisation"
        );
        assert_eq!(
            primary(&found).unwrap(),
            &IdentityKey::new("Email", "a@x.com")
        );
    }

    #[test]
    fn primary_rules() {
        let one = found(json!({"identityMap": {"CRMID": [{"id": "c1"}]}}));
        assert_eq!(primary(&one).unwrap().id, "c1");
        let two = found(json!({"identityMap": {"CRMID": [{"id": "c1"}, {"id": "c2"}]}}));
        assert_eq!(
            primary(&two).unwrap_err().code,
            RejectionCode::MissingPrimaryIdentity
        );
        let none = identities(&record(json!({"a": 1})), &[], &namespaces(), 20).unwrap();
        assert_eq!(
            primary(&none).unwrap_err().code,
            RejectionCode::MissingPrimaryIdentity
        );
    }

    /// AEP's documented example (namespace-priority.md): priority CRMID, IDFA, GAID, ECID,
    /// AAID; the `primary` flags in the identityMap are ignored.
    #[test]
    fn event_primaries_follow_the_namespace_priority() {
        let rules = tessera_identity::LinkingRules {
            unique_namespaces: Vec::new(),
            namespace_priority: ["CRMID", "IDFA", "GAID", "ECID", "AAID"]
                .map(String::from)
                .to_vec(),
        };
        let ecid = "1".repeat(38);
        let cases = [
            (vec!["ECID"], "ECID"),
            (vec!["ECID", "IDFA"], "IDFA"),
            (vec!["CRMID", "ECID"], "CRMID"),
            (vec!["CRMID", "ECID", "AAID"], "CRMID"),
            (vec!["CRMID", "GAID", "ECID"], "CRMID"),
        ];
        for (present, expected) in cases {
            let mut map = Map::new();
            for (n, namespace) in present.iter().enumerate() {
                let id = if *namespace == "ECID" {
                    ecid.clone()
                } else {
                    format!("{namespace}-1")
                };
                // The last one is marked primary, to show the flag does not decide.
                map.insert(
                    (*namespace).to_owned(),
                    json!([{"id": id, "primary": n + 1 == present.len()}]),
                );
            }
            let carried = found(json!({ "identityMap": map }));
            assert_eq!(
                primary_by_priority(&carried, &rules).unwrap().namespace,
                expected,
                "{present:?}"
            );
        }
        let two_crmids = found(json!({"identityMap": {"CRMID": [{"id": "c1"}, {"id": "c2"}]}}));
        assert_eq!(
            primary_by_priority(&two_crmids, &rules).unwrap_err().code,
            RejectionCode::InvalidIdentity
        );
    }

    #[test]
    fn bad_identities_are_rejected_with_their_path() {
        let bad = identities(
            &record(json!({"identityMap": {"ECID": [{"id": "12"}]}})),
            &[],
            &namespaces(),
            20,
        )
        .unwrap_err();
        assert_eq!(bad.code, RejectionCode::InvalidIdentity);
        assert_eq!(bad.problems[0].path, "/identityMap/ECID/0/id");
        let many: Vec<Value> = (0..21).map(|i| json!({"id": format!("c{i}")})).collect();
        let too_many = identities(
            &record(json!({"identityMap": {"CRMID": many}})),
            &[],
            &namespaces(),
            20,
        )
        .unwrap_err();
        assert_eq!(too_many.code, RejectionCode::TooManyIdentities);
        let unknown = identities(
            &record(json!({"identityMap": {"Loyalty": [{"id": "L1"}]}})),
            &[],
            &namespaces(),
            20,
        )
        .unwrap_err();
        assert_eq!(unknown.code, RejectionCode::InvalidIdentity);
        assert!(
            unknown.message.contains("not registered"),
            "{}",
            unknown.message
        );
    }

    #[test]
    fn event_fields() {
        let (id, ms) = event_id_and_time(&record(
            json!({"_id": "e1", "timestamp": "2024-01-02T03:04:05.678Z"}),
        ))
        .unwrap();
        assert_eq!((id.as_str(), ms), ("e1", 1_704_164_645_678));
        assert_eq!(
            event_id_and_time(&record(json!({"timestamp": "2024-01-02T03:04:05Z"})))
                .unwrap_err()
                .problems[0]
                .path,
            "/_id"
        );
        assert_eq!(
            event_id_and_time(&record(json!({"_id": "e", "timestamp": "yesterday"})))
                .unwrap_err()
                .problems[0]
                .path,
            "/timestamp"
        );
    }
}
