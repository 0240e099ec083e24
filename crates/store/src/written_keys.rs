//! Every key ever written to the row-cached tables, as a blocked Bloom filter, so that a
//! point read of a key nobody wrote skips the engine.
//!
//! Why: linking a record reads keys that do not exist yet (identities seen for the first
//! time, candidate ids for new graphs), and the engine answers "absent" only after walking
//! every memtable's skip list and checking every table's filter. Linking a million records,
//! those reads were about 8 µs of a record's 26 µs of resolving and linking; resolving an
//! identity never seen took 7-8 µs at the median against 3 µs for one found in the row
//! cache (1 µs with this filter).
//!
//! Sound because every write goes through `EmbeddedStore::commit`, which adds its keys
//! before the engine applies the batch and before it is published: a reader that noted the
//! published version `v` and then finds a key's bits missing knows no commit up to `v`
//! wrote it. Keys stored before the store opened are added by a scan in the background;
//! until it has finished, the filter answers nothing. Deleted keys stay in (a false
//! positive costs the engine read it would have cost anyway).
//!
//! Sized at open for twice the keys the tables then hold, and at least as many keys as the
//! row cache has stamp slots (one per 64 bytes of row cache; [`MIN_KEYS`] at least), at
//! [`BITS_PER_KEY`] bits each. A store that grows past that gets more false positives, each
//! one an engine read, until it is reopened.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Bits of filter per key it is sized for: with [`BITS_SET`] bits in one 512-bit block, about
/// 0.5% false positives at that load.
const BITS_PER_KEY: u64 = 16;
/// Bits set per key, all in one block of [`BLOCK_WORDS`] words (one cache line), so a check
/// costs one cache miss.
const BITS_SET: u32 = 6;
const BLOCK_WORDS: usize = 8;
/// Fewest keys a filter is sized for (2 MB of bits).
const MIN_KEYS: u64 = 1 << 20;
/// Words per lazily allocated chunk, so that stores that write little (tests open hundreds)
/// do not zero megabytes at open.
const CHUNK_WORDS: usize = 1 << 16;

pub(crate) struct WrittenKeys {
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    chunk_words: usize,
    /// Blocks - 1 (a power of two).
    block_mask: u64,
    /// Set once the keys stored before the open are all in.
    complete: AtomicBool,
}

impl WrittenKeys {
    /// A filter for `stored` keys stored now and at least `floor` keys in all.
    pub(crate) fn for_keys(stored: u64, floor: u64) -> Self {
        let bits = stored
            .saturating_mul(2)
            .max(floor)
            .max(MIN_KEYS)
            .saturating_mul(BITS_PER_KEY)
            .checked_next_power_of_two()
            .unwrap_or(1 << 63);
        let words = usize::try_from(bits / 64).unwrap_or(1 << (usize::BITS - 2));
        let chunk_words = words.min(CHUNK_WORDS);
        let blocks = u64::try_from(words / BLOCK_WORDS).unwrap_or(1).max(1);
        Self {
            chunks: (0..words / chunk_words).map(|_| OnceLock::new()).collect(),
            chunk_words,
            block_mask: blocks - 1,
            complete: AtomicBool::new(false),
        }
    }

    /// The words of `hash`'s bits and, per word, the bit.
    fn bits(&self, hash: u64) -> [(usize, u64); BITS_SET as usize] {
        // The block from the key's hash; the bits in it from a remix of it, independent of
        // the block (and of the row cache's and the stamps' use of the low bits).
        let block = usize::try_from(hash & self.block_mask).unwrap_or(0);
        let mut mixed = splitmix64(hash);
        let mut bits = [(0, 0); BITS_SET as usize];
        for bit in &mut bits {
            let position = usize::try_from(mixed & 511).unwrap_or(0);
            mixed >>= 9;
            *bit = (block * BLOCK_WORDS + position / 64, 1 << (position % 64));
        }
        bits
    }

    fn word(&self, index: usize, allocate: bool) -> Option<&AtomicU64> {
        let chunk = self.chunks.get(index / self.chunk_words)?;
        let words = match allocate {
            true => {
                chunk.get_or_init(|| (0..self.chunk_words).map(|_| AtomicU64::new(0)).collect())
            }
            false => chunk.get()?,
        };
        words.get(index % self.chunk_words)
    }

    /// Adds a key by its row hash. Callers add a commit's keys before the engine applies it.
    pub(crate) fn insert(&self, hash: u64) {
        let bits = self.bits(hash);
        for (index, bit) in bits {
            if let Some(word) = self.word(index, true) {
                word.fetch_or(bit, Ordering::Release);
            }
        }
    }

    /// Whether no commit added the key before this call, and the keys stored before the
    /// open are all in: only then is "absent" certain.
    pub(crate) fn surely_unwritten(&self, hash: u64) -> bool {
        if !self.is_complete() {
            return false;
        }
        let bits = self.bits(hash);
        bits.iter().any(|(index, bit)| {
            self.word(*index, false)
                .is_none_or(|word| word.load(Ordering::Acquire) & bit == 0)
        })
    }

    /// Whether the keys stored before the open are all in.
    pub(crate) fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// Called once the keys stored before the open are in.
    pub(crate) fn mark_complete(&self) {
        self.complete.store(true, Ordering::Release);
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&n.to_be_bytes())
    }

    #[test]
    fn added_keys_are_never_reported_unwritten_and_few_others_are_missed() {
        let keys = WrittenKeys::for_keys(0, 0);
        keys.insert(hash(1));
        assert!(
            !keys.surely_unwritten(hash(2)),
            "nothing is certain before the stored keys are in"
        );
        keys.mark_complete();
        // Loaded to the capacity an empty store's filter is sized for.
        let load = MIN_KEYS;
        for n in 0..load {
            keys.insert(hash(n));
        }
        assert!((0..load).all(|n| !keys.surely_unwritten(hash(n))));
        let others = 100_000;
        let false_positives = (load..load + others)
            .filter(|n| !keys.surely_unwritten(hash(*n)))
            .count();
        assert!(
            false_positives < 1_000,
            "{false_positives} of {others} keys never added looked written"
        );
    }

    #[test]
    fn an_empty_filter_allocates_only_what_is_written() {
        let keys = WrittenKeys::for_keys(0, 0);
        keys.mark_complete();
        assert!(keys.surely_unwritten(hash(7)));
        keys.insert(hash(7));
        assert!(!keys.surely_unwritten(hash(7)));
        let allocated = keys.chunks.iter().filter(|c| c.get().is_some()).count();
        assert_eq!(allocated, 1, "one block, in one chunk");
    }
}
