//! Identity namespaces: the standard ones every sandbox has, and custom ones per sandbox
//! (`/data/core/idnamespace/identities`), plus the per-type normalisation and validation of
//! identity values.
//!
//! Standard codes and ids are AEP's (privacy-service appendix, preview-sample-status, the
//! identity docs' samples). `CRMID` is a custom namespace in AEP; Tessera ships it built in
//! (id 100, an id AEP does not use) because nearly every deployment creates it.
//! Codes are matched case-insensitively and reported in their registered spelling; custom
//! codes are unique case-insensitively against standard and custom codes.

use std::collections::HashMap;

use rand::Rng;
use tessera_model::Tenant;
use tessera_store::{Direction, Key, ScanRange, Store, Table, WriteBatch};

use crate::error::{Error, Result};

/// Longest non-ECID identity value (AEP guardrail).
pub const MAX_VALUE_LEN: usize = 1024;
/// Values AEP blocks from ingestion whatever the namespace.
const BLOCKED_VALUES: [&str; 3] = ["null", "anonymous", "invalid"];

/// Identity type of a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdType {
    /// Browser cookies (ECID, AAID...).
    Cookie,
    /// Person identifiers that span devices (CRM ids, logins).
    CrossDevice,
    /// Device ids (IDFA, GAID...).
    Device,
    /// Email addresses (plain or hashed).
    Email,
    /// Mobile numbers.
    Mobile,
    /// Identifiers that are not people; they never link graphs.
    NonPeople,
    /// Phone numbers (plain or hashed).
    Phone,
}

impl IdType {
    /// Parses the spellings AEP's documents use (`Cross_device`, `CROSS_DEVICE`, `Email`,
    /// `PHONE_NUMBER`...), case-insensitively.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "COOKIE" => Some(IdType::Cookie),
            "CROSS_DEVICE" => Some(IdType::CrossDevice),
            "DEVICE" => Some(IdType::Device),
            "EMAIL" => Some(IdType::Email),
            "MOBILE" => Some(IdType::Mobile),
            "NON_PEOPLE" => Some(IdType::NonPeople),
            "PHONE" | "PHONE_NUMBER" => Some(IdType::Phone),
            _ => None,
        }
    }

    /// Eviction rank when a graph is full: cookies first, then devices, then person
    /// identities (AEP's deletion order; within a rank the oldest goes first).
    pub fn eviction_rank(self) -> u8 {
        match self {
            IdType::Cookie => 0,
            IdType::Device => 1,
            _ => 2,
        }
    }
}

/// A namespace, in AEP's field names (also the stored form of custom namespaces).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    /// Numeric id.
    pub id: i64,
    /// Identity symbol, e.g. `Email`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Identity type.
    pub id_type: IdType,
    /// Always `ACTIVE`.
    pub status: String,
    /// Whether the sandbox created it.
    pub custom: bool,
    /// Creation time, ms.
    pub create_time: i64,
    /// Last update, ms.
    pub update_time: i64,
}

