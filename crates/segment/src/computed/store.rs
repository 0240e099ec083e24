//! Stored incremental state of computed attributes, one record per profile.
//!
//! Key: `tenant, "cav", graph` in `Table::ComputedAttributes` → a format byte and
//! [`GraphState`]: every live attribute's buckets for that identity graph. One record per
//! graph rather than per (graph, attribute) so that an event costs one read and one write
//! whatever the number of attributes (the ingestion-overhead budget is per event).
//!
//! Formats (the record is read, decoded, re-encoded and written on every event, and its
//! cost is mostly memory traffic, so its size is what matters):
//! - `2` (written now, see [`encode`]): a compact hand-rolled encoding — LEB128 varints,
//!   attribute ids that are UUIDs as 16 bytes, bucket starts as zig-zag deltas in hours,
//!   most-recent times relative to their bucket. About half the size of format 1.
//! - `1`: bincode with varint integers of the same structure; still read (a profile's
//!   record is rewritten in format 2 on its next event). Fixture:
//!   `fixtures/state_v1.bin`.
//!
//! Each attribute's state carries a watermark `seq`: the change-feed position up to which
//! its events are folded in. The consumer folds an entry only above it, and a recompute
//! sets it to the feed head it read after its scan; that is what makes a backfill running
//! beside the consumer count every event exactly once (see `upkeep`).
//!
//! `members` lists the graph's identities when the state was built. An event entry whose
//! identities are all members needs no graph read (the common case, and what keeps the
//! upkeep cheap); any other entry reads the graph, and when its members differ (a merge,
//! split, eviction or erasure) the state is recomputed from the graph's events instead of
//! guessing how to combine.

use std::collections::BTreeMap;

use bincode::Options as _;
use serde::{Deserialize, Serialize};
use tessera_identity::{Graph, IdentityKey};
use tessera_model::Tenant;
use tessera_store::{Key, Store, Table};

use super::window::{Acc, Scalar, Window};
use crate::error::{Error, Result};

const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;

/// One attribute's state for one profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttrState {
    /// Change-feed entries up to here are folded in.
    pub seq: u64,
    /// The buckets.
    pub window: Window,
}

/// Every live attribute's state for one profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphState {
    /// The graph's member identities when the state was built, sorted.
    pub members: Vec<IdentityKey>,
    /// Attribute id → state.
    pub attrs: BTreeMap<String, AttrState>,
}

/// Key of a profile's state.
pub fn key(tenant: &Tenant, graph: u64) -> Key {
    Key::tenant(tenant).str("cav").u64(graph).finish()
}

/// bincode with variable-length integers (format 1).
fn options_v1() -> impl bincode::Options {
    bincode::DefaultOptions::new()
}

fn corrupt(reason: impl Into<String>) -> Error {
    Error::Corrupt {
        what: "computed attribute state",
        reason: reason.into(),
    }
}

/// Encodes a state (format 2).
pub fn encode(state: &GraphState) -> Result<Vec<u8>> {
    let mut out = Writer(Vec::with_capacity(64 + 64 * state.attrs.len()));
    out.byte(FORMAT_V2);
    out.len(state.members.len());
    for member in &state.members {
        out.str(&member.namespace);
        out.str(&member.id);
    }
    out.len(state.attrs.len());
    for (id, attr) in &state.attrs {
        out.id(id);
        out.varint(attr.seq);
        out.window(&attr.window);
    }
    Ok(out.0)
}

/// Decodes a state (format 2, or 1 as written before).
pub fn decode(bytes: &[u8]) -> Result<GraphState> {
    match bytes.split_first() {
        Some((&FORMAT_V2, body)) => {
            let mut input = Reader(body);
            let state = input.graph_state()?;
            if !input.0.is_empty() {
                return Err(corrupt("bytes after the state"));
            }
            Ok(state)
        }
        Some((&FORMAT_V1, body)) => options_v1()
            .deserialize(body)
            .map_err(|e| corrupt(e.to_string())),
        _ => Err(corrupt("unknown format")),
    }
}

