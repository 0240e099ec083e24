//! Identifiers minted by the catalog and the inlets.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::RngCore;

/// A catalog object id in AEP's style: 24 lowercase hex characters, the first 8 the creation
/// second (so ids sort roughly by creation), the rest random.
pub fn catalog_id(now_ms: i64) -> String {
    let seconds = u32::try_from(now_ms.div_euclid(1000)).unwrap_or(u32::MAX);
    let mut random = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut random);
    format!("{seconds:08x}{}", hex::encode(random))
}

/// A UUID-shaped id (flow service connections use them).
pub fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let h = hex::encode(bytes);
    let part = |a: usize, b: usize| h.get(a..b).unwrap_or("0").to_owned();
    format!(
        "{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    )
}

/// Mints receipt ids (`xactionId`) in DCS's `<receivedMs>:<node>:<counter>` form, unique per
/// process run (the node part is random per process).
#[derive(Debug)]
pub struct ReceiptIds {
    node: u32,
    counter: AtomicU64,
}

impl Default for ReceiptIds {
    fn default() -> Self {
        Self {
            node: rand::thread_rng().next_u32() % 10_000,
            counter: AtomicU64::new(0),
        }
    }
}

impl ReceiptIds {
    /// A fresh receipt id for a message received at `received_ms`.
    pub fn next(&self, received_ms: i64) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{received_ms}:{}:{n}", self.node)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_ids_are_24_hex_and_time_prefixed() {
        let id = catalog_id(1_700_000_000_000);
        assert_eq!(id.len(), 24);
        assert!(id.starts_with(&format!("{:08x}", 1_700_000_000u32)));
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(catalog_id(0), catalog_id(0));
    }

    #[test]
    fn receipts_are_unique() {
        let ids = ReceiptIds::default();
        assert_ne!(ids.next(5), ids.next(5));
        assert!(ids.next(5).starts_with("5:"));
    }
}