const STANDARD: [(i64, &str, &str, IdType, &str, i64); 17] = [
    (
        0,
        "CORE",
        "CORE",
        IdType::Cookie,
        "CORE Namespace",
        1_441_122_419_000,
    ),
    (
        4,
        "ECID",
        "ECID",
        IdType::Cookie,
        "ECID Namespace",
        1_495_153_678_000,
    ),
    (
        6,
        "Email",
        "Email",
        IdType::Email,
        "Email",
        1_495_153_678_000,
    ),
    (
        7,
        "Phone",
        "Phone",
        IdType::Phone,
        "Phone",
        1_495_153_678_000,
    ),
    (
        8,
        "WAID",
        "Windows AID",
        IdType::Device,
        "Windows AID",
        1_495_153_678_000,
    ),
    (
        9,
        "TNTID",
        "TNTID",
        IdType::Cookie,
        "Adobe Target (TNTID)",
        1_495_153_678_000,
    ),
    (
        10,
        "AAID",
        "Adobe Analytics (Legacy ID)",
        IdType::Cookie,
        "Adobe Analytics (Legacy ID)",
        1_495_153_678_000,
    ),
    (
        11,
        "Email_LC_SHA256",
        "Emails (SHA256, lowercased)",
        IdType::Email,
        "Email addresses hashed with SHA256 after lower-casing and trimming",
        1_495_153_678_000,
    ),
    (
        15,
        "Phone_SHA256",
        "Phone (SHA256)",
        IdType::Phone,
        "Phone numbers hashed with SHA256",
        1_495_153_678_000,
    ),
    (
        17,
        "Phone_E.164",
        "Phone (E.164)",
        IdType::Phone,
        "Raw phone numbers in E.164 format; + sign is required",
        1_495_153_678_000,
    ),
    (
        18,
        "Phone_SHA256_E.164",
        "Phone (SHA256_E.164)",
        IdType::Phone,
        "E.164 phone numbers hashed with SHA256",
        1_495_153_678_000,
    ),
    (
        100,
        "CRMID",
        "CRM ID",
        IdType::CrossDevice,
        "Customer relationship management id (built into Tessera)",
        1_495_153_678_000,
    ),
    (
        411,
        "AdCloud",
        "AdCloud",
        IdType::Cookie,
        "Adobe AdCloud - ID Syncing Partner",
        1_522_783_145_000,
    ),
    (
        20914,
        "GAID",
        "Google Ad ID (GAID)",
        IdType::Device,
        "This datasource is associated to a Google Ad ID",
        1_495_153_678_000,
    ),
    (
        20915,
        "IDFA",
        "Apple IDFA (ID for Advertisers)",
        IdType::Device,
        "Apple ID for Advertisers",
        1_495_153_678_000,
    ),
    (
        20919,
        "FCM",
        "Firebase Cloud Messaging",
        IdType::Device,
        "Identities collected via Google for Push notification Service",
        1_495_153_678_000,
    ),
    (
        20920,
        "APNS",
        "Apple Push Notification service",
        IdType::Device,
        "Identities collected via Apple for Push notification Service",
        1_495_153_678_000,
    ),
];

/// The standard namespaces.
pub fn standard() -> Vec<Namespace> {
    STANDARD
        .iter()
        .map(
            |(id, code, name, id_type, description, created)| Namespace {
                id: *id,
                code: (*code).to_owned(),
                name: (*name).to_owned(),
                description: (*description).to_owned(),
                id_type: *id_type,
                status: "ACTIVE".to_owned(),
                custom: false,
                create_time: *created,
                update_time: *created,
            },
        )
        .collect()
}

/// Key of the sandbox's identity-settings revision: every change to its namespaces or linking
/// rules writes a fresh token here in the same batch, so a cached [`Namespaces`] is
/// revalidated with one point read.
pub(crate) fn revision_key(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("rev").finish()
}

/// Adds a fresh revision token to `batch` (see [`revision_key`]).
pub(crate) fn bump_revision(batch: &mut WriteBatch, tenant: &Tenant) {
    let mut token = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut token);
    batch.put(Table::Namespaces, &revision_key(tenant), token.to_vec());
}

/// A cached sandbox: the revision its namespaces were read at, and the namespaces.
type CachedNamespaces = (Option<Vec<u8>>, std::sync::Arc<Namespaces>);

/// Per-process cache of each sandbox's [`Namespaces`], revalidated against the stored
/// revision on every use: one point read instead of a scan, and never stale, whichever node
/// made the change.
#[derive(Debug, Default)]
pub struct NamespaceCache {
    entries: std::sync::Mutex<HashMap<Tenant, CachedNamespaces>>,
}

impl NamespaceCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sandbox's namespaces and rules as currently stored.
    pub fn get(&self, store: &dyn Store, tenant: &Tenant) -> Result<std::sync::Arc<Namespaces>> {
        // Read the revision before loading: a change landing in between leaves the entry
        // tagged older than its content, which only costs one extra reload.
        let revision = store.get(Table::Namespaces, &revision_key(tenant))?;
        {
            let entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((cached, namespaces)) = entries.get(tenant) {
                if *cached == revision {
                    return Ok(std::sync::Arc::clone(namespaces));
                }
            }
        }
        let loaded = std::sync::Arc::new(Namespaces::load(store, tenant)?);
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant.clone(), (revision, std::sync::Arc::clone(&loaded)));
        Ok(loaded)
    }
}

fn custom_prefix(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("ns").finish()
}

