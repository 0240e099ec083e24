//! Resource identifiers: `$id` URIs, their dot-notation `meta:altId` twins, tenant ids and
//! freshly minted schema and descriptor ids.
//!
//! AEP identifies every resource by a URI `$id` (`https://ns.adobe.com/xdm/context/profile`)
//! and, to be REST-friendly, by `meta:altId` (`_xdm.context.profile`): the path after the
//! host with `/` written as `.` and a leading `_`. Tessera mints ids whose path segments
//! never contain dots, so the two forms convert into each other without a lookup table.

use tessera_model::{OrgId, Tenant};

/// Host prefix of every XDM `$id`.
pub const NS_PREFIX: &str = "https://ns.adobe.com/";
/// Suffix that turns a class `$id` into its union's `$id`.
pub const UNION_SUFFIX: &str = "__union";
/// Longest tenant id accepted.
const MAX_TENANT_ID_LEN: usize = 64;

/// The `meta:altId` of an `$id` (`None` for URIs outside `https://ns.adobe.com/`).
pub fn alt_id_of(id: &str) -> Option<String> {
    let path = id.strip_prefix(NS_PREFIX)?;
    Some(format!("_{}", path.replace('/', ".")))
}

/// The `$id` named by `reference`, which is either an `$id` or a `meta:altId`.
pub fn canonical_id(reference: &str) -> String {
    match reference.strip_prefix('_') {
        Some(path) if !reference.contains('/') => format!("{NS_PREFIX}{}", path.replace('.', "/")),
        _ => reference.to_owned(),
    }
}

/// The tenant id AEP would show for an organisation when none was set: the part of the
/// org id before `@`, lower-cased, letters and digits only (prefixed with `t` when it
/// would otherwise be empty or start with a digit). Stable, so every node derives the same.
pub fn derive_tenant_id(org: &OrgId) -> String {
    let head = org.as_str().split('@').next().unwrap_or_default();
    let mut id: String = head
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(MAX_TENANT_ID_LEN - 1)
        .collect();
    if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
        id.insert(0, 't');
    }
    id
}

/// Checks a tenant id chosen by an operator: 1–64 lowercase letters, digits or `_`,
/// starting with a letter (it becomes a field name `_{id}` and a URI segment).
pub fn validate_tenant_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > MAX_TENANT_ID_LEN {
        return Err("must be 1 to 64 characters");
    }
    if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err("may contain only lowercase letters, digits and '_'");
    }
    Ok(())
}

/// A new tenant schema `$id`: `https://ns.adobe.com/{TENANT_ID}/schemas/{32 hex}`.
pub fn mint_schema_id(tenant_id: &str) -> String {
    format!(
        "{NS_PREFIX}{tenant_id}/schemas/{}",
        uuid::Uuid::new_v4().simple()
    )
}

/// A new descriptor `@id`: 40 hex digits, the shape AEP uses.
pub fn mint_descriptor_id() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.push_str(&uuid::Uuid::new_v4().simple().to_string());
    id.truncate(40);
    id
}

/// The union `$id` of a class.
pub fn union_id(class_id: &str) -> String {
    format!("{class_id}{UNION_SUFFIX}")
}

/// Key prefix material: the tenant a stored key belongs to (kept here so every module
/// builds keys the same way).
pub(crate) fn scope(tenant: &Tenant) -> tessera_store::Scope {
    tessera_store::Scope::Tenant(tenant.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_id_round_trips_documented_examples() {
        let id = "https://ns.adobe.com/xdm/context/profile";
        assert_eq!(alt_id_of(id).as_deref(), Some("_xdm.context.profile"));
        assert_eq!(canonical_id("_xdm.context.profile"), id);
        assert_eq!(canonical_id(id), id);
        let tenant_schema = "https://ns.adobe.com/acme/schemas/0238be93d3e7a06aec5e0655955901ec";
        assert_eq!(
            alt_id_of(tenant_schema).as_deref(),
            Some("_acme.schemas.0238be93d3e7a06aec5e0655955901ec")
        );
        assert_eq!(
            canonical_id("_xdm.context.profile__union"),
            "https://ns.adobe.com/xdm/context/profile__union"
        );
        assert_eq!(alt_id_of("urn:other"), None);
    }

    #[test]
    fn tenant_id_is_derived_from_the_org() {
        let org = OrgId::parse("ACME@AdobeOrg").unwrap();
        assert_eq!(derive_tenant_id(&org), "acme");
        let digits = OrgId::parse("5309E3A5C3B4A2D50A49@AdobeOrg").unwrap();
        assert_eq!(derive_tenant_id(&digits), "t5309e3a5c3b4a2d50a49");
        assert!(validate_tenant_id(&derive_tenant_id(&digits)).is_ok());
        assert!(validate_tenant_id("Bad").is_err());
        assert!(validate_tenant_id("9x").is_err());
        assert!(validate_tenant_id("tessera").is_ok());
    }

    #[test]
    fn minted_ids_have_aep_shapes() {
        let id = mint_schema_id("acme");
        assert!(id.starts_with("https://ns.adobe.com/acme/schemas/"));
        assert_eq!(id.len(), "https://ns.adobe.com/acme/schemas/".len() + 32);
        let descriptor = mint_descriptor_id();
        assert_eq!(descriptor.len(), 40);
        assert!(descriptor.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
