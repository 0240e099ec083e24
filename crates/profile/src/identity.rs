//! The identity a fragment or event is filed under.

/// A namespace code and an identity value, as stored (already normalised by ingestion).
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
}

impl std::fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.namespace, self.id)
    }
}
