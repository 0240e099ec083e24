//! The XDM shapes the generator writes, as plain serde structs. Field names follow the standard
//! field groups (identityMap, person details, personal contact details, loyalty details, web,
//! commerce, direct marketing); call-centre details have no standard field group and live in the
//! tenant namespace `_tessera`. Struct field order is the output order, and the identity map is
//! an ordered list, so output bytes never depend on hash order.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::clock::{CivilDate, Timestamp};

/// XDM class of profile records.
pub const CLASS_PROFILE: &str = "https://ns.adobe.com/xdm/context/profile";
/// XDM class of experience events.
pub const CLASS_EXPERIENCE_EVENT: &str = "https://ns.adobe.com/xdm/context/experienceevent";

/// `authenticatedState` of an identity item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthState {
    Ambiguous,
    Authenticated,
}

/// One identity item: `{id, authenticatedState, primary}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityItem<'a> {
    pub id: &'a str,
    pub authenticated_state: AuthState,
    pub primary: bool,
}

/// `identityMap`: namespace code to identity items, rendered in insertion order.
#[derive(Debug, Clone, Default)]
pub struct IdentityMap<'a> {
    entries: Vec<(&'static str, Vec<IdentityItem<'a>>)>,
}

impl<'a> IdentityMap<'a> {
    pub fn new() -> Self {
        Self {
            entries: Vec::with_capacity(4),
        }
    }

    /// Adds an identity under its namespace (grouping items of the same namespace).
    pub fn push(&mut self, namespace: &'static str, id: &'a str, state: AuthState, primary: bool) {
        let item = IdentityItem {
            id,
            authenticated_state: state,
            primary,
        };
        match self.entries.iter_mut().find(|(ns, _)| *ns == namespace) {
            Some((_, items)) => items.push(item),
            None => self.entries.push((namespace, vec![item])),
        }
    }
}

impl Serialize for IdentityMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (ns, items) in &self.entries {
            map.serialize_entry(ns, items)?;
        }
        map.end()
    }
}

// ---------------------------------------------------------------- profile records

/// A CRM profile record (class profile).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmProfile<'a> {
    #[serde(rename = "_id")]
    pub id: &'a str,
    pub identity_map: IdentityMap<'a>,
    pub person: Person<'a>,
    pub personal_email: EmailAddress<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<PhoneNumber<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_phone: Option<PhoneNumber<'a>>,
    pub home_address: PostalAddress<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loyalty: Option<Loyalty<'a>>,
}

/// A loyalty-programme profile record (class profile).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoyaltyProfile<'a> {
    #[serde(rename = "_id")]
    pub id: &'a str,
    pub identity_map: IdentityMap<'a>,
    pub personal_email: EmailAddress<'a>,
    pub loyalty: Loyalty<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person<'a> {
    pub name: PersonName<'a>,
    pub birth_date: CivilDate,
    pub gender: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonName<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub full_name: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailAddress<'a> {
    pub address: &'a str,
    pub primary: bool,
    pub status: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumber<'a> {
    pub number: &'a str,
    pub primary: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostalAddress<'a> {
    pub street1: &'a str,
    pub city: &'static str,
    pub state_province: &'static str,
    pub postal_code: &'a str,
    pub country: &'static str,
    pub country_code: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Loyalty<'a> {
    #[serde(rename = "loyaltyID")]
    pub loyalty_id: [&'a str; 1],
    pub program: &'static str,
    pub status: &'static str,
    pub tier: &'static str,
    pub points: u32,
    pub lifetime_points: u32,
    pub join_date: Timestamp,
}

// ---------------------------------------------------------------- experience events

/// Fields every experience event carries.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventHead<'a> {
    #[serde(rename = "_id")]
    pub id: &'a str,
    pub timestamp: Timestamp,
    pub event_type: &'static str,
    pub identity_map: IdentityMap<'a>,
}

/// A web event (page view, product view, cart add, checkout, purchase).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebEvent<'a> {
    #[serde(flatten)]
    pub head: EventHead<'a>,
    pub web: Web<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commerce: Option<Commerce<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub product_list_items: &'a [ProductListItem],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Web<'a> {
    pub web_page_details: WebPageDetails<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebPageDetails<'a> {
    pub name: &'a str,
    #[serde(rename = "URL")]
    pub url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_views: Option<Measure>,
}

/// XDM measure: `{value}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Measure {
    pub value: f64,
}

pub const ONE: Measure = Measure { value: 1.0 };

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Commerce<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_views: Option<Measure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_list_adds: Option<Measure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkouts: Option<Measure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchases: Option<Measure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Order<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order<'a> {
    #[serde(rename = "purchaseID")]
    pub purchase_id: &'a str,
    pub price_total: f64,
    pub currency_code: &'static str,
}

/// One entry of `productListItems`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductListItem {
    #[serde(rename = "SKU")]
    pub sku: &'static str,
    pub name: &'static str,
    pub quantity: u32,
    pub price_total: f64,
    pub currency_code: &'static str,
}

/// An email marketing event (sent, opened, clicked).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailEvent<'a> {
    #[serde(flatten)]
    pub head: EventHead<'a>,
    pub direct_marketing: DirectMarketing<'a>,
    pub marketing: Marketing,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectMarketing<'a> {
    #[serde(rename = "messageID")]
    pub message_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sends: Option<Measure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens: Option<Measure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clicks: Option<Measure>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Marketing {
    pub campaign_name: &'static str,
}

/// A call-centre event; the details are tenant fields (no standard field group exists).
#[derive(Debug, Serialize)]
pub struct CallEvent<'a> {
    #[serde(flatten)]
    pub head: EventHead<'a>,
    #[serde(rename = "_tessera")]
    pub tenant: CallTenant,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallTenant {
    pub call_center: CallCenter,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallCenter {
    pub reason: &'static str,
    pub duration_seconds: u32,
    pub resolved: bool,
    pub agent_id: u32,
}