fn custom_key(tenant: &Tenant, code: &str) -> Key {
    Key::extend(&custom_prefix(tenant))
        .str(&code.to_ascii_lowercase())
        .finish()
}

fn decode(bytes: &[u8]) -> Result<Namespace> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        what: "namespace",
        reason: e.to_string(),
    })
}

/// Every namespace of a sandbox, looked up by code (case-insensitive) or id.
#[derive(Debug, Clone)]
pub struct Namespaces {
    all: Vec<Namespace>,
    by_code: HashMap<String, usize>,
    rules: crate::rules::LinkingRules,
}

impl Namespaces {
    /// Standard plus the sandbox's custom namespaces.
    pub fn load(store: &dyn Store, tenant: &Tenant) -> Result<Self> {
        let mut all = standard();
        let rows = store.scan(
            Table::Namespaces,
            &ScanRange::prefix(custom_prefix(tenant)),
            Direction::Forward,
            100_000,
        )?;
        for row in rows {
            all.push(decode(&row.value)?);
        }
        let by_code = all
            .iter()
            .enumerate()
            .map(|(i, n)| (n.code.to_ascii_lowercase(), i))
            .collect();
        let rules = crate::rules::load(store, tenant)?;
        Ok(Self {
            all,
            by_code,
            rules,
        })
    }

    /// The sandbox's linking rules (unique namespaces, priority).
    pub fn rules(&self) -> &crate::rules::LinkingRules {
        &self.rules
    }

    /// Every namespace, standard first.
    pub fn all(&self) -> &[Namespace] {
        &self.all
    }

    /// The namespace with this code, case-insensitively.
    pub fn by_code(&self, code: &str) -> Option<&Namespace> {
        self.by_code
            .get(&code.to_ascii_lowercase())
            .and_then(|i| self.all.get(*i))
    }

    /// The namespace with this numeric id.
    pub fn by_id(&self, id: i64) -> Option<&Namespace> {
        self.all.iter().find(|n| n.id == id)
    }

    /// Whether identities of `code` may join identity graphs: AEP generates no graphs for
    /// non-people identifiers (a store, a product), so one shared by many people links
    /// nobody. Unknown codes count as people, as they do for eviction.
    pub fn links_people(&self, code: &str) -> bool {
        self.by_code(code)
            .is_none_or(|n| n.id_type != IdType::NonPeople)
    }

    /// Eviction rank of a code (unknown codes rank with person identities).
    pub fn eviction_rank(&self, code: &str) -> u8 {
        self.by_code(code).map_or(2, |n| n.id_type.eviction_rank())
    }

    /// Resolves a record's namespace code and normalises the value for its type: the
    /// registered code spelling and the value identities are filed under, or why the
    /// identity is refused.
    pub fn normalize(
        &self,
        code: &str,
        value: &str,
    ) -> std::result::Result<(String, String), String> {
        let namespace = self
            .by_code(code)
            .ok_or_else(|| format!("namespace code {code:?} is not registered in this sandbox"))?;
        let trimmed = value.trim();
        if trimmed.is_empty()
            || BLOCKED_VALUES
                .iter()
                .any(|b| trimmed.eq_ignore_ascii_case(b))
        {
            return Err(format!(
                "identity value {value:?} is blocked (empty, null, anonymous or invalid)"
            ));
        }
        let hashed = namespace.code.to_ascii_uppercase().contains("SHA256");
        let normalized = if namespace.code.eq_ignore_ascii_case("ECID") {
            if trimmed.len() != 38 || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("ECID {trimmed:?} must be exactly 38 digits"));
            }
            trimmed.to_owned()
        } else if hashed {
            trimmed.to_ascii_lowercase()
        } else {
            match namespace.id_type {
                IdType::Email => trimmed.to_lowercase(),
                IdType::Phone | IdType::Mobile => {
                    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
                    if digits.len() < 4 {
                        return Err(format!("phone number {trimmed:?} has too few digits"));
                    }
                    if trimmed.starts_with('+') {
                        format!("+{digits}")
                    } else {
                        digits
                    }
                }
                _ => trimmed.to_owned(),
            }
        };
        if normalized.len() > MAX_VALUE_LEN {
            return Err(format!(
                "identity value is {} characters; at most {MAX_VALUE_LEN} are allowed",
                normalized.len()
            ));
        }
        Ok((namespace.code.clone(), normalized))
    }
}

