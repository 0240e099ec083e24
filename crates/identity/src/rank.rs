//! Which identities a full graph gives up first.
//!
//! AEP removes identities of a graph at capacity by identity type — cookie identities
//! first, then device identities, then the rest — and within a type the oldest first
//! (identity-service guardrails). Cross-device (people) identities such as CRM ids go last.

/// Eviction rank of a namespace code: lower ranks are evicted first.
pub fn eviction_rank(namespace: &str) -> u8 {
    match namespace.to_ascii_lowercase().as_str() {
        // Cookie namespaces.
        "ecid" | "aaid" | "aamid" | "tntid" | "adcloud" | "gclid" => 0,
        // Device namespaces.
        "idfa" | "gaid" | "waid" | "amazon_fire_tv_id" | "roku_id" | "samsung_tv_ifa"
        | "lg_tv_id" => 1,
        // Hashed and plain contact identities.
        "phone" | "phone_e.164" | "phone_sha256" | "phone_sha256_e.164" => 3,
        "email" | "email_lc_sha256" => 4,
        // Cross-device person identities.
        "crmid" => 9,
        // Custom namespaces: after devices and cookies, before person identities.
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_go_before_devices_before_people() {
        assert!(eviction_rank("ECID") < eviction_rank("IDFA"));
        assert!(eviction_rank("IDFA") < eviction_rank("Email"));
        assert!(eviction_rank("Email") < eviction_rank("CRMID"));
        assert!(eviction_rank("LoyaltyId") < eviction_rank("CRMID"));
    }
}
