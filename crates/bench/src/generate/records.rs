//! Turns one household into records: CRM and loyalty profiles, web sessions (anonymous ECIDs
//! that log in later, a shopping funnel), call-centre calls and email campaigns, then the
//! ground-truth lines for its people and its collisions. Everything a household needs is drawn
//! from its own RNG stream, so households are independent and the output is deterministic.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::catalog::{self, Product};
use super::clock::{Channel, Rhythm, Timestamp, MS_PER_HOUR, MS_PER_MINUTE, MS_PER_SECOND};
use super::ground_truth::{
    Collision, CollisionKind, EventCounts, GroundTruthPerson, IdentityRef, PersonIdentity,
};
use super::ids::{self, NS_CRMID, NS_ECID, NS_EMAIL, NS_LOYALTY, NS_PHONE};
use super::people::{Household, Person, SignupEmail};
use super::sink::{Dataset, Sink};
use super::xdm::{
    AuthState, CallCenter, CallEvent, CallTenant, Commerce, CrmProfile, DirectMarketing,
    EmailAddress, EmailEvent, EventHead, IdentityMap, Loyalty, LoyaltyProfile, Marketing, Order,
    Person as XdmPerson, PersonName, PhoneNumber, PostalAddress, ProductListItem, Web, WebEvent,
    WebPageDetails, ONE,
};
use crate::error::Result;

/// Every `eventType` the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    PageView,
    ProductView,
    ProductListAdd,
    Checkout,
    Purchase,
    EmailSent,
    EmailOpened,
    EmailClicked,
    InboundCall,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::PageView,
        EventType::ProductView,
        EventType::ProductListAdd,
        EventType::Checkout,
        EventType::Purchase,
        EventType::EmailSent,
        EventType::EmailOpened,
        EventType::EmailClicked,
        EventType::InboundCall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PageView => "web.webpagedetails.pageViews",
            EventType::ProductView => "commerce.productViews",
            EventType::ProductListAdd => "commerce.productListAdds",
            EventType::Checkout => "commerce.checkouts",
            EventType::Purchase => "commerce.purchases",
            EventType::EmailSent => "directMarketing.emailSent",
            EventType::EmailOpened => "directMarketing.emailOpened",
            EventType::EmailClicked => "directMarketing.emailClicked",
            // XDM has no standard call-centre event type; this one is Tessera's own.
            EventType::InboundCall => "callCenter.inboundCall",
        }
    }
}

/// Namespaces in manifest order; the index is used by [`Stats::identities`].
pub const NAMESPACES: [&str; 5] = [NS_CRMID, NS_EMAIL, NS_PHONE, NS_ECID, NS_LOYALTY];
/// Junk identities in manifest order; the index is used by [`Stats::junk_persons`].
pub const JUNK: [(&str, &str); 3] = [
    (NS_EMAIL, ids::JUNK_EMAIL),
    (NS_EMAIL, ids::JUNK_EMAIL_NONE),
    (NS_PHONE, ids::JUNK_PHONE),
];
pub const TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];

/// Counters for the manifest; fixed-size, so memory does not grow with the data set.
#[derive(Debug, Default)]
pub struct Stats {
    pub persons: u64,
    pub households: u64,
    pub event_types: [u64; 9],
    pub identities: [u64; 5],
    pub tiers: [u64; 4],
    pub junk_persons: [u64; 3],
    pub persons_with_purchase: u64,
    pub shared_devices: u64,
    pub household_phones: u64,
}

impl Stats {
    fn event(&mut self, t: EventType) {
        if let Some(i) = EventType::ALL.iter().position(|&x| x == t) {
            if let Some(c) = self.event_types.get_mut(i) {
                *c += 1;
            }
        }
    }

    fn identity(&mut self, namespace: &str) {
        if let Some(i) = NAMESPACES.iter().position(|&x| x == namespace) {
            if let Some(c) = self.identities.get_mut(i) {
                *c += 1;
            }
        }
    }

    fn junk(&mut self, namespace: &str, id: &str) {
        if let Some(i) = JUNK.iter().position(|&(n, v)| n == namespace && v == id) {
            if let Some(c) = self.junk_persons.get_mut(i) {
                *c += 1;
            }
        }
    }
}

