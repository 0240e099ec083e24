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
//! until it has finished, the filter answers nothing. Deleted keys stay in until the filter
//! is replaced (a false positive costs the engine read it would have cost anyway).
//!
//! Sized at open for twice the keys the tables then hold, and at least for the floor the
//! store asks (one key per 64 bytes of row cache), at [`BITS_PER_KEY`] bits each. A filter
//! holding more keys than it was sized for answers "absent" less and less often, so it is
//! replaced by a larger *generation* ([`GROWTH`] times the keys, or twice those stored):
//! made under the commit lock, so every later commit adds its keys to both, and filled by a
//! scan of a snapshot taken after that, so every earlier commit's keys are in the snapshot.
//! Reads keep asking the old generation until the new one is complete. Replaced generations
//! are kept (a reader may still be asking one): memory follows the keys ever written,
//! deleted ones included, as a filter that never grew would need to keep its false
//! positives down.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Bits of filter per key it is sized for: with [`BITS_SET`] bits in one 512-bit block, about
/// 0.5% false positives at that load.
const BITS_PER_KEY: u64 = 16;
/// Bits set per key, all in one block of [`BLOCK_WORDS`] words (one cache line), so a check
/// costs one cache miss.
const BITS_SET: u32 = 6;
const BLOCK_WORDS: usize = 8;
/// Fewest keys a filter is sized for (one block).
const MIN_KEYS: u64 = 512 / BITS_PER_KEY;
/// Words per lazily allocated chunk, so that stores that write little (tests open hundreds)
/// do not zero megabytes at open.
const CHUNK_WORDS: usize = 1 << 16;
/// How many times more keys each generation is sized for than the one it replaces: the
/// scans that fill generations add up to a third more keys than the last one holds, and the
/// generations replaced (kept: a reader may still be asking one) to a third of its memory.
const GROWTH: u64 = 4;
/// Generations a store can go through: from the smallest filter, 4^9 times its keys.
const GENERATIONS: usize = 10;

/// The filter of written keys: the generation reads ask, and the next one while it is filled.
pub(crate) struct WrittenKeys {
    generations: [OnceLock<Filter>; GENERATIONS],
    /// The generation reads ask; only ever moves to a complete one.
    current: AtomicUsize,
}

impl WrittenKeys {
    /// A filter for `stored` keys stored now and at least `floor` keys in all; its first
    /// generation is complete once [`WrittenKeys::add_stored`] has added the stored keys.
    pub(crate) fn for_keys(stored: u64, floor: u64) -> Self {
        let generations = std::array::from_fn(|_| OnceLock::new());
        let keys = Self {
            generations,
            current: AtomicUsize::new(0),
        };
        if let Some(first) = keys.generations.first() {
            let _ = first.set(Filter::for_keys(stored.saturating_mul(2).max(floor)));
        }
        keys
    }

    fn generation(&self, index: usize) -> Option<&Filter> {
        self.generations.get(index).and_then(OnceLock::get)
    }

    /// Adds a key by its row hash: to the generation reads ask and to the one being filled.
    /// Callers are commits, under the commit lock, before the engine applies their batch.
    pub(crate) fn insert(&self, hash: u64) {
        let current = self.current.load(Ordering::Acquire);
        for filter in [current, current + 1]
            .into_iter()
            .filter_map(|index| self.generation(index))
        {
            filter.insert(hash);
        }
    }

    /// Whether no commit added the key before this call, and the keys stored before the
    /// generation asked was made are all in: only then is "absent" certain.
    pub(crate) fn surely_unwritten(&self, hash: u64) -> bool {
        self.generation(self.current.load(Ordering::Acquire))
            .is_some_and(|filter| filter.is_complete() && filter.surely_unwritten(hash))
    }

    /// Whether the generation reads ask holds every stored key.
    pub(crate) fn is_complete(&self) -> bool {
        self.generation(self.current.load(Ordering::Acquire))
            .is_some_and(Filter::is_complete)
    }

