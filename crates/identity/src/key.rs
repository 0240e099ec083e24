//! The identity a record carries, and its XID.

use base64::Engine as _;

use crate::error::{Error, Result};

/// A namespace code and an identity value (already normalised by ingestion).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct IdentityKey {
    /// Namespace code, e.g. `Email`, `ECID`, `CRMID`.
    pub namespace: String,
    /// Identity value.
    pub id: String,
}

impl IdentityKey {
    /// Builds a key.
    pub fn new(namespace: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            id: id.into(),
        }
    }

    /// The identity's XID.
    pub fn xid(&self) -> Xid {
        Xid::of(self)
    }
}

impl std::fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.namespace, self.id)
    }
}

/// AEP's opaque, URL-safe identity id. Tessera derives it from the identity itself
/// (base64url of `namespace NUL value`), so it needs no storage and decodes back to the
/// identity, for any tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Xid(String);

impl Xid {
    /// The XID of `key`.
    pub fn of(key: &IdentityKey) -> Self {
        let mut raw = Vec::with_capacity(key.namespace.len() + key.id.len() + 1);
        raw.extend_from_slice(key.namespace.as_bytes());
        raw.push(0);
        raw.extend_from_slice(key.id.as_bytes());
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
    }

    /// Parses a client-given XID.
    pub fn parse(text: &str) -> Result<IdentityKey> {
        let invalid = || Error::InvalidXid(text.to_owned());
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| invalid())?;
        let split = raw.iter().position(|b| *b == 0).ok_or_else(invalid)?;
        let (namespace, rest) = raw.split_at(split);
        let id = rest.get(1..).ok_or_else(invalid)?;
        let namespace = std::str::from_utf8(namespace).map_err(|_| invalid())?;
        let id = std::str::from_utf8(id).map_err(|_| invalid())?;
        if namespace.is_empty() || id.is_empty() {
            return Err(invalid());
        }
        Ok(IdentityKey::new(namespace, id))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Xid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn xids_round_trip_and_reject_garbage() {
        let key = IdentityKey::new("Email", "jane@example.com");
        let xid = key.xid();
        assert!(xid
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Xid::parse(xid.as_str()).unwrap(), key);
        assert!(Xid::parse("not base64 !").is_err());
        assert!(Xid::parse("YWJj").is_err(), "no separator");
    }
}