/// Buffers reused from person to person (cleared, never shrunk below what one person needs).
#[derive(Debug, Default)]
pub struct Scratch {
    sessions: Vec<SessionPlan>,
    last_session: Vec<usize>,
    logged_in: Vec<bool>,
    used: Vec<bool>,
    cart: Vec<ProductListItem>,
    one_item: Vec<ProductListItem>,
    calls: Vec<CallPlan>,
    mails: Vec<MailPlan>,
}

#[derive(Debug, Clone, Copy)]
struct SessionPlan {
    start: Timestamp,
    device: usize,
    len: u32,
}

#[derive(Debug, Clone, Copy)]
struct CallPlan {
    at: Timestamp,
    /// None = the junk number
    phone: Option<usize>,
    verified: bool,
}

#[derive(Debug, Clone, Copy)]
struct MailPlan {
    at: Timestamp,
    kind: EventType,
    email: usize,
    message: u32,
    campaign: &'static str,
}

#[derive(Debug, Clone, Copy)]
struct Device<'a> {
    ecid: &'a str,
    shared: bool,
}

const SHOP: &str = "https://shop.tessera.example";
const CURRENCY: &str = "USD";

/// Writes every record and ground-truth line of one household.
pub fn write_household(
    hh: &Household,
    rng: &mut ChaCha8Rng,
    rhythm: &Rhythm,
    sink: &mut Sink,
    stats: &mut Stats,
    scratch: &mut Scratch,
) -> Result<()> {
    stats.households += 1;
    for p in &hh.members {
        write_person(hh, p, rng, rhythm, sink, stats, scratch)?;
    }
    let persons: Vec<u64> = hh.members.iter().map(|p| p.index).collect();
    // Every member's first web session is on the shared device and every member's CRM record
    // carries the landline, so both are held by all members.
    if persons.len() >= 2 {
        if let Some(ecid) = &hh.shared_device {
            stats.shared_devices += 1;
            stats.identity(NS_ECID);
            sink.collision(&Collision {
                kind: CollisionKind::SharedDevice,
                namespace: NS_ECID.to_owned(),
                id: ecid.clone(),
                persons: persons.clone(),
            })?;
        }
        if let Some(phone) = &hh.phone {
            stats.household_phones += 1;
            stats.identity(NS_PHONE);
            sink.collision(&Collision {
                kind: CollisionKind::HouseholdPhone,
                namespace: NS_PHONE.to_owned(),
                id: phone.clone(),
                persons,
            })?;
        }
    }
    Ok(())
}

fn write_person(
    hh: &Household,
    p: &Person,
    rng: &mut ChaCha8Rng,
    rhythm: &Rhythm,
    sink: &mut Sink,
    stats: &mut Stats,
    scratch: &mut Scratch,
) -> Result<()> {
    stats.persons += 1;
    let mut truth = GroundTruthPerson {
        person: p.index,
        household: hh.index,
        identities: Vec::with_capacity(8),
        junk: Vec::new(),
        events: EventCounts::default(),
        purchases: 0,
        purchase_total: 0.0,
        loyalty_tier: p.loyalty.as_ref().map(|l| l.tier.to_owned()),
    };
    write_profiles(hh, p, rng, sink, stats, &mut truth)?;

    // Split the person's event budget across channels.
    let total = p.events_target;
    let phones: Vec<&str> = p
        .mobile
        .iter()
        .chain(hh.phone.iter())
        .map(String::as_str)
        .collect();
    let real_calls = if phones.is_empty() {
        0
    } else {
        (f64::from(total) * 0.03 + rng.gen::<f64>()) as u32
    };
    let sends = (f64::from(total) * 0.15 + rng.gen::<f64>()) as u32;
    let web = total.saturating_sub(real_calls + sends + sends / 2).max(1);

    let (web_events, purchases, cents) =
        write_web(hh, p, web, rng, rhythm, sink, stats, scratch, &mut truth)?;
    truth.events.web = web_events;
    truth.purchases = purchases;
    truth.purchase_total = cents as f64 / 100.0;
    if purchases > 0 {
        stats.persons_with_purchase += 1;
    }
    truth.events.call_center = write_calls(
        p, &phones, real_calls, rng, rhythm, sink, stats, scratch, &mut truth,
    )?;
    truth.events.email = write_emails(p, sends, rng, rhythm, sink, stats, scratch)?;
    sink.person(&truth)
}