/// Buckets start on whole hours (hour, UTC day and Sunday-week buckets); starts are then
/// written in hours, else (never written so far, but decodable) in milliseconds.
const HOUR_MS: i64 = 3_600_000;
const UNIT_MS: u8 = 0;
const UNIT_HOUR: u8 = 1;

const ACC_COUNT: u8 = 0;
const ACC_SUM: u8 = 1;
const ACC_MIN: u8 = 2;
const ACC_MAX: u8 = 3;
const ACC_MIN_TIME: u8 = 4;
const ACC_MAX_TIME: u8 = 5;
const ACC_RECENT: u8 = 6;

const ID_UUID: u8 = 0;
const ID_TEXT: u8 = 1;

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// `id` as a UUID when it is one in lowercase hyphenated form (what Tessera generates), so
/// that decoding gives back the same text.
fn canonical_uuid(id: &str) -> Option<uuid::Uuid> {
    let bytes = id.as_bytes();
    let canonical = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        });
    if !canonical {
        return None;
    }
    uuid::Uuid::try_parse(id).ok()
}

struct Writer(Vec<u8>);

impl Writer {
    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    fn signed(&mut self, n: i64) {
        self.varint(zigzag(n));
    }

    fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn f64(&mut self, n: f64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    /// Attribute ids are UUIDs in their canonical text (16 bytes instead of 36); any other
    /// id is kept as text.
    fn id(&mut self, id: &str) {
        match canonical_uuid(id) {
            Some(uuid) => {
                self.byte(ID_UUID);
                self.0.extend_from_slice(uuid.as_bytes());
            }
            None => {
                self.byte(ID_TEXT);
                self.str(id);
            }
        }
    }

    fn window(&mut self, window: &Window) {
        self.len(window.buckets.len());
        if window.buckets.is_empty() {
            return;
        }
        let hours = window.buckets.iter().all(|(b, _)| b % HOUR_MS == 0);
        let unit = if hours { HOUR_MS } else { 1 };
        self.byte(if hours { UNIT_HOUR } else { UNIT_MS });
        let mut previous = 0_i64;
        for (bucket, acc) in &window.buckets {
            let start = bucket / unit;
            self.signed(start.wrapping_sub(previous));
            previous = start;
            self.acc(*bucket, acc);
        }
    }

    fn acc(&mut self, bucket: i64, acc: &Acc) {
        match acc {
            Acc::Count(n) => {
                self.byte(ACC_COUNT);
                self.varint(*n);
            }
            Acc::Sum(n) => {
                self.byte(ACC_SUM);
                self.f64(*n);
            }
            Acc::Min(s) | Acc::Max(s) => {
                let tag = match (acc, s.time) {
                    (Acc::Min(_), false) => ACC_MIN,
                    (Acc::Min(_), true) => ACC_MIN_TIME,
                    (_, false) => ACC_MAX,
                    (_, true) => ACC_MAX_TIME,
                };
                self.byte(tag);
                self.f64(s.n);
            }
            Acc::Recent(ts, text) => {
                self.byte(ACC_RECENT);
                self.signed(ts.wrapping_sub(bucket));
                self.str(text);
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.0.split_first().ok_or_else(|| corrupt("truncated"))?;
        self.0 = rest;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8]> {
        if n > self.0.len() {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut n = 0_u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(corrupt("varint longer than 64 bits"))
    }

    fn signed(&mut self) -> Result<i64> {
        Ok(unzigzag(self.varint()?))
    }

    /// A count of items each at least `min_bytes` long: bounded by what is left, so a
    /// corrupt count cannot allocate beyond the record's size.
    fn len(&mut self, min_bytes: usize) -> Result<usize> {
        let n = usize::try_from(self.varint()?).map_err(|_| corrupt("length overflow"))?;
        if n.saturating_mul(min_bytes) > self.0.len() {
            return Err(corrupt("length beyond the record"));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String> {
        let n = self.len(1)?;
        let bytes = self.bytes(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("text is not UTF-8"))
    }

    fn f64(&mut self) -> Result<f64> {
        let bytes: [u8; 8] = self
            .bytes(8)?
            .try_into()
            .map_err(|_| corrupt("truncated"))?;
        Ok(f64::from_le_bytes(bytes))
    }

    fn id(&mut self) -> Result<String> {
        match self.byte()? {
            ID_UUID => {
                let bytes: [u8; 16] = self
                    .bytes(16)?
                    .try_into()
                    .map_err(|_| corrupt("truncated"))?;
                let mut text = [0_u8; uuid::fmt::Hyphenated::LENGTH];
                Ok(uuid::Uuid::from_bytes(bytes)
                    .hyphenated()
                    .encode_lower(&mut text)
                    .to_owned())
            }
            ID_TEXT => self.string(),
            other => Err(corrupt(format!("unknown id kind {other}"))),
        }
    }

    fn graph_state(&mut self) -> Result<GraphState> {
        let n = self.len(2)?;
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            let namespace = self.string()?;
            let id = self.string()?;
            members.push(IdentityKey::new(namespace, id));
        }
        let n = self.len(3)?;
        let mut attrs = BTreeMap::new();
        for _ in 0..n {
            let id = self.id()?;
            let seq = self.varint()?;
            let window = self.window()?;
            attrs.insert(id, AttrState { seq, window });
        }
        Ok(GraphState { members, attrs })
    }

    fn window(&mut self) -> Result<Window> {
        let n = self.len(2)?;
        if n == 0 {
            return Ok(Window::default());
        }
        let unit = match self.byte()? {
            UNIT_HOUR => HOUR_MS,
            UNIT_MS => 1,
            other => return Err(corrupt(format!("unknown bucket unit {other}"))),
        };
        let mut buckets = Vec::with_capacity(n);
        let mut start = 0_i64;
        for _ in 0..n {
            start = start.wrapping_add(self.signed()?);
            let bucket = start.wrapping_mul(unit);
            let acc = self.acc(bucket)?;
            buckets.push((bucket, acc));
        }
        Ok(Window { buckets })
    }

    fn acc(&mut self, bucket: i64) -> Result<Acc> {
        Ok(match self.byte()? {
            ACC_COUNT => Acc::Count(self.varint()?),
            ACC_SUM => Acc::Sum(self.f64()?),
            tag @ (ACC_MIN | ACC_MAX | ACC_MIN_TIME | ACC_MAX_TIME) => {
                let scalar = Scalar {
                    n: self.f64()?,
                    time: matches!(tag, ACC_MIN_TIME | ACC_MAX_TIME),
                };
                if matches!(tag, ACC_MIN | ACC_MIN_TIME) {
                    Acc::Min(scalar)
                } else {
                    Acc::Max(scalar)
                }
            }
            ACC_RECENT => {
                let ts = bucket.wrapping_add(self.signed()?);
                Acc::Recent(ts, self.string()?)
            }
            other => return Err(corrupt(format!("unknown aggregate {other}"))),
        })
    }
}

/// A profile's state and its stored bytes (for compare-and-set), if any.
pub fn load(
    store: &dyn Store,
    tenant: &Tenant,
    graph: u64,
) -> Result<Option<(GraphState, Vec<u8>)>> {
    match store.get(Table::ComputedAttributes, &key(tenant, graph))? {
        Some(bytes) => Ok(Some((decode(&bytes)?, bytes))),
        None => Ok(None),
    }
}

/// A graph's member identities, sorted (the form [`GraphState::members`] keeps).
pub fn members_of(graph: &Graph) -> Vec<IdentityKey> {
    let mut members: Vec<IdentityKey> = graph.identities().cloned().collect();
    members.sort();
    members
}

impl GraphState {
    /// Whether every identity in `identities` is a member.
    pub fn covers<'a>(&self, mut identities: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        identities.all(|(namespace, id)| {
            self.members
                .binary_search_by(|m| (m.namespace.as_str(), m.id.as_str()).cmp(&(namespace, id)))
                .is_ok()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The state `fixtures/state_v1.bin` holds (written by format 1's encoder).
    fn fixture_state() -> GraphState {
        let attr = |seq, buckets| AttrState {
            seq,
            window: Window { buckets },
        };
        let attrs = BTreeMap::from([
            (
                "0b6c3f4e-2f1d-4c5e-9a7b-1c2d3e4f5a6b".to_owned(),
                attr(
                    41,
                    vec![
                        (1_749_945_600_000, Acc::Count(3)),
                        (1_750_032_000_000, Acc::Count(1)),
                    ],
                ),
            ),
            (
                "custom-id".to_owned(),
                attr(41, vec![(1_749_945_600_000, Acc::Sum(12.5))]),
            ),
            (
                "d0c1a2b3-0000-4000-8000-00000000000f".to_owned(),
                attr(
                    41,
                    vec![
                        (
                            1_749_600_000_000,
                            Acc::Max(Scalar {
                                n: 1_749_700_000_123.0,
                                time: true,
                            }),
                        ),
                        (
                            1_750_204_800_000,
                            Acc::Min(Scalar {
                                n: -2.25,
                                time: false,
                            }),
                        ),
                    ],
                ),
            ),
            (
                "f00dbabe-0000-4000-8000-000000000001".to_owned(),
                attr(
                    40,
                    vec![(
                        1_749_999_600_000,
                        Acc::Recent(1_750_001_234_567, "\"page3\"".into()),
                    )],
                ),
            ),
        ]);
        GraphState {
            members: vec![
                IdentityKey::new("CRMID", "crm-1"),
                IdentityKey::new("ECID", "0042"),
            ],
            attrs,
        }
    }

    #[test]
    fn format_1_records_still_load() {
        let bytes = include_bytes!("fixtures/state_v1.bin");
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(decode(bytes).unwrap(), fixture_state());
    }

    #[test]
    fn format_2_round_trips_and_is_smaller() {
        let state = fixture_state();
        let bytes = encode(&state).unwrap();
        assert_eq!(bytes[0], FORMAT_V2);
        assert_eq!(decode(&bytes).unwrap(), state);
        let v1 = include_bytes!("fixtures/state_v1.bin");
        assert!(
            bytes.len() * 3 < v1.len() * 2,
            "{} vs {}",
            bytes.len(),
            v1.len()
        );
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let bytes = encode(&fixture_state()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        assert!(
            decode(&[FORMAT_V2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
                .is_err()
        );
        assert!(decode(&[9]).is_err());
    }

    fn acc() -> impl Strategy<Value = Acc> {
        prop_oneof![
            any::<u64>().prop_map(Acc::Count),
            any::<f64>().prop_map(Acc::Sum),
            (any::<f64>(), any::<bool>()).prop_map(|(n, time)| Acc::Min(Scalar { n, time })),
            (any::<f64>(), any::<bool>()).prop_map(|(n, time)| Acc::Max(Scalar { n, time })),
            (any::<i64>(), ".{0,12}").prop_map(|(ts, text)| Acc::Recent(ts, text)),
        ]
    }

    fn bucket() -> impl Strategy<Value = i64> {
        prop_oneof![
            (-500_000i64..500_000).prop_map(|h| h * HOUR_MS),
            any::<i64>(),
        ]
    }

    proptest! {
        /// Any state (odd bucket starts, extreme numbers, NaN sums, non-UUID and
        /// uppercase-UUID ids) decodes to itself; NaN is compared by bits.
        #[test]
        fn any_state_round_trips(
            members in proptest::collection::vec(("[A-Za-z]{1,8}", ".{0,20}"), 0..4),
            attrs in proptest::collection::btree_map(
                prop_oneof![
                    Just("0B6C3F4E-2F1D-4C5E-9A7B-1C2D3E4F5A6B".to_owned()),
                    any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
                    ".{0,40}",
                ],
                (any::<u64>(), proptest::collection::vec((bucket(), acc()), 0..6)),
                0..5,
            ),
        ) {
            let state = GraphState {
                members: members.into_iter().map(|(ns, id)| IdentityKey::new(ns, id)).collect(),
                attrs: attrs
                    .into_iter()
                    .map(|(id, (seq, buckets))| (id, AttrState { seq, window: Window { buckets } }))
                    .collect(),
            };
            let bytes = encode(&state).unwrap();
            let back = decode(&bytes).unwrap();
            prop_assert_eq!(format!("{back:?}"), format!("{state:?}"));
            prop_assert_eq!(encode(&back).unwrap(), bytes);
        }
    }
}
