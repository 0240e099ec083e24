//! Ground truth written beside the datasets: who each person is (every identity they own), and
//! the designed collisions (identities deliberately shared by several people). Stitching tests
//! read these files: every person's identities must resolve to one profile, and an identity
//! may belong to several people only if it is listed here as a collision.

use serde::{Deserialize, Serialize};

/// An identity: namespace code and value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IdentityRef {
    /// Namespace code (`CRMID`, `Email`, `Phone`, `ECID`, `LoyaltyId`).
    pub namespace: String,
    /// Identity value.
    pub id: String,
}

/// Why an identity is shared between people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CollisionKind {
    /// A household device (ECID) on which several members logged in.
    SharedDevice,
    /// A household landline (Phone) given to the CRM by several members.
    HouseholdPhone,
    /// A junk value typed by many unrelated people (`test@test.com`, `+10000000000`).
    Junk,
}

/// One identity a person owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonIdentity {
    /// Namespace code.
    pub namespace: String,
    /// Identity value.
    pub id: String,
    /// Set when the identity is shared with other members of the household.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision: Option<CollisionKind>,
}

/// Per-person event counts by dataset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventCounts {
    /// Records in `web-events`.
    pub web: u32,
    /// Records in `email-events`.
    pub email: u32,
    /// Records in `callcenter-events`.
    pub call_center: u32,
}

/// One line of [`crate::generate::PERSONS_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroundTruthPerson {
    /// Person number, 0-based, dense.
    pub person: u64,
    /// Household number, 0-based, dense.
    pub household: u64,
    /// Every identity the person owns and that appears in at least one record (3 to 8).
    pub identities: Vec<PersonIdentity>,
    /// Junk identities that appear in this person's records (not theirs, shared with strangers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub junk: Vec<IdentityRef>,
    /// Events generated for the person.
    pub events: EventCounts,
    /// Number of `commerce.purchases` events.
    pub purchases: u32,
    /// Sum of `commerce.order.priceTotal` over those purchases (USD).
    pub purchase_total: f64,
    /// Loyalty tier, for members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loyalty_tier: Option<String>,
}

/// One line of [`crate::generate::COLLISIONS_FILE`]: an identity held by several people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collision {
    /// Why it is shared.
    pub kind: CollisionKind,
    /// Namespace code.
    pub namespace: String,
    /// Identity value.
    pub id: String,
    /// The people holding it, ascending.
    pub persons: Vec<u64>,
}
