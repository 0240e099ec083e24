//! Households and the people in them: names, contact details, loyalty membership, devices and
//! the identities each holds. A household is the unit of generation: its members may share a
//! tablet (one ECID used by everyone who logs in on it) and a landline; both are the designed
//! collisions that a naive stitcher would collapse into one profile.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::catalog::{self, City};
use super::clock::{CivilDate, Timestamp, MS_PER_DAY};
use super::ids;

/// Probability that a household of two or more shares a device (tablet, family computer).
const P_SHARED_DEVICE: f64 = 0.15;
/// Probability that a household of two or more gives the same landline to the CRM.
const P_HOUSEHOLD_PHONE: f64 = 0.12;
const P_MOBILE: f64 = 0.85;
const P_LOYALTY: f64 = 0.55;
/// Of loyalty members: signed up with a second address.
const P_SECOND_EMAIL: f64 = 0.5;
/// Of loyalty members: typed a junk address at sign-up.
const P_JUNK_EMAIL: f64 = 0.03;
/// Of people with a phone: one call where the agent typed a junk number.
const P_JUNK_CALL: f64 = 0.01;
/// Hard cap on a person's identities (junk excluded), from the workload definition (3 to 8).
pub const MAX_IDENTITIES: usize = 8;

/// A household: one address, maybe a shared device and a shared phone.
#[derive(Debug)]
pub struct Household {
    pub index: u64,
    pub street1: String,
    pub city: City,
    pub postal_code: String,
    pub shared_device: Option<String>,
    pub phone: Option<String>,
    pub members: Vec<Person>,
}

/// How a loyalty member's sign-up email relates to their own addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupEmail {
    /// Index into [`Person::emails`].
    Own(usize),
    /// A junk address shared with strangers.
    Junk(&'static str),
}

#[derive(Debug)]
pub struct LoyaltyMembership {
    pub id: String,
    pub tier: &'static str,
    pub points: u32,
    pub lifetime_points: u32,
    pub join_date: Timestamp,
    pub signup_email: SignupEmail,
}

/// One person and every identity they own. `devices` are personal ECIDs; the household's shared
/// device and phone are held by the household.
#[derive(Debug)]
pub struct Person {
    pub index: u64,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub full_name: String,
    pub gender: &'static str,
    pub birth_date: CivilDate,
    pub crmid: String,
    pub emails: Vec<String>,
    pub mobile: Option<String>,
    pub loyalty: Option<LoyaltyMembership>,
    pub devices: Vec<String>,
    /// One of this person's calls was logged with [`ids::JUNK_PHONE`].
    pub junk_call: bool,
    /// Target number of events across all event datasets.
    pub events_target: u32,
}

/// Household sizes 1..=4 with these weights (US-like distribution).
const HOUSEHOLD_SIZE_WEIGHTS: [f64; 4] = [0.45, 0.33, 0.12, 0.10];

/// Draws one household of at most `max_members` people, numbered from `first_person`.
pub fn household(
    rng: &mut ChaCha8Rng,
    index: u64,
    first_person: u64,
    max_members: u64,
    events_per_person: f64,
    period_start: Timestamp,
) -> Household {
    let size = draw_household_size(rng).min(max_members).max(1);
    let city = catalog::pick(
        catalog::CITIES,
        rng.gen_range(0..catalog::CITIES.len()),
        FALLBACK_CITY,
    );
    let street1 = format!(
        "{} {}",
        rng.gen_range(1..9_999u32),
        catalog::pick(
            catalog::STREETS,
            rng.gen_range(0..catalog::STREETS.len()),
            "Main St"
        )
    );
    let postal_code = format!("{}{:02}", city.zip_prefix, rng.gen_range(0..100u32));
    let family_name = pick_str(rng, catalog::LAST_NAMES);
    let shared_device =
        (size >= 2 && rng.gen_bool(P_SHARED_DEVICE)).then(|| ids::ecid(rng, first_person * 4 + 3));
    let phone = (size >= 2 && rng.gen_bool(P_HOUSEHOLD_PHONE)).then(|| ids::household_phone(index));
    let mut members = Vec::with_capacity(usize::try_from(size).unwrap_or(1));
    for k in 0..size {
        // most members share the family name; some keep their own
        let last_name = if k == 0 || rng.gen_bool(0.9) {
            family_name
        } else {
            pick_str(rng, catalog::LAST_NAMES)
        };
        let shared = usize::from(shared_device.is_some()) + usize::from(phone.is_some());
        members.push(person(
            rng,
            first_person + k,
            last_name,
            shared,
            events_per_person,
            period_start,
        ));
    }
    Household {
        index,
        street1,
        city,
        postal_code,
        shared_device,
        phone,
        members,
    }
}

const FALLBACK_CITY: City = City {
    name: "Springfield",
    state: "IL",
    zip_prefix: "627",
};

fn draw_household_size(rng: &mut ChaCha8Rng) -> u64 {
    let mut x = rng.gen_range(0.0..1.0);
    for (size, w) in (1u64..).zip(HOUSEHOLD_SIZE_WEIGHTS) {
        if x < w {
            return size;
        }
        x -= w;
    }
    1
}

fn pick_str(rng: &mut ChaCha8Rng, list: &'static [&'static str]) -> &'static str {
    catalog::pick(list, rng.gen_range(0..list.len().max(1)), "Smith")
}

