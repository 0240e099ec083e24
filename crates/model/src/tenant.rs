//! Tenancy: an IMS organisation and one of its sandboxes.
//!
//! AEP scopes every call by the `x-gw-ims-org-id` and `x-sandbox-name` headers; Tessera keeps
//! the same pair as the prefix of every stored key, which is what makes sandboxes isolated
//! and deletable by range.

use std::fmt;

use crate::error::{Error, Result};

/// Longest organisation id accepted; real IMS org ids are ~40 characters.
const MAX_ORG_ID_LEN: usize = 256;
/// AEP's documented limit for sandbox names.
const MAX_SANDBOX_NAME_LEN: usize = 64;

/// An IMS organisation id such as `5309E3A5C3B4A2D50A49@AdobeOrg`.
///
/// Kept verbatim (case-sensitive) because AEP treats it as an opaque token.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct OrgId(String);

impl OrgId {
    /// Validates an organisation id: non-empty, at most 256 bytes, printable ASCII without
    /// spaces (ids travel in headers and log lines).
    pub fn parse(value: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidOrgId {
            value: value.to_owned(),
            reason,
        };
        if value.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if value.len() > MAX_ORG_ID_LEN {
            return Err(invalid("must be at most 256 characters"));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("must be printable ASCII without spaces"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The id as sent by the client.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A sandbox name: lowercase letters, digits and `-`, 1 to 64 characters (AEP's rule).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct SandboxName(String);

impl SandboxName {
    /// The sandbox every organisation has from the start.
    pub const DEFAULT: &'static str = "prod";

    /// Validates a sandbox name against `[a-z0-9-]{1,64}`.
    pub fn parse(value: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidSandboxName {
            value: value.to_owned(),
            reason,
        };
        if value.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if value.len() > MAX_SANDBOX_NAME_LEN {
            return Err(invalid("must be at most 64 characters"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "may contain only lowercase letters, digits and '-'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The default production sandbox, `prod`.
    pub fn default_sandbox() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    /// The validated name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the organisation's default production sandbox.
    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }
}

impl fmt::Display for SandboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The scope of every data request: one sandbox of one organisation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Tenant {
    /// The IMS organisation.
    pub org: OrgId,
    /// The sandbox inside it.
    pub sandbox: SandboxName,
}

impl Tenant {
    /// Builds a tenant from already validated parts.
    pub fn new(org: OrgId, sandbox: SandboxName) -> Self {
        Self { org, sandbox }
    }

    /// Validates both parts; convenient in tests and tools.
    pub fn parse(org: &str, sandbox: &str) -> Result<Self> {
        Ok(Self::new(OrgId::parse(org)?, SandboxName::parse(sandbox)?))
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.org, self.sandbox)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_names_follow_aep_rule() {
        for ok in ["prod", "dev-2", "a", &"x".repeat(64)] {
            assert!(SandboxName::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["", "Prod", "dev_2", "dev 2", "dév", &"x".repeat(65)] {
            assert!(SandboxName::parse(bad).is_err(), "{bad} should be invalid");
        }
    }

    #[test]
    fn org_ids_are_printable_and_bounded() {
        assert!(OrgId::parse("5309E3A5C3B4A2D50A49@AdobeOrg").is_ok());
        assert!(OrgId::parse("").is_err());
        assert!(OrgId::parse("a b").is_err());
        assert!(OrgId::parse("a\nb").is_err());
        assert!(OrgId::parse(&"o".repeat(257)).is_err());
    }

    #[test]
    fn default_sandbox_is_prod() {
        assert!(SandboxName::default_sandbox().is_default());
        assert!(!SandboxName::parse("dev")
            .map(|s| s.is_default())
            .unwrap_or(true));
    }
}