    /// The generation reads ask (0 until the first growth).
    pub(crate) fn current_generation(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Whether the generation reads ask holds more keys than it was sized for, no larger
    /// one is complete yet and one is left. A larger one that exists but is not complete
    /// is one whose scan failed: filling it again from a new snapshot is sound, since
    /// every commit since it was made has added its keys to it.
    pub(crate) fn wants_growth(&self) -> bool {
        let current = self.current.load(Ordering::Acquire);
        current + 1 < GENERATIONS
            && self
                .generation(current)
                .is_some_and(|filter| filter.is_complete() && filter.overloaded())
            && !self
                .generation(current + 1)
                .is_some_and(Filter::is_complete)
    }

    /// Makes the next generation (unless a failed scan left it made), sized for
    /// [`GROWTH`] times the keys of the current one and at least twice the `stored` keys,
    /// and returns its index (`None`: none is left). Callers hold the commit lock, so
    /// every commit after this adds its keys to it.
    pub(crate) fn grow(&self, stored: u64) -> Option<usize> {
        let current = self.current.load(Ordering::Acquire);
        let capacity = self.generation(current)?.capacity;
        let next = current + 1;
        let slot = self.generations.get(next)?;
        let keys = capacity
            .saturating_mul(GROWTH)
            .max(stored.saturating_mul(2));
        slot.get_or_init(|| Filter::for_keys(keys));
        Some(next)
    }

    /// Adds a stored key to generation `index` (the scan that fills it).
    pub(crate) fn add_stored(&self, index: usize, hash: u64) {
        if let Some(filter) = self.generation(index) {
            filter.insert(hash);
        }
    }

    /// Called once every stored key is in generation `index`: reads ask it from now on.
    pub(crate) fn complete(&self, index: usize) {
        if let Some(filter) = self.generation(index) {
            filter.complete.store(true, Ordering::Release);
            self.current.fetch_max(index, Ordering::AcqRel);
        }
    }

    /// Keys the generation reads ask was sized for.
    pub(crate) fn capacity(&self) -> u64 {
        self.generation(self.current.load(Ordering::Acquire))
            .map_or(0, |filter| filter.capacity)
    }
}

/// One generation: a blocked Bloom filter sized for `capacity` keys.
struct Filter {
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    chunk_words: usize,
    /// Blocks - 1 (a power of two).
    block_mask: u64,
    /// Keys it is sized for.
    capacity: u64,
    /// Keys added that set a bit none before had set: distinct keys, less the few whose
    /// bits others had all set already. On a cache line of its own: commits write it,
    /// while readers load the fields beside it on every check.
    added: Padded,
    /// Set once the keys stored before it was made are all in.
    complete: AtomicBool,
}

impl Filter {
    fn for_keys(keys: u64) -> Self {
        let bits = keys
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
            capacity: (blocks * 512) / BITS_PER_KEY,
            added: Padded(AtomicU64::new(0)),
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

    fn insert(&self, hash: u64) {
        let mut new = false;
        for (index, bit) in self.bits(hash) {
            if let Some(word) = self.word(index, true) {
                new |= word.fetch_or(bit, Ordering::Release) & bit == 0;
            }
        }
        if new {
            self.added.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn surely_unwritten(&self, hash: u64) -> bool {
        self.bits(hash).iter().any(|(index, bit)| {
            self.word(*index, false)
                .is_none_or(|word| word.load(Ordering::Acquire) & bit == 0)
        })
    }

    fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    fn overloaded(&self) -> bool {
        self.added.0.load(Ordering::Relaxed) > self.capacity
    }
}

#[repr(align(64))]
struct Padded(AtomicU64);

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

    /// How many of the `count` keys from `first` on, never added, the filter calls written.
    fn false_positives(keys: &WrittenKeys, first: u64, count: u64) -> usize {
        (first..first + count)
            .filter(|n| !keys.surely_unwritten(hash(*n)))
            .count()
    }

    #[test]
    fn added_keys_are_never_reported_unwritten_and_few_others_are_missed() {
        let keys = WrittenKeys::for_keys(0, 1 << 20);
        keys.insert(hash(1));
        assert!(
            !keys.surely_unwritten(hash(2)),
            "nothing is certain before the stored keys are in"
        );
        keys.complete(0);
        // Loaded to the capacity it is sized for.
        let load = keys.capacity();
        assert!(load >= 1 << 20);
        for n in 0..load {
            keys.insert(hash(n));
        }
        assert!((0..load).all(|n| !keys.surely_unwritten(hash(n))));
        let false_positives = false_positives(&keys, load, 100_000);
        assert!(
            false_positives < 1_000,
            "{false_positives} of 100,000 keys never added looked written"
        );
    }

    #[test]
    fn an_empty_filter_allocates_only_what_is_written() {
        let keys = WrittenKeys::for_keys(0, 1 << 20);
        keys.complete(0);
        assert!(keys.surely_unwritten(hash(7)));
        keys.insert(hash(7));
        assert!(!keys.surely_unwritten(hash(7)));
        let filter = keys.generation(0).expect("first generation");
        let allocated = filter.chunks.iter().filter(|c| c.get().is_some()).count();
        assert_eq!(allocated, 1, "one block, in one chunk");
    }

    #[test]
    fn an_overloaded_filter_grows_into_one_that_holds_every_key() {
        let keys = WrittenKeys::for_keys(0, 0);
        keys.complete(0);
        let small = keys.capacity();
        assert!(!keys.wants_growth());
        // Stored before the growth: the scan adds them to the next generation.
        let stored: Vec<u64> = (0..small * 8).collect();
        for n in &stored {
            keys.insert(hash(*n));
        }
        assert!(
            keys.wants_growth(),
            "{} keys in a filter for {small}",
            small * 8
        );
        let next = keys.grow(small * 8).expect("a generation is left");
        assert_eq!(next, 1);
        assert_eq!(keys.grow(0), Some(next), "one generation at a time");
        // Committed while the scan runs: into both generations.
        for n in small * 8..small * 9 {
            keys.insert(hash(n));
        }
        assert_eq!(
            keys.current_generation(),
            0,
            "reads ask the old one until it is full"
        );
        for n in &stored {
            keys.add_stored(next, hash(*n));
        }
        keys.complete(next);
        assert_eq!(keys.current_generation(), 1);
        assert!(
            keys.capacity() >= small * 16,
            "sized for twice the keys stored"
        );
        assert!((0..small * 9).all(|n| !keys.surely_unwritten(hash(n))));
        let false_positives = false_positives(&keys, small * 9, 10_000);
        assert!(
            false_positives < 200,
            "{false_positives} of 10,000 keys never added looked written"
        );
    }

    #[test]
    fn a_store_that_holds_few_keys_still_grows_its_filter_fourfold() {
        let keys = WrittenKeys::for_keys(0, 1 << 12);
        keys.complete(0);
        let small = keys.capacity();
        for n in 0..=small {
            keys.insert(hash(n));
        }
        // Most of those keys deleted since: few stored.
        let next = keys.grow(10).expect("a generation is left");
        keys.complete(next);
        assert_eq!(keys.capacity(), small * GROWTH);
    }

    #[test]
    fn a_generation_whose_scan_failed_is_filled_again_and_the_last_one_stops_growth() {
        let keys = WrittenKeys::for_keys(0, 0);
        keys.complete(0);
        for n in 0..=keys.capacity() {
            keys.insert(hash(n));
        }
        let next = keys.grow(0).expect("a generation is left");
        // Its scan stopped halfway: not complete, so growth is still wanted, into it.
        assert!(keys.wants_growth());
        keys.insert(hash(u64::MAX));
        assert_eq!(keys.grow(0), Some(next), "the generation made before");
        let again = keys.generation(next).expect("made");
        assert!(
            !again.surely_unwritten(hash(u64::MAX)),
            "kept what commits added"
        );
        // Every generation used up: none is wanted any more.
        let mut current = 0;
        while let Some(next) = keys.grow(0) {
            keys.complete(next);
            current = next;
            let filter = keys.generation(current).expect("made");
            filter.added.0.store(filter.capacity + 1, Ordering::Relaxed);
        }
        assert_eq!(current, GENERATIONS - 1);
        assert!(!keys.wants_growth());
    }

    #[test]
    fn a_generation_not_yet_complete_is_never_asked() {
        let keys = WrittenKeys::for_keys(0, 0);
        keys.complete(0);
        for n in 0..keys.capacity() * 2 {
            keys.insert(hash(n));
        }
        let next = keys.grow(0).expect("a generation is left");
        // Its scan has added nothing yet: asking it would call every stored key absent.
        assert!(!keys.surely_unwritten(hash(0)));
        assert_eq!(keys.current_generation(), next - 1);
    }
}
