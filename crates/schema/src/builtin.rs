//! The global container: built-in XDM classes and standard field groups, shipped as JSON
//! documents under `crates/schema/xdm/` (real XDM field names and types, written in the
//! shape the Schema Registry API returns) and parsed once per [`crate::SchemaRegistry`].

use serde_json::Value;

use crate::compose::{resolve_document, Part};
use crate::ids::alt_id_of;

/// `$id` of the XDM Individual Profile class.
pub const PROFILE_CLASS: &str = "https://ns.adobe.com/xdm/context/profile";
/// `$id` of the XDM ExperienceEvent class.
pub const EXPERIENCE_EVENT_CLASS: &str = "https://ns.adobe.com/xdm/context/experienceevent";
/// `$id` of the IdentityMap field group (part of every union).
pub const IDENTITY_MAP_FIELD_GROUP: &str = "https://ns.adobe.com/xdm/context/identitymap";
/// `$id` of the segment membership field group (part of the profile union).
pub const SEGMENTATION_FIELD_GROUP: &str = "https://ns.adobe.com/xdm/context/profile-segmentation";

const CLASSES: [&str; 2] = [
    include_str!("../xdm/classes/profile.json"),
    include_str!("../xdm/classes/experienceevent.json"),
];

const FIELD_GROUPS: [&str; 13] = [
    include_str!("../xdm/fieldgroups/identitymap.json"),
    include_str!("../xdm/fieldgroups/profile-person-details.json"),
    include_str!("../xdm/fieldgroups/profile-personal-details.json"),
    include_str!("../xdm/fieldgroups/profile-work-details.json"),
    include_str!("../xdm/fieldgroups/profile-loyalty-details.json"),
    include_str!("../xdm/fieldgroups/profile-consents.json"),
    include_str!("../xdm/fieldgroups/profile-segmentation.json"),
    include_str!("../xdm/fieldgroups/experienceevent-commerce.json"),
    include_str!("../xdm/fieldgroups/experienceevent-web.json"),
    include_str!("../xdm/fieldgroups/experienceevent-environment-details.json"),
    include_str!("../xdm/fieldgroups/experienceevent-marketing.json"),
    include_str!("../xdm/fieldgroups/experienceevent-channel.json"),
    include_str!("../xdm/fieldgroups/experienceevent-directmarketing.json"),
];

/// One global resource.
#[derive(Debug, Clone)]
pub struct Builtin {
    /// `$id`.
    pub id: String,
    /// `meta:altId`.
    pub alt_id: String,
    /// The document as the API returns it (`xed+json`).
    pub doc: Value,
    /// Its resolved fields.
    pub(crate) part: Part,
    /// Classes a field group may be added to (empty for classes).
    pub intended_to_extend: Vec<String>,
}

impl Builtin {
    fn load(text: &str) -> Self {
        // The shipped documents are part of the build; `builtins_load_and_resolve` below
        // parses and resolves every one, so a broken file fails the tests, not a server.
        let doc: Value = serde_json::from_str(text).expect("shipped XDM document is valid JSON");
        let id = doc
            .get("$id")
            .and_then(Value::as_str)
            .expect("shipped XDM document has an $id")
            .to_owned();
        let part = resolve_document(&doc, &id).expect("shipped XDM document resolves");
        let intended_to_extend = doc
            .get("meta:intendedToExtend")
            .and_then(Value::as_array)
            .map(|classes| {
                classes
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            alt_id: alt_id_of(&id).unwrap_or_else(|| id.clone()),
            id,
            doc,
            part,
            intended_to_extend,
        }
    }

    /// Display title.
    pub fn title(&self) -> &str {
        self.doc
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// Every global class and field group.
#[derive(Debug)]
pub struct Builtins {
    classes: Vec<Builtin>,
    field_groups: Vec<Builtin>,
}

impl Builtins {
    /// Parses the shipped documents.
    pub fn load() -> Self {
        Self {
            classes: CLASSES.iter().map(|text| Builtin::load(text)).collect(),
            field_groups: FIELD_GROUPS
                .iter()
                .map(|text| Builtin::load(text))
                .collect(),
        }
    }

    /// All classes.
    pub fn classes(&self) -> &[Builtin] {
        &self.classes
    }

    /// All field groups.
    pub fn field_groups(&self) -> &[Builtin] {
        &self.field_groups
    }

    /// A class by `$id` or `meta:altId`.
    pub fn class(&self, reference: &str) -> Option<&Builtin> {
        self.classes
            .iter()
            .find(|c| c.id == reference || c.alt_id == reference)
    }

    /// A field group by `$id` or `meta:altId`.
    pub fn field_group(&self, reference: &str) -> Option<&Builtin> {
        self.field_groups
            .iter()
            .find(|g| g.id == reference || g.alt_id == reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load_and_resolve() {
        let builtins = Builtins::load();
        assert_eq!(builtins.classes().len(), 2);
        assert_eq!(builtins.field_groups().len(), FIELD_GROUPS.len());
        for group in builtins.field_groups() {
            assert!(!group.intended_to_extend.is_empty(), "{}", group.id);
            assert!(!group.part.properties.is_empty(), "{}", group.id);
            assert_eq!(
                group.doc["meta:altId"],
                group.alt_id.as_str(),
                "{}",
                group.id
            );
            // Compiles into a validator.
            crate::validator::compile(
                &serde_json::json!({"properties": group.part.properties}),
                "",
                0,
            )
            .unwrap();
        }
        let event = builtins.class("_xdm.context.experienceevent").unwrap();
        assert_eq!(event.part.required, vec!["_id", "timestamp"]);
        let personal = builtins
            .field_group("https://ns.adobe.com/xdm/context/profile-personal-details")
            .unwrap();
        assert_eq!(
            personal.part.properties["personalEmail"]["properties"]["address"]["format"],
            "email"
        );
    }
}
