//! API keys and grants: who may call, in which organisation and sandboxes, with which role.
//!
//! A key is a public client id (sent as `x-api-key`) and a secret (sent as
//! `Authorization: Bearer`). The config stores only `sha256$<salt>$<digest>` of the secret:
//! secrets are 256 random bits, so a salted fast hash is enough (a slow KDF protects
//! low-entropy passwords and would cost milliseconds on every request). Digests are compared
//! in constant time.

use std::collections::HashMap;

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tessera_model::{OrgId, SandboxName};

use crate::error::GatewayError;

/// What a key may do. Ordered: each role includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// GET requests on data.
    Read,
    /// Also writes data (ingest, create and change resources).
    Write,
    /// Also manages the organisation (sandboxes).
    Admin,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        })
    }
}

/// Which sandboxes a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxSet {
    /// Every sandbox of the organisation (`"*"` in the config).
    All,
    /// Only these.
    Only(Vec<SandboxName>),
}

impl SandboxSet {
    fn contains(&self, sandbox: &SandboxName) -> bool {
        match self {
            SandboxSet::All => true,
            SandboxSet::Only(names) => names.contains(sandbox),
        }
    }
}

/// A role in some sandboxes of one organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The organisation.
    pub org: OrgId,
    /// Sandboxes covered.
    pub sandboxes: SandboxSet,
    /// Role held there.
    pub role: Role,
}

/// A salted SHA-256 digest of a secret, as stored in the config.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash {
    salt: Vec<u8>,
    digest: [u8; 32],
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl SecretHash {
    const PREFIX: &'static str = "sha256$";

    /// Hashes `secret` with a fresh random salt.
    pub fn new(secret: &str) -> Self {
        let mut salt = vec![0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        let digest = digest(&salt, secret);
        Self { salt, digest }
    }

    /// Parses `sha256$<salt hex>$<digest hex>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| "secret_hash must start with \"sha256$\"".to_owned())?;
        let (salt_hex, digest_hex) = rest
            .split_once('$')
            .ok_or_else(|| "secret_hash must be sha256$<salt>$<digest>".to_owned())?;
        let salt = hex::decode(salt_hex).map_err(|e| format!("salt is not hex: {e}"))?;
        if salt.len() < 8 {
            return Err("salt must be at least 8 bytes".into());
        }
        let digest_bytes =
            hex::decode(digest_hex).map_err(|e| format!("digest is not hex: {e}"))?;
        let digest = <[u8; 32]>::try_from(digest_bytes.as_slice())
            .map_err(|_| "digest must be 32 bytes".to_owned())?;
        Ok(Self { salt, digest })
    }

    /// Whether `secret` hashes to this digest (constant-time comparison).
    pub fn verify(&self, secret: &str) -> bool {
        digest(&self.salt, secret).ct_eq(&self.digest).into()
    }

    /// The config form.
    pub fn encode(&self) -> String {
        format!(
            "{}{}${}",
            Self::PREFIX,
            hex::encode(&self.salt),
            hex::encode(self.digest)
        )
    }
}

fn digest(salt: &[u8], secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

/// One configured key.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Public client id (`x-api-key`).
    pub client_id: String,
    /// Digest of the secret.
    pub secret: SecretHash,
    /// What it may do.
    pub grants: Vec<Grant>,
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Dev mode (no keys configured, loopback only): everything is allowed.
    Dev,
    /// A configured key.
    Key {
        /// Its client id, for logs and errors.
        client_id: String,
        /// Its grants.
        grants: Vec<Grant>,
    },
}

impl Caller {
    /// Whether the caller holds any grant in `org` (the gateway's entitlement check).
    pub fn entitled_to_org(&self, org: &OrgId) -> bool {
        match self {
            Caller::Dev => true,
            Caller::Key { grants, .. } => grants.iter().any(|g| &g.org == org),
        }
    }

    /// The strongest role held in `sandbox` of `org`, or `None`.
    pub fn role_in(&self, org: &OrgId, sandbox: &SandboxName) -> Option<Role> {
        match self {
            Caller::Dev => Some(Role::Admin),
            Caller::Key { grants, .. } => grants
                .iter()
                .filter(|g| &g.org == org && g.sandboxes.contains(sandbox))
                .map(|g| g.role)
                .max(),
        }
    }

    /// The strongest role held anywhere in `org` — organisation-level operations (sandbox
    /// management) need a role that covers every sandbox, see [`Caller::org_role`].
    pub fn org_role(&self, org: &OrgId) -> Option<Role> {
        match self {
            Caller::Dev => Some(Role::Admin),
            Caller::Key { grants, .. } => grants
                .iter()
                .filter(|g| &g.org == org && g.sandboxes == SandboxSet::All)
                .map(|g| g.role)
                .max(),
        }
    }

    /// Label for logs.
    pub fn label(&self) -> &str {
        match self {
            Caller::Dev => "dev",
            Caller::Key { client_id, .. } => client_id,
        }
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// No keys: credentials are ignored (AEP clients send them anyway) and every caller is
    /// trusted. Only allowed on loopback addresses.
    Dev,
    /// Requests must present a configured key.
    Keys(KeyRing),
}

/// Configured keys by client id.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: HashMap<String, ApiKey>,
}