/// What creating or updating a custom namespace takes.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceRequest {
    /// Display name.
    pub name: Option<String>,
    /// Identity symbol.
    pub code: Option<String>,
    /// Identity type.
    pub id_type: Option<String>,
    /// Description.
    pub description: Option<String>,
}

/// Why a namespace request was refused (rendered in the namespace API's own error shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceProblem {
    /// A field is missing or invalid.
    Invalid(String),
    /// The code is taken (case-insensitively).
    CodeTaken,
    /// The name is taken.
    NameTaken,
    /// No namespace with that id.
    NotFound(i64),
    /// Standard namespaces cannot change.
    Standard(i64),
}

/// Creates a custom namespace.
pub fn create(
    store: &dyn Store,
    tenant: &Tenant,
    request: &NamespaceRequest,
    now: i64,
) -> Result<std::result::Result<Namespace, NamespaceProblem>> {
    let (Some(name), Some(code), Some(id_type)) = (&request.name, &request.code, &request.id_type)
    else {
        return Ok(Err(NamespaceProblem::Invalid(
            "name, code and idType are required".into(),
        )));
    };
    let name = name.trim();
    if name.is_empty() {
        return Ok(Err(NamespaceProblem::Invalid(
            "name must not be empty".into(),
        )));
    }
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(Err(NamespaceProblem::Invalid(
            "code may contain only letters and numbers".into(),
        )));
    }
    let Some(id_type) = IdType::parse(id_type) else {
        return Ok(Err(NamespaceProblem::Invalid(
            "Please provide a valid value of idType. Valid values are: [COOKIE, CROSS_DEVICE, DEVICE, EMAIL, MOBILE, NON_PEOPLE, PHONE]".into(),
        )));
    };
    let existing = Namespaces::load(store, tenant)?;
    if existing.by_code(code).is_some() {
        return Ok(Err(NamespaceProblem::CodeTaken));
    }
    if existing
        .all()
        .iter()
        .any(|n| n.name.eq_ignore_ascii_case(name))
    {
        return Ok(Err(NamespaceProblem::NameTaken));
    }
    let id = loop {
        let candidate = rand::thread_rng().gen_range(10_000_000..100_000_000);
        if existing.by_id(candidate).is_none() {
            break candidate;
        }
    };
    let namespace = Namespace {
        id,
        code: code.clone(),
        name: name.to_owned(),
        description: request.description.clone().unwrap_or_default(),
        id_type,
        status: "ACTIVE".to_owned(),
        custom: true,
        create_time: now,
        update_time: now,
    };
    let key = custom_key(tenant, code);
    let bytes = serde_json::to_vec(&namespace).map_err(|e| Error::Corrupt {
        what: "namespace",
        reason: e.to_string(),
    })?;
    let mut batch = WriteBatch::new();
    batch
        .expect(Table::Namespaces, &key, None)
        .put(Table::Namespaces, &key, bytes);
    bump_revision(&mut batch, tenant);
    match store.commit(batch) {
        Ok(_) => Ok(Ok(namespace)),
        Err(tessera_store::Error::Conflict { .. }) => Ok(Err(NamespaceProblem::CodeTaken)),
        Err(other) => Err(other.into()),
    }
}