/// One person. `shared_identities` counts the household identities they also hold, so that the
/// personal devices can be capped to keep the total within [`MAX_IDENTITIES`].
fn person(
    rng: &mut ChaCha8Rng,
    index: u64,
    last_name: &'static str,
    shared_identities: usize,
    events_per_person: f64,
    period_start: Timestamp,
) -> Person {
    let roll = rng.gen_range(0..100u32);
    let (gender, first_name) = match roll {
        0..=48 => ("female", pick_str(rng, catalog::FEMALE_FIRST_NAMES)),
        49..=97 => ("male", pick_str(rng, catalog::MALE_FIRST_NAMES)),
        _ => ("not_specified", pick_str(rng, catalog::FEMALE_FIRST_NAMES)),
    };
    let birth_date = CivilDate {
        year: rng.gen_range(1945..2007),
        month: rng.gen_range(1..=12),
        day: rng.gen_range(1..=28),
    };
    let first_lower = first_name.to_ascii_lowercase();
    let last_lower = last_name.to_ascii_lowercase();
    let mut emails = vec![format!(
        "{first_lower}.{last_lower}{index}@{}",
        pick_str(rng, catalog::EMAIL_DOMAINS)
    )];
    let mobile = rng.gen_bool(P_MOBILE).then(|| ids::mobile_phone(index));
    let loyalty = rng.gen_bool(P_LOYALTY).then(|| {
        let signup_email = if rng.gen_bool(P_JUNK_EMAIL) {
            SignupEmail::Junk(if rng.gen_bool(0.67) {
                ids::JUNK_EMAIL
            } else {
                ids::JUNK_EMAIL_NONE
            })
        } else if rng.gen_bool(P_SECOND_EMAIL) {
            let initial = last_lower.get(..1).unwrap_or("x");
            emails.push(format!(
                "{first_lower}{initial}{index}@{}",
                pick_str(rng, catalog::EMAIL_DOMAINS)
            ));
            SignupEmail::Own(1)
        } else {
            SignupEmail::Own(0)
        };
        let tier_roll = rng.gen_range(0..100u32);
        let tier = match tier_roll {
            0..=54 => "bronze",
            55..=84 => "silver",
            85..=96 => "gold",
            _ => "platinum",
        };
        let lifetime_points = rng.gen_range(0..5_000u32) * (1 + tier_roll / 25);
        LoyaltyMembership {
            id: ids::loyalty_id(index),
            tier,
            points: lifetime_points / rng.gen_range(1..4u32),
            lifetime_points,
            // joined up to five years before the period
            join_date: Timestamp(
                period_start.0 - rng.gen_range(1..5 * 365) * MS_PER_DAY
                    + rng.gen_range(0..MS_PER_DAY),
            ),
            signup_email,
        }
    });
    let junk_call = (mobile.is_some() || shared_identities > 0) && rng.gen_bool(P_JUNK_CALL);
    let fixed = 1 // CRMID
        + emails.len()
        + usize::from(mobile.is_some())
        + usize::from(loyalty.is_some())
        + shared_identities;
    let wanted_devices = 1 + usize::from(rng.gen_bool(0.5)) + usize::from(rng.gen_bool(0.25));
    let devices = wanted_devices
        .min(MAX_IDENTITIES.saturating_sub(fixed))
        .max(1);
    let devices = (0..devices)
        .map(|d| ids::ecid(rng, index * 4 + d as u64))
        .collect();
    Person {
        index,
        first_name,
        last_name,
        full_name: format!("{first_name} {last_name}"),
        gender,
        birth_date,
        crmid: ids::crmid(index),
        emails,
        mobile,
        loyalty,
        devices,
        junk_call,
        events_target: heavy_tailed_count(rng, events_per_person),
    }
}

/// Upper bound on one person's events: keeps per-person memory bounded whatever the tail.
pub const MAX_EVENTS_PER_PERSON: u32 = 5_000;

/// Log-normal event count with the given mean (sigma 1.1: median about 55% of the mean, one
/// person in a hundred above ~7x the mean), at least 1.
fn heavy_tailed_count(rng: &mut ChaCha8Rng, mean: f64) -> u32 {
    const SIGMA: f64 = 1.1;
    if mean <= 0.0 {
        return 1;
    }
    let mu = mean.ln() - SIGMA * SIGMA / 2.0;
    let n = (mu + SIGMA * standard_normal(rng)).exp().round();
    // float-to-int `as` saturates; the clamp keeps it in range anyway
    (n.clamp(1.0, f64::from(MAX_EVENTS_PER_PERSON))) as u32
}

/// Box-Muller transform (one of the pair is enough here).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn event_counts_are_heavy_tailed_around_the_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut counts: Vec<u32> = (0..100_000)
            .map(|_| heavy_tailed_count(&mut rng, 30.0))
            .collect();
        counts.sort_unstable();
        let mean = counts.iter().map(|&c| f64::from(c)).sum::<f64>() / counts.len() as f64;
        assert!((27.0..33.0).contains(&mean), "mean {mean}");
        let median = counts[counts.len() / 2];
        let p99 = counts[counts.len() * 99 / 100];
        assert!(median < 20, "median {median}");
        assert!(p99 > 150, "p99 {p99}");
    }

    #[test]
    fn people_hold_three_to_eight_identities() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut next = 0;
        for h in 0..2_000 {
            let hh = household(&mut rng, h, next, 10, 20.0, Timestamp(0));
            next += hh.members.len() as u64;
            let shared = usize::from(hh.shared_device.is_some()) + usize::from(hh.phone.is_some());
            for p in &hh.members {
                let n = 1
                    + p.emails.len()
                    + usize::from(p.mobile.is_some())
                    + usize::from(p.loyalty.is_some())
                    + p.devices.len()
                    + shared;
                assert!((3..=MAX_IDENTITIES).contains(&n), "{n} identities: {p:?}");
            }
        }
    }
}