fn own(truth: &mut GroundTruthPerson, stats: &mut Stats, namespace: &str, id: &str) {
    stats.identity(namespace);
    truth.identities.push(PersonIdentity {
        namespace: namespace.to_owned(),
        id: id.to_owned(),
        collision: None,
    });
}

fn shared(truth: &mut GroundTruthPerson, namespace: &str, id: &str, kind: CollisionKind) {
    truth.identities.push(PersonIdentity {
        namespace: namespace.to_owned(),
        id: id.to_owned(),
        collision: Some(kind),
    });
}

fn junk(truth: &mut GroundTruthPerson, stats: &mut Stats, namespace: &str, id: &str) {
    let r = IdentityRef {
        namespace: namespace.to_owned(),
        id: id.to_owned(),
    };
    if !truth.junk.contains(&r) {
        stats.junk(namespace, id);
        truth.junk.push(r);
    }
}

fn write_profiles(
    hh: &Household,
    p: &Person,
    rng: &mut ChaCha8Rng,
    sink: &mut Sink,
    stats: &mut Stats,
    truth: &mut GroundTruthPerson,
) -> Result<()> {
    let email1 = p.emails.first().map(String::as_str).unwrap_or_default();
    let mut map = IdentityMap::new();
    map.push(NS_CRMID, &p.crmid, AuthState::Ambiguous, true);
    map.push(NS_EMAIL, email1, AuthState::Ambiguous, false);
    own(truth, stats, NS_CRMID, &p.crmid);
    own(truth, stats, NS_EMAIL, email1);
    if let Some(m) = &p.mobile {
        map.push(NS_PHONE, m, AuthState::Ambiguous, false);
        own(truth, stats, NS_PHONE, m);
    }
    if let Some(h) = &hh.phone {
        map.push(NS_PHONE, h, AuthState::Ambiguous, false);
        shared(truth, NS_PHONE, h, CollisionKind::HouseholdPhone);
    }
    let loyalty = p.loyalty.as_ref().map(|l| {
        if let Some(i) = TIERS.iter().position(|&t| t == l.tier) {
            if let Some(c) = stats.tiers.get_mut(i) {
                *c += 1;
            }
        }
        Loyalty {
            loyalty_id: [l.id.as_str()],
            program: "Tessera Rewards",
            status: "active",
            tier: l.tier,
            points: l.points,
            lifetime_points: l.lifetime_points,
            join_date: l.join_date,
        }
    });
    if let Some(l) = &p.loyalty {
        map.push(NS_LOYALTY, &l.id, AuthState::Ambiguous, false);
        own(truth, stats, NS_LOYALTY, &l.id);
    }
    let id = ids::uuid(rng);
    sink.record(
        Dataset::CrmProfiles,
        &CrmProfile {
            id: &id,
            identity_map: map,
            person: XdmPerson {
                name: PersonName {
                    first_name: p.first_name,
                    last_name: p.last_name,
                    full_name: &p.full_name,
                },
                birth_date: p.birth_date,
                gender: p.gender,
            },
            personal_email: EmailAddress {
                address: email1,
                primary: true,
                status: "active",
            },
            mobile_phone: p.mobile.as_deref().map(|number| PhoneNumber {
                number,
                primary: true,
            }),
            home_phone: hh.phone.as_deref().map(|number| PhoneNumber {
                number,
                primary: false,
            }),
            home_address: PostalAddress {
                street1: &hh.street1,
                city: hh.city.name,
                state_province: hh.city.state,
                postal_code: &hh.postal_code,
                country: "United States",
                country_code: "US",
            },
            loyalty,
        },
    )?;

    let Some(l) = &p.loyalty else {
        return Ok(());
    };
    let signup = match l.signup_email {
        SignupEmail::Own(i) => {
            let e = p.emails.get(i).map(String::as_str).unwrap_or(email1);
            if i > 0 {
                own(truth, stats, NS_EMAIL, e);
            }
            e
        }
        SignupEmail::Junk(j) => {
            junk(truth, stats, NS_EMAIL, j);
            j
        }
    };
    let mut map = IdentityMap::new();
    map.push(NS_LOYALTY, &l.id, AuthState::Ambiguous, true);
    map.push(NS_EMAIL, signup, AuthState::Ambiguous, false);
    let id = ids::uuid(rng);
    sink.record(
        Dataset::LoyaltyProfiles,
        &LoyaltyProfile {
            id: &id,
            identity_map: map,
            personal_email: EmailAddress {
                address: signup,
                primary: true,
                status: "active",
            },
            loyalty: Loyalty {
                loyalty_id: [l.id.as_str()],
                program: "Tessera Rewards",
                status: "active",
                tier: l.tier,
                points: l.points,
                lifetime_points: l.lifetime_points,
                join_date: l.join_date,
            },
        },
    )
}