/// Replaces a custom namespace's name and description; code and idType cannot change.
pub fn update(
    store: &dyn Store,
    tenant: &Tenant,
    id: i64,
    request: &NamespaceRequest,
    now: i64,
) -> Result<std::result::Result<Namespace, NamespaceProblem>> {
    let namespaces = Namespaces::load(store, tenant)?;
    let Some(current) = namespaces.by_id(id).cloned() else {
        return Ok(Err(NamespaceProblem::NotFound(id)));
    };
    if !current.custom {
        return Ok(Err(NamespaceProblem::Standard(id)));
    }
    let (Some(name), Some(code), Some(id_type)) = (&request.name, &request.code, &request.id_type)
    else {
        return Ok(Err(NamespaceProblem::Invalid(
            "name, code and idType are required".into(),
        )));
    };
    if !code.eq_ignore_ascii_case(&current.code) || IdType::parse(id_type) != Some(current.id_type)
    {
        return Ok(Err(NamespaceProblem::Invalid(
            "code and idType are non editable fields".into(),
        )));
    }
    if name.trim().is_empty() {
        return Ok(Err(NamespaceProblem::Invalid(
            "name must not be empty".into(),
        )));
    }
    if namespaces
        .all()
        .iter()
        .any(|n| n.id != id && n.name.eq_ignore_ascii_case(name.trim()))
    {
        return Ok(Err(NamespaceProblem::NameTaken));
    }
    let key = custom_key(tenant, &current.code);
    let original = store.get(Table::Namespaces, &key)?;
    let mut updated = current;
    updated.name = name.trim().to_owned();
    updated.description = request.description.clone().unwrap_or_default();
    updated.update_time = now;
    let bytes = serde_json::to_vec(&updated).map_err(|e| Error::Corrupt {
        what: "namespace",
        reason: e.to_string(),
    })?;
    let mut batch = WriteBatch::new();
    batch
        .expect(Table::Namespaces, &key, original)
        .put(Table::Namespaces, &key, bytes);
    bump_revision(&mut batch, tenant);
    store.commit(batch)?;
    Ok(Ok(updated))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set() -> Namespaces {
        let all = standard();
        let by_code = all
            .iter()
            .enumerate()
            .map(|(i, n)| (n.code.to_ascii_lowercase(), i))
            .collect();
        Namespaces {
            all,
            by_code,
            rules: Default::default(),
        }
    }

    #[test]
    fn standard_namespaces_have_aeps_ids() {
        let ns = set();
        assert_eq!(
            ns.by_code("ECID").map(|n| (n.id, n.id_type)),
            Some((4, IdType::Cookie))
        );
        assert_eq!(ns.by_code("email").map(|n| n.id), Some(6));
        assert_eq!(ns.by_code("Phone").map(|n| n.id), Some(7));
        assert_eq!(ns.by_code("AAID").map(|n| n.id), Some(10));
        assert_eq!(
            ns.by_code("IDFA").map(|n| (n.id, n.id_type)),
            Some((20915, IdType::Device))
        );
        assert_eq!(ns.by_code("GAID").map(|n| n.id), Some(20914));
        assert_eq!(ns.by_id(411).map(|n| n.code.as_str()), Some("AdCloud"));
    }

    #[test]
    fn values_are_normalised_per_type() {
        let ns = set();
        assert_eq!(
            ns.normalize("email", " Jane@Example.COM ").unwrap(),
            ("Email".into(), "jane@example.com".into())
        );
        assert_eq!(
            ns.normalize("Phone", "+1 (555) 010-2030").unwrap().1,
            "+15550102030"
        );
        assert_eq!(
            ns.normalize("Email_LC_SHA256", " ABCDEF ").unwrap().1,
            "abcdef"
        );
        assert_eq!(
            ns.normalize("Phone_SHA256", "ABCDEF01").unwrap().1,
            "abcdef01",
            "hashes are not reduced to digits"
        );
        assert!(ns.normalize("ECID", "123").is_err());
        assert!(ns.normalize("ECID", &"1".repeat(38)).is_ok());
        assert!(ns.normalize("CRMID", "null").is_err());
        assert!(ns.normalize("CRMID", " Anonymous ").is_err());
        assert!(ns.normalize("CRMID", &"x".repeat(1025)).is_err());
        assert!(ns
            .normalize("NoSuchNamespace", "x")
            .unwrap_err()
            .contains("not registered"));
    }

    #[test]
    fn id_types_accept_documented_spellings() {
        assert_eq!(IdType::parse("Cross_device"), Some(IdType::CrossDevice));
        assert_eq!(IdType::parse("PHONE_NUMBER"), Some(IdType::Phone));
        assert_eq!(IdType::parse("Non_people"), Some(IdType::NonPeople));
        assert_eq!(IdType::parse("person"), None);
        assert!(IdType::Cookie.eviction_rank() < IdType::Device.eviction_rank());
        assert!(IdType::Device.eviction_rank() < IdType::Email.eviction_rank());
        assert_eq!(
            IdType::Email.eviction_rank(),
            IdType::CrossDevice.eviction_rank()
        );
    }
}