impl KeyRing {
    /// Builds the ring; client ids must be unique.
    pub fn new(keys: Vec<ApiKey>) -> Result<Self, String> {
        let mut map = HashMap::with_capacity(keys.len());
        for key in keys {
            if map.contains_key(&key.client_id) {
                return Err(format!("duplicate client_id {:?}", key.client_id));
            }
            map.insert(key.client_id.clone(), key);
        }
        Ok(Self { keys: map })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl AuthMode {
    /// Authenticates a request from its `x-api-key` and `Authorization` header values.
    pub fn authenticate(
        &self,
        api_key: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<Caller, GatewayError> {
        let ring = match self {
            AuthMode::Dev => return Ok(Caller::Dev),
            AuthMode::Keys(ring) => ring,
        };
        let token = authorization
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(GatewayError::TokenMissing)?;
        let client_id = api_key
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or(GatewayError::ApiKeyMissing)?;
        let key = ring
            .keys
            .get(client_id)
            .ok_or(GatewayError::ApiKeyInvalid)?;
        if !key.secret.verify(token) {
            return Err(GatewayError::TokenInvalid);
        }
        Ok(Caller::Key {
            client_id: key.client_id.clone(),
            grants: key.grants.clone(),
        })
    }
}

/// A freshly minted key: print it once, store only the hash.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Public client id.
    pub client_id: String,
    /// The secret (bearer token). Shown once.
    pub secret: String,
    /// What goes into the config.
    pub secret_hash: SecretHash,
}

/// Mints a random client id and 256-bit secret.
pub fn new_key() -> NewKey {
    let mut rng = rand::thread_rng();
    let mut id = [0u8; 8];
    rng.fill_bytes(&mut id);
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let secret = format!(
        "tsk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    NewKey {
        client_id: format!("tessera-{}", hex::encode(id)),
        secret_hash: SecretHash::new(&secret),
        secret,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ring_with(role: Role, sandboxes: SandboxSet) -> (AuthMode, NewKey) {
        let minted = new_key();
        let key = ApiKey {
            client_id: minted.client_id.clone(),
            secret: minted.secret_hash.clone(),
            grants: vec![Grant {
                org: OrgId::parse("A@AdobeOrg").unwrap(),
                sandboxes,
                role,
            }],
        };
        (AuthMode::Keys(KeyRing::new(vec![key]).unwrap()), minted)
    }

    #[test]
    fn secret_hash_round_trips_and_rejects_other_secrets() {
        let hash = SecretHash::new("s3cret");
        let parsed = SecretHash::parse(&hash.encode()).unwrap();
        assert!(parsed.verify("s3cret"));
        assert!(!parsed.verify("s3cret "));
        assert!(!parsed.verify(""));
        assert!(SecretHash::parse("md5$00$00").is_err());
        assert!(SecretHash::parse("sha256$zz$00").is_err());
        assert!(SecretHash::parse("sha256$0011223344556677$00").is_err());
    }

    #[test]
    fn same_secret_gets_different_salts() {
        assert_ne!(SecretHash::new("x").encode(), SecretHash::new("x").encode());
    }

    #[test]
    fn authentication_failures_are_distinguished() {
        let (mode, key) = ring_with(Role::Read, SandboxSet::All);
        let bearer = format!("Bearer {}", key.secret);
        assert_eq!(
            mode.authenticate(Some(&key.client_id), None).unwrap_err(),
            GatewayError::TokenMissing
        );
        assert_eq!(
            mode.authenticate(None, Some(&bearer)).unwrap_err(),
            GatewayError::ApiKeyMissing
        );
        assert_eq!(
            mode.authenticate(Some("nope"), Some(&bearer)).unwrap_err(),
            GatewayError::ApiKeyInvalid
        );
        assert_eq!(
            mode.authenticate(Some(&key.client_id), Some("Bearer wrong"))
                .unwrap_err(),
            GatewayError::TokenInvalid
        );
        assert!(mode
            .authenticate(Some(&key.client_id), Some(&bearer))
            .is_ok());
    }

    #[test]
    fn roles_apply_per_org_and_sandbox() {
        let (mode, key) = ring_with(
            Role::Write,
            SandboxSet::Only(vec![SandboxName::parse("dev").unwrap()]),
        );
        let caller = mode
            .authenticate(
                Some(&key.client_id),
                Some(&format!("Bearer {}", key.secret)),
            )
            .unwrap();
        let org = OrgId::parse("A@AdobeOrg").unwrap();
        let other = OrgId::parse("B@AdobeOrg").unwrap();
        let dev = SandboxName::parse("dev").unwrap();
        let prod = SandboxName::parse("prod").unwrap();
        assert_eq!(caller.role_in(&org, &dev), Some(Role::Write));
        assert_eq!(caller.role_in(&org, &prod), None);
        assert_eq!(caller.role_in(&other, &dev), None);
        assert!(caller.entitled_to_org(&org));
        assert!(!caller.entitled_to_org(&other));
        // A grant limited to some sandboxes does not confer organisation-level rights.
        assert_eq!(caller.org_role(&org), None);
    }

    #[test]
    fn dev_mode_ignores_credentials() {
        assert!(matches!(
            AuthMode::Dev.authenticate(Some("anything"), Some("Bearer junk")),
            Ok(Caller::Dev)
        ));
    }
}