/// Geometric number of extra events in a session: mean (1 - p) / p, capped.
fn geometric(rng: &mut ChaCha8Rng, p: f64, cap: u32) -> u32 {
    let mut n = 0;
    while n < cap && !rng.gen_bool(p) {
        n += 1;
    }
    n
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    PageView,
    ProductView,
    ProductListAdd,
    Checkout,
    Purchase,
}

/// Web sessions of one person. Returns (events written, purchases, purchase cents).
#[allow(clippy::too_many_arguments)]
fn write_web(
    hh: &Household,
    p: &Person,
    target: u32,
    rng: &mut ChaCha8Rng,
    rhythm: &Rhythm,
    sink: &mut Sink,
    stats: &mut Stats,
    scratch: &mut Scratch,
    truth: &mut GroundTruthPerson,
) -> Result<(u32, u32, u64)> {
    let mut devices: Vec<Device<'_>> = Vec::with_capacity(p.devices.len() + 1);
    if let Some(s) = &hh.shared_device {
        devices.push(Device {
            ecid: s,
            shared: true,
        });
    }
    devices.extend(p.devices.iter().map(|d| Device {
        ecid: d,
        shared: false,
    }));

    // Plan sessions: the first ones visit each device once (shared device first), later ones
    // pick a device at random; then play them in time order.
    scratch.sessions.clear();
    let mut remaining = target;
    while remaining > 0 {
        let len = (1 + geometric(rng, 0.2, 39)).min(remaining);
        let k = scratch.sessions.len();
        let device = if k < devices.len() {
            k
        } else {
            rng.gen_range(0..devices.len().max(1))
        };
        scratch.sessions.push(SessionPlan {
            start: rhythm.sample(rng, Channel::Web),
            device,
            len,
        });
        remaining -= len;
    }
    scratch.sessions.sort_by_key(|s| s.start);
    scratch.last_session.clear();
    scratch.last_session.resize(devices.len(), usize::MAX);
    scratch.used.clear();
    scratch.used.resize(devices.len(), false);
    scratch.logged_in.clear();
    scratch.logged_in.resize(devices.len(), false);
    for (i, s) in scratch.sessions.iter().enumerate() {
        if let Some(slot) = scratch.last_session.get_mut(s.device) {
            *slot = i;
        }
        if let Some(u) = scratch.used.get_mut(s.device) {
            *u = true;
        }
    }
    for (d, used) in devices.iter().zip(&scratch.used) {
        if !used {
            continue;
        }
        if d.shared {
            shared(truth, NS_ECID, d.ecid, CollisionKind::SharedDevice);
        } else {
            own(truth, stats, NS_ECID, d.ecid);
        }
    }

    let mut written = 0;
    let mut purchases = 0;
    let mut cents_total = 0u64;
    let sessions = std::mem::take(&mut scratch.sessions);
    for (si, s) in sessions.iter().enumerate() {
        let Some(device) = devices.get(s.device).copied() else {
            continue;
        };
        let remembered = scratch.logged_in.get(s.device).copied().unwrap_or(false);
        let last = scratch.last_session.get(s.device).copied() == Some(si);
        // Index of the event at which the person logs in (u32::MAX: stays anonymous).
        let mut auth_from = if device.shared || remembered {
            0
        } else if last || rng.gen_bool(0.35) {
            rng.gen_range(0..s.len)
        } else {
            u32::MAX
        };
        let mut t = s.start;
        scratch.cart.clear();
        let mut viewed: Option<Product> = None;
        let mut pending_purchase = false;
        for i in 0..s.len {
            let step = if pending_purchase {
                pending_purchase = false;
                Step::Purchase
            } else if i == 0 {
                Step::PageView
            } else {
                let r: f64 = rng.gen();
                if !scratch.cart.is_empty() && r < 0.10 {
                    Step::Checkout
                } else if r < 0.45 {
                    Step::PageView
                } else if r < 0.80 {
                    Step::ProductView
                } else {
                    Step::ProductListAdd
                }
            };
            if step == Step::Checkout {
                // checkout requires an account
                auth_from = auth_from.min(i);
                pending_purchase = i + 1 < s.len && rng.gen_bool(0.75);
            }
            let authenticated = i >= auth_from;
            let mut map = IdentityMap::new();
            map.push(NS_ECID, device.ecid, AuthState::Ambiguous, true);
            if authenticated {
                map.push(NS_CRMID, &p.crmid, AuthState::Authenticated, false);
            }
            let id = ids::uuid(rng);
            let ts = rhythm.clamp(t);
            let mut order_id = String::new();
            let mut commerce = None;
            let (event_type, name, url, items): (EventType, &str, String, &[ProductListItem]) =
                match step {
                    Step::PageView => {
                        if rng.gen_bool(0.35) {
                            let c = catalog::pick(
                                catalog::PRODUCTS,
                                rng.gen_range(0..catalog::PRODUCTS.len()),
                                FALLBACK_PRODUCT,
                            )
                            .category;
                            (EventType::PageView, c, format!("{SHOP}/c/{c}"), &[])
                        } else {
                            let (name, path) = catalog::pick(
                                catalog::PAGES,
                                rng.gen_range(0..catalog::PAGES.len()),
                                ("home", "/"),
                            );
                            (EventType::PageView, name, format!("{SHOP}{path}"), &[])
                        }
                    }
                    Step::ProductView => {
                        let product = random_product(rng);
                        viewed = Some(product);
                        scratch.one_item.clear();
                        scratch.one_item.push(item(product, 1));
                        commerce = Some(Commerce {
                            product_views: Some(ONE),
                            ..Commerce::default()
                        });
                        (
                            EventType::ProductView,
                            product.name,
                            format!("{SHOP}/p/{}", product.sku),
                            &scratch.one_item,
                        )
                    }
                    Step::ProductListAdd => {
                        let product = match viewed {
                            Some(v) => v,
                            None => random_product(rng),
                        };
                        let quantity = rng.gen_range(1..=2);
                        scratch.one_item.clear();
                        scratch.one_item.push(item(product, quantity));
                        match scratch.cart.iter_mut().find(|c| c.sku == product.sku) {
                            Some(line) => {
                                line.quantity += quantity;
                                line.price_total = cents_to_usd(
                                    u64::from(product.price_cents) * u64::from(line.quantity),
                                );
                            }
                            None => scratch.cart.push(item(product, quantity)),
                        }
                        commerce = Some(Commerce {
                            product_list_adds: Some(ONE),
                            ..Commerce::default()
                        });
                        (
                            EventType::ProductListAdd,
                            "cart",
                            format!("{SHOP}/cart"),
                            &scratch.one_item,
                        )
                    }
                    Step::Checkout => {
                        commerce = Some(Commerce {
                            checkouts: Some(ONE),
                            ..Commerce::default()
                        });
                        (
                            EventType::Checkout,
                            "checkout",
                            format!("{SHOP}/checkout"),
                            &scratch.cart,
                        )
                    }
                    Step::Purchase => {
                        let cents: u64 = scratch
                            .cart
                            .iter()
                            .map(|c| {
                                catalog::PRODUCTS
                                    .iter()
                                    .find(|p| p.sku == c.sku)
                                    .map_or(0, |p| u64::from(p.price_cents))
                                    * u64::from(c.quantity)
                            })
                            .sum();
                        purchases += 1;
                        cents_total += cents;
                        order_id = format!("ORD-{}-{}", p.index, purchases);
                        commerce = Some(Commerce {
                            purchases: Some(ONE),
                            order: Some(Order {
                                purchase_id: "",
                                price_total: cents_to_usd(cents),
                                currency_code: CURRENCY,
                            }),
                            ..Commerce::default()
                        });
                        (
                            EventType::Purchase,
                            "order confirmation",
                            format!("{SHOP}/checkout/confirmation"),
                            &scratch.cart,
                        )
                    }
                };
            if let Some(Commerce {
                order: Some(order), ..
            }) = commerce.as_mut()
            {
                order.purchase_id = &order_id;
            }
            sink.record(
                Dataset::WebEvents,
                &WebEvent {
                    head: EventHead {
                        id: &id,
                        timestamp: ts,
                        event_type: event_type.as_str(),
                        identity_map: map,
                    },
                    web: Web {
                        web_page_details: WebPageDetails {
                            name,
                            url: &url,
                            page_views: (event_type == EventType::PageView).then_some(ONE),
                        },
                    },
                    commerce,
                    product_list_items: items,
                },
            )?;
            stats.event(event_type);
            written += 1;
            if step == Step::Purchase {
                scratch.cart.clear();
            }
            t = Timestamp(t.0 + rng.gen_range(5 * MS_PER_SECOND..3 * MS_PER_MINUTE));
        }
        if auth_from < s.len {
            if let Some(l) = scratch.logged_in.get_mut(s.device) {
                *l = true;
            }
        }
    }
    scratch.sessions = sessions;
    Ok((written, purchases, cents_total))
}

