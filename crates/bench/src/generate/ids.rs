//! Identity namespaces and identity values. Values that must be unique (CRMID, emails, phones,
//! loyalty ids, ECIDs) are built from a per-person or per-household counter through a bijection,
//! so uniqueness holds by construction rather than by luck; record `_id`s are random UUIDs.

use rand::Rng;

/// Namespace code of the CRM id (custom, cross-device).
pub const NS_CRMID: &str = "CRMID";
/// Namespace code of email addresses (standard).
pub const NS_EMAIL: &str = "Email";
/// Namespace code of phone numbers (standard).
pub const NS_PHONE: &str = "Phone";
/// Namespace code of Experience Cloud ids (standard, cookie; exactly 38 digits).
pub const NS_ECID: &str = "ECID";
/// Namespace code of loyalty member ids (custom, cross-device).
pub const NS_LOYALTY: &str = "LoyaltyId";

/// Junk email some loyalty sign-ups typed instead of their own.
pub const JUNK_EMAIL: &str = "test@test.com";
/// Junk email entered when the customer "has no email".
pub const JUNK_EMAIL_NONE: &str = "noemail@example.com";
/// Junk phone agents type when the caller will not give a number.
pub const JUNK_PHONE: &str = "+10000000000";

/// `CRM` followed by 9 digits; unique per person below 10^9 people.
pub fn crmid(person: u64) -> String {
    format!(
        "CRM{:09}",
        scramble(person, 1_000_000_000, 387_420_489, 271_828_182)
    )
}

/// `L` followed by 10 digits; unique per person.
pub fn loyalty_id(person: u64) -> String {
    format!(
        "L{:010}",
        scramble(person, 10_000_000_000, 1_162_261_467, 5_772_156_649)
    )
}

/// Mobile phone of a person, E.164 `+1` and ten digits, first digit 2..9.
pub fn mobile_phone(person: u64) -> String {
    phone(person)
}

/// Shared landline of a household, disjoint from every mobile number.
pub fn household_phone(household: u64) -> String {
    phone(PHONE_SPACE / 2 + household)
}

const PHONE_SPACE: u64 = 8_000_000_000;

fn phone(k: u64) -> String {
    format!(
        "+1{}",
        2_000_000_000 + scramble(k, PHONE_SPACE, 1_162_261_467, 3_141_592_653)
    )
}

/// A 38-digit ECID: 19 random digits then 19 digits that encode `slot`, unique per slot.
pub fn ecid<R: Rng>(rng: &mut R, slot: u64) -> String {
    let high: u64 = rng.gen_range(1_000_000_000_000_000_000..10_000_000_000_000_000_000);
    format!(
        "{high:019}{:019}",
        scramble(
            slot,
            10_000_000_000_000_000_000,
            1_162_261_467,
            6_180_339_887_498_948_482,
        )
    )
}

/// A random UUID (version 4 layout) for record `_id`s.
pub fn uuid<R: Rng>(rng: &mut R) -> String {
    let a: u64 = rng.gen();
    let b: u64 = rng.gen();
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// `k -> (k * mul + add) mod space`, a bijection on `[0, space)` when `gcd(mul, space) = 1`
/// (every multiplier used here is a power of 3 and every space a product of 2s and 5s).
fn scramble(k: u64, space: u64, mul: u64, add: u64) -> u64 {
    let v = (u128::from(k) * u128::from(mul) + u128::from(add)) % u128::from(space);
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeSet;

    #[test]
    fn identity_values_are_unique_and_well_shaped() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut seen = BTreeSet::new();
        for k in 0..20_000u64 {
            assert!(seen.insert(crmid(k)));
            assert!(seen.insert(loyalty_id(k)));
            assert!(seen.insert(mobile_phone(k)));
            assert!(seen.insert(household_phone(k)));
            let e = ecid(&mut rng, k);
            assert_eq!(e.len(), 38);
            assert!(e.bytes().all(|c| c.is_ascii_digit()));
            assert!(seen.insert(e));
        }
        let p = mobile_phone(12);
        assert_eq!(p.len(), 12);
        assert!(p.starts_with("+1"));
        let u = uuid(&mut rng);
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
    }
}
