//! [`CompiledSchema`]: one version of one schema, compiled once into a validator, with the
//! facts ingestion needs (class, profile enablement, identity descriptors).

use serde_json::Value;

use crate::builtin::{EXPERIENCE_EVENT_CLASS, PROFILE_CLASS};
use crate::descriptor::IdentityDescriptor;
use crate::validator::{Node, Walker};
use crate::violation::{Violation, ViolationCode};

/// The XDM class a schema implements.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum XdmClass {
    /// `https://ns.adobe.com/xdm/context/profile` (record behaviour).
    Profile,
    /// `https://ns.adobe.com/xdm/context/experienceevent` (time-series behaviour).
    ExperienceEvent,
    /// Any other class `$id`.
    Other(String),
}

impl XdmClass {
    /// The class of a class `$id`.
    pub fn from_id(id: &str) -> Self {
        match id {
            PROFILE_CLASS => XdmClass::Profile,
            EXPERIENCE_EVENT_CLASS => XdmClass::ExperienceEvent,
            other => XdmClass::Other(other.to_owned()),
        }
    }

    /// The class `$id`.
    pub fn id(&self) -> &str {
        match self {
            XdmClass::Profile => PROFILE_CLASS,
            XdmClass::ExperienceEvent => EXPERIENCE_EVENT_CLASS,
            XdmClass::Other(id) => id,
        }
    }
}

/// A schema compiled for validation. Cheap to share (`Arc`); immutable.
#[derive(Debug)]
pub struct CompiledSchema {
    pub(crate) id: String,
    pub(crate) alt_id: String,
    pub(crate) version: String,
    pub(crate) class: XdmClass,
    pub(crate) profile_enabled: bool,
    pub(crate) root: Node,
    pub(crate) identities: Vec<IdentityDescriptor>,
    /// Registry generation this was compiled at (cache validity).
    pub(crate) generation: u64,
    /// The resolved schema (`xed-full` body), kept for callers such as PQL checking.
    pub(crate) resolved: Value,
}

impl CompiledSchema {
    /// The schema `$id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The schema `meta:altId`.
    pub fn alt_id(&self) -> &str {
        &self.alt_id
    }

    /// The schema `version` (`"1.0"`, `"1.1"` after one change, ...).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Its class.
    pub fn class(&self) -> &XdmClass {
        &self.class
    }

    /// Whether it takes part in its class's union (`meta:immutableTags` has `union`).
    pub fn profile_enabled(&self) -> bool {
        self.profile_enabled
    }

    /// The identity descriptors defined on this schema.
    pub fn identity_descriptors(&self) -> &[IdentityDescriptor] {
        &self.identities
    }

    /// The resolved schema: `{"type": "object", "properties": {...}, "required": [...]}`.
    pub fn resolved(&self) -> &Value {
        &self.resolved
    }

    /// Checks a record in one walk and returns every violation found (in record order,
    /// then missing primary identities).
    pub fn validate(&self, record: &Value) -> std::result::Result<(), Vec<Violation>> {
        let mut walker = Walker::new();
        walker.walk(&self.root, record);
        let mut violations = walker.violations;
        // A primary identity field is mandatory (AEP: the primary identity must be present
        // for the record to reach Profile).
        if record.is_object() {
            for identity in self.identities.iter().filter(|i| i.is_primary) {
                if record
                    .pointer(&identity.source_property)
                    .is_none_or(Value::is_null)
                    && !violations
                        .iter()
                        .any(|v| v.path == identity.source_property)
                {
                    violations.push(Violation {
                        path: identity.source_property.clone(),
                        code: ViolationCode::MissingRequired,
                        message: format!(
                            "primary identity field ({} namespace) is missing",
                            identity.namespace
                        ),
                    });
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }
}