const FALLBACK_PRODUCT: Product = Product {
    sku: "TSR-0000",
    name: "Gift Card",
    price_cents: 5_000,
    category: "accessories",
};

fn random_product(rng: &mut ChaCha8Rng) -> Product {
    catalog::pick(
        catalog::PRODUCTS,
        rng.gen_range(0..catalog::PRODUCTS.len()),
        FALLBACK_PRODUCT,
    )
}

fn item(product: Product, quantity: u32) -> ProductListItem {
    ProductListItem {
        sku: product.sku,
        name: product.name,
        quantity,
        price_total: cents_to_usd(u64::from(product.price_cents) * u64::from(quantity)),
        currency_code: CURRENCY,
    }
}

fn cents_to_usd(cents: u64) -> f64 {
    cents as f64 / 100.0
}

/// Call-centre events. The caller's phone is their mobile or the household landline; the agent
/// verifies the customer (adds the CRMID) on most calls; a few people have one call logged
/// with a junk number, always verified (that is what makes junk numbers dangerous).
#[allow(clippy::too_many_arguments)]
fn write_calls(
    p: &Person,
    phones: &[&str],
    real_calls: u32,
    rng: &mut ChaCha8Rng,
    rhythm: &Rhythm,
    sink: &mut Sink,
    stats: &mut Stats,
    scratch: &mut Scratch,
    truth: &mut GroundTruthPerson,
) -> Result<u32> {
    scratch.calls.clear();
    if p.junk_call {
        scratch.calls.push(CallPlan {
            at: rhythm.sample(rng, Channel::CallCentre),
            phone: None,
            verified: true,
        });
        junk(truth, stats, NS_PHONE, ids::JUNK_PHONE);
    }
    for _ in 0..real_calls {
        let phone = if phones.len() > 1 && rng.gen_bool(0.3) {
            1
        } else {
            0
        };
        scratch.calls.push(CallPlan {
            at: rhythm.sample(rng, Channel::CallCentre),
            phone: Some(phone),
            verified: rng.gen_bool(0.8),
        });
    }
    scratch.calls.sort_by_key(|c| c.at);
    let calls = std::mem::take(&mut scratch.calls);
    for c in &calls {
        let number = match c.phone {
            Some(i) => phones.get(i).copied().unwrap_or(ids::JUNK_PHONE),
            None => ids::JUNK_PHONE,
        };
        let mut map = IdentityMap::new();
        map.push(NS_PHONE, number, AuthState::Ambiguous, true);
        if c.verified {
            map.push(NS_CRMID, &p.crmid, AuthState::Authenticated, false);
        }
        let id = ids::uuid(rng);
        let reason = catalog::pick(
            catalog::CALL_REASONS,
            rng.gen_range(0..catalog::CALL_REASONS.len()),
            "order-status",
        );
        sink.record(
            Dataset::CallCenterEvents,
            &CallEvent {
                head: EventHead {
                    id: &id,
                    timestamp: c.at,
                    event_type: EventType::InboundCall.as_str(),
                    identity_map: map,
                },
                tenant: CallTenant {
                    call_center: CallCenter {
                        reason,
                        duration_seconds: 30 + geometric(rng, 0.004, 3_600),
                        resolved: rng.gen_bool(0.8),
                        agent_id: rng.gen_range(100..400),
                    },
                },
            },
        )?;
        stats.event(EventType::InboundCall);
    }
    let n = u32::try_from(calls.len()).unwrap_or(u32::MAX);
    scratch.calls = calls;
    Ok(n)
}

