//! Identity graph linking rules (AEP "identity settings"): **unique** namespaces — at most
//! one identity of each per graph — and a **namespace priority** order.
//!
//! When a record would put two identities of a unique namespace into one graph, the graph's
//! links are replayed (AEP's identity optimization algorithm): first the links the incoming
//! record asserts (the most recent event wins), then the others by the sum of their ends'
//! priorities (lower first: person links before device and cookie links), newest first; a
//! link that would join two identities of a unique namespace is removed. The docs state the
//! sort keys loosely; this order reproduces every outcome they state in text (shared device,
//! bad email, example configurations A–F).
//!
//! Priority also picks the primary identity of experience events: the highest-priority
//! namespace present, and an event with two identities of that namespace is refused.
//!
//! AEP configures these only in its UI; Tessera exposes them at
//! `/data/core/identity/settings`. Without settings, every link is kept.

use tessera_model::Tenant;
use tessera_store::{Key, Store, Table, WriteBatch};

use crate::error::{Error, Result};
use crate::namespace::{IdType, Namespaces};

/// Most unique namespaces (AEP's limit).
pub const MAX_UNIQUE: usize = 3;

/// A sandbox's linking rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkingRules {
    /// Namespace codes limited to one identity per graph.
    #[serde(default)]
    pub unique_namespaces: Vec<String>,
    /// Namespace codes, highest priority first.
    #[serde(default)]
    pub namespace_priority: Vec<String>,
}

impl LinkingRules {
    /// Whether any rule is configured.
    pub fn is_active(&self) -> bool {
        !self.unique_namespaces.is_empty() || !self.namespace_priority.is_empty()
    }

    /// Whether `code` is unique.
    pub fn is_unique(&self, code: &str) -> bool {
        self.unique_namespaces
            .iter()
            .any(|u| u.eq_ignore_ascii_case(code))
    }

    /// Priority rank of `code`: 1 is highest; unlisted namespaces rank after every listed one.
    pub fn priority(&self, code: &str) -> usize {
        self.namespace_priority
            .iter()
            .position(|p| p.eq_ignore_ascii_case(code))
            .map_or(self.namespace_priority.len() + 1, |i| i + 1)
    }

    /// Checks the rules against the sandbox's namespaces (AEP's settings constraints), and
    /// returns them with codes in their registered spelling.
    pub fn validated(&self, namespaces: &Namespaces) -> std::result::Result<Self, String> {
        let canonical = |code: &String| -> std::result::Result<(String, IdType), String> {
            namespaces
                .by_code(code)
                .map(|n| (n.code.clone(), n.id_type))
                .ok_or_else(|| format!("namespace {code:?} is not registered in this sandbox"))
        };
        if self.unique_namespaces.len() > MAX_UNIQUE {
            return Err(format!("at most {MAX_UNIQUE} namespaces can be unique"));
        }
        let mut unique = Vec::new();
        for code in &self.unique_namespaces {
            let (code, id_type) = canonical(code)?;
            if matches!(id_type, IdType::Cookie | IdType::Device) {
                return Err(format!(
                    "{code} is a device or cookie namespace and cannot be unique"
                ));
            }
            if !unique.contains(&code) {
                unique.push(code);
            }
        }
        let mut priority = Vec::new();
        let mut seen_device = false;
        for code in &self.namespace_priority {
            let (code, id_type) = canonical(code)?;
            let device = matches!(id_type, IdType::Cookie | IdType::Device);
            if seen_device && !device {
                return Err(format!(
                    "person namespace {code} cannot rank below a device or cookie namespace"
                ));
            }
            seen_device |= device;
            if priority.contains(&code) {
                return Err(format!("{code} is listed twice in the priority"));
            }
            priority.push(code);
        }
        Ok(Self {
            unique_namespaces: unique,
            namespace_priority: priority,
        })
    }
}

fn key(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("~settings").finish()
}

/// The sandbox's rules (empty when never set).
pub fn load(store: &dyn Store, tenant: &Tenant) -> Result<LinkingRules> {
    match store.get(Table::Namespaces, &key(tenant))? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            what: "identity settings",
            reason: e.to_string(),
        }),
        None => Ok(LinkingRules::default()),
    }
}

/// Stores already validated rules.
pub fn save(store: &dyn Store, tenant: &Tenant, rules: &LinkingRules) -> Result<()> {
    let bytes = serde_json::to_vec(rules).map_err(|e| Error::Corrupt {
        what: "identity settings",
        reason: e.to_string(),
    })?;
    let mut batch = WriteBatch::new();
    batch.put(Table::Namespaces, &key(tenant), bytes);
    crate::namespace::bump_revision(&mut batch, tenant);
    store.commit(batch)?;
    Ok(())
}