/// Email campaigns: sends to the person's own addresses, some opened hours later, some of
/// those clicked minutes after opening.
fn write_emails(
    p: &Person,
    sends: u32,
    rng: &mut ChaCha8Rng,
    rhythm: &Rhythm,
    sink: &mut Sink,
    stats: &mut Stats,
    scratch: &mut Scratch,
) -> Result<u32> {
    scratch.mails.clear();
    let addresses = p.emails.len().max(1);
    for message in 0..sends {
        let at = rhythm.sample(rng, Channel::EmailSend);
        let email = usize::try_from(message).unwrap_or(0) % addresses;
        let campaign = catalog::pick(
            catalog::CAMPAIGNS,
            rng.gen_range(0..catalog::CAMPAIGNS.len()),
            "weekly-newsletter",
        );
        let mut plan = MailPlan {
            at,
            kind: EventType::EmailSent,
            email,
            message,
            campaign,
        };
        scratch.mails.push(plan);
        if rng.gen_bool(0.35) {
            // exponential delay, mean 4 hours
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            let delay = (-u.ln() * 4.0 * MS_PER_HOUR as f64) as i64;
            plan.at = rhythm.clamp(Timestamp(at.0 + MS_PER_MINUTE + delay));
            plan.kind = EventType::EmailOpened;
            scratch.mails.push(plan);
            if rng.gen_bool(0.3) {
                plan.at = rhythm.clamp(Timestamp(
                    plan.at.0 + rng.gen_range(5 * MS_PER_SECOND..10 * MS_PER_MINUTE),
                ));
                plan.kind = EventType::EmailClicked;
                scratch.mails.push(plan);
            }
        }
    }
    scratch.mails.sort_by_key(|m| m.at);
    let mails = std::mem::take(&mut scratch.mails);
    for m in &mails {
        let address = p
            .emails
            .get(m.email)
            .map(String::as_str)
            .unwrap_or_default();
        let mut map = IdentityMap::new();
        map.push(NS_EMAIL, address, AuthState::Ambiguous, true);
        let id = ids::uuid(rng);
        let message_id = format!("MSG-{}-{}", p.index, m.message);
        sink.record(
            Dataset::EmailEvents,
            &EmailEvent {
                head: EventHead {
                    id: &id,
                    timestamp: m.at,
                    event_type: m.kind.as_str(),
                    identity_map: map,
                },
                direct_marketing: DirectMarketing {
                    message_id: &message_id,
                    sends: (m.kind == EventType::EmailSent).then_some(ONE),
                    opens: (m.kind == EventType::EmailOpened).then_some(ONE),
                    clicks: (m.kind == EventType::EmailClicked).then_some(ONE),
                },
                marketing: Marketing {
                    campaign_name: m.campaign,
                },
            },
        )?;
        stats.event(m.kind);
    }
    let n = u32::try_from(mails.len()).unwrap_or(u32::MAX);
    scratch.mails = mails;
    Ok(n)
}
