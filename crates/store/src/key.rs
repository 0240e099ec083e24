//! Order-preserving, self-describing key encoding (a tuple layer in the FoundationDB style).
//!
//! A key is a sequence of typed elements. Comparing two encoded keys byte-wise gives the
//! same answer as comparing their element sequences logically: element by element, a
//! shorter sequence before any longer one it is a prefix of, elements of different kinds
//! ordered by kind. That is what lets an event scan walk a profile's events by time and a
//! tenant's data be found (and deleted) as one contiguous range.
//!
//! Encoding of each element, after a one-byte tag:
//! - strings and byte strings: the bytes with every `0x00` written as `0x00 0xFF`, then a
//!   `0x00` terminator. Unlike a length prefix this keeps lexicographic order, and a string
//!   is never mistaken for a prefix of a longer one.
//! - `u64`: 8 bytes big-endian.
//! - `i64` (timestamps): 8 bytes big-endian with the sign bit flipped, so negatives sort first.
//!
//! Every key starts with a [`Scope`], itself encoded with these elements; [`Key`] can only
//! be made through [`Key::builder`], so every stored key is scoped.

use tessera_model::{OrgId, SandboxName, Tenant};

use crate::error::{Error, Result};

const TAG_BYTES: u8 = 0x01;
const TAG_STR: u8 = 0x02;
const TAG_U64: u8 = 0x03;
const TAG_I64: u8 = 0x04;

const SCOPE_SYSTEM: u64 = 0;
const SCOPE_ORG: u64 = 1;
const SCOPE_TENANT: u64 = 2;

const ESCAPE: u8 = 0xFF;
const TERMINATOR: u8 = 0x00;

/// Who owns a key: the whole system, one organisation, or one sandbox of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Process-wide data (store metadata).
    System,
    /// Organisation-wide data (its sandbox list).
    Org(OrgId),
    /// One sandbox's data: almost everything.
    Tenant(Tenant),
}

/// An encoded key, always beginning with its scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Vec<u8>);

impl Key {
    /// Starts a key in `scope`.
    pub fn builder(scope: &Scope) -> KeyBuilder {
        let mut builder = KeyBuilder {
            bytes: Vec::with_capacity(64),
        };
        match scope {
            Scope::System => {
                builder.push_u64(SCOPE_SYSTEM);
            }
            Scope::Org(org) => {
                builder.push_u64(SCOPE_ORG);
                builder.push_str(org.as_str());
            }
            Scope::Tenant(tenant) => builder.push_tenant(tenant),
        }
        builder
    }

    /// Starts a key in `tenant`'s scope, like [`Key::builder`] with [`Scope::Tenant`] but
    /// without an owned scope (no copy of the tenant's names per key).
    pub fn tenant(tenant: &Tenant) -> KeyBuilder {
        let mut builder = KeyBuilder {
            bytes: Vec::with_capacity(64),
        };
        builder.push_tenant(tenant);
        builder
    }

    /// Continues an existing key with more elements (e.g. a log prefix plus a sequence).
    pub fn extend(prefix: &Key) -> KeyBuilder {
        KeyBuilder {
            bytes: prefix.0.clone(),
        }
    }

    /// The prefix shared by every key of `scope`.
    pub fn scope_prefix(scope: &Scope) -> Self {
        Self::builder(scope).finish()
    }

    /// A key as a scan returned it (to delete or resume from it).
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Consumes the key into its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// A reader positioned after the scope, for decoding the rest.
    pub fn reader(&self) -> Result<(Scope, KeyReader<'_>)> {
        KeyReader::with_scope(&self.0)
    }
}

/// Appends typed elements to a key.
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    bytes: Vec<u8>,
}

impl KeyBuilder {
    fn push_tenant(&mut self, tenant: &Tenant) {
        self.push_u64(SCOPE_TENANT);
        self.push_str(tenant.org.as_str());
        self.push_str(tenant.sandbox.as_str());
    }

    /// Appends a UTF-8 string element.
    pub fn str(mut self, value: &str) -> Self {
        self.push_str(value);
        self
    }

    /// Appends a byte-string element.
    pub fn bytes(mut self, value: &[u8]) -> Self {
        self.bytes.push(TAG_BYTES);
        push_escaped(&mut self.bytes, value);
        self
    }

    /// Appends an unsigned integer element.
    pub fn u64(mut self, value: u64) -> Self {
        self.push_u64(value);
        self
    }

    /// Appends a signed integer element (e.g. a timestamp in ms, possibly before 1970).
    pub fn i64(mut self, value: i64) -> Self {
        self.bytes.push(TAG_I64);
        self.bytes
            .extend_from_slice(&((value as u64) ^ (1 << 63)).to_be_bytes());
        self
    }

    /// The finished key.
    pub fn finish(self) -> Key {
        Key(self.bytes)
    }

    fn push_str(&mut self, value: &str) {
        self.bytes.push(TAG_STR);
        push_escaped(&mut self.bytes, value.as_bytes());
    }

    fn push_u64(&mut self, value: u64) {
        self.bytes.push(TAG_U64);
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
}

fn push_escaped(out: &mut Vec<u8>, value: &[u8]) {
    for &byte in value {
        out.push(byte);
        if byte == TERMINATOR {
            out.push(ESCAPE);
        }
    }
    out.push(TERMINATOR);
}

/// Decodes the elements of a key in order. Every method checks the tag, so a key read with
/// the wrong layout fails loudly instead of yielding garbage.
#[derive(Debug, Clone)]
pub struct KeyReader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> KeyReader<'a> {
    /// Reads raw key bytes from the start (scope first).
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    /// Decodes the scope of an encoded key and returns a reader positioned after it.
    pub fn with_scope(bytes: &'a [u8]) -> Result<(Scope, Self)> {
        let mut reader = Self::new(bytes);
        let scope = reader.scope()?;
        Ok((scope, reader))
    }

    /// Decodes a scope element group.
    pub fn scope(&mut self) -> Result<Scope> {
        let kind = self.u64()?;
        let at = self.offset;
        let invalid_model = |_| Error::MalformedKey {
            offset: at,
            reason: "scope names do not validate",
        };
        match kind {
            SCOPE_SYSTEM => Ok(Scope::System),
            SCOPE_ORG => Ok(Scope::Org(
                OrgId::parse(&self.string()?).map_err(invalid_model)?,
            )),
            SCOPE_TENANT => {
                let org = OrgId::parse(&self.string()?).map_err(invalid_model)?;
                let sandbox = SandboxName::parse(&self.string()?).map_err(invalid_model)?;
                Ok(Scope::Tenant(Tenant::new(org, sandbox)))
            }
            _ => Err(self.error("unknown scope kind")),
        }
    }

    /// Decodes a string element.
    pub fn string(&mut self) -> Result<String> {
        self.expect_tag(TAG_STR)?;
        let raw = self.unescape()?;
        String::from_utf8(raw).map_err(|_| self.error("string element is not UTF-8"))
    }

    /// Decodes a byte-string element.
    pub fn byte_string(&mut self) -> Result<Vec<u8>> {
        self.expect_tag(TAG_BYTES)?;
        self.unescape()
    }

    /// Decodes an unsigned integer element.
    pub fn u64(&mut self) -> Result<u64> {
        self.expect_tag(TAG_U64)?;
        Ok(u64::from_be_bytes(self.take8()?))
    }

    /// Decodes a signed integer element.
    pub fn i64(&mut self) -> Result<i64> {
        self.expect_tag(TAG_I64)?;
        Ok((u64::from_be_bytes(self.take8()?) ^ (1 << 63)) as i64)
    }

    /// Whether every byte has been consumed.
    pub fn is_done(&self) -> bool {
        self.offset >= self.bytes.len()
    }

    fn error(&self, reason: &'static str) -> Error {
        Error::MalformedKey {
            offset: self.offset,
            reason,
        }
    }

    fn expect_tag(&mut self, tag: u8) -> Result<()> {
        match self.bytes.get(self.offset) {
            Some(&found) if found == tag => {
                self.offset += 1;
                Ok(())
            }
            Some(_) => Err(self.error("unexpected element type")),
            None => Err(self.error("key ended before the expected element")),
        }
    }

    fn take8(&mut self) -> Result<[u8; 8]> {
        let end = self.offset + 8;
        let slice = self
            .bytes
            .get(self.offset..end)
            .ok_or_else(|| self.error("integer element is truncated"))?;
        let mut out = [0u8; 8];
        out.copy_from_slice(slice);
        self.offset = end;
        Ok(out)
    }

    fn unescape(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let byte = *self
                .bytes
                .get(self.offset)
                .ok_or_else(|| self.error("string element is not terminated"))?;
            self.offset += 1;
            if byte != TERMINATOR {
                out.push(byte);
                continue;
            }
            if self.bytes.get(self.offset) == Some(&ESCAPE) {
                self.offset += 1;
                out.push(TERMINATOR);
                continue;
            }
            return Ok(out);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::cmp::Ordering;

    use proptest::prelude::*;

    #[test]
    fn a_tenant_key_is_the_tenant_scope_key() {
        let tenant = Tenant::parse("ACME@AdobeOrg", "prod").unwrap();
        assert_eq!(
            Key::tenant(&tenant).str("x").u64(7).finish(),
            Key::builder(&Scope::Tenant(tenant.clone()))
                .str("x")
                .u64(7)
                .finish()
        );
    }

    use super::*;

    /// A logical key element; the derived order (variant first, then value) is the order
    /// the encoding must reproduce.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    enum Element {
        Bytes(Vec<u8>),
        Str(String),
        U64(u64),
        I64(i64),
    }

    fn encode(elements: &[Element]) -> Vec<u8> {
        let mut builder = KeyBuilder { bytes: Vec::new() };
        for element in elements {
            builder = match element {
                Element::Bytes(b) => builder.bytes(b),
                Element::Str(s) => builder.str(s),
                Element::U64(v) => builder.u64(*v),
                Element::I64(v) => builder.i64(*v),
            };
        }
        builder.finish().into_bytes()
    }

    fn decode(bytes: &[u8], layout: &[Element]) -> Vec<Element> {
        let mut reader = KeyReader::new(bytes);
        let decoded = layout
            .iter()
            .map(|kind| match kind {
                Element::Bytes(_) => Element::Bytes(reader.byte_string().unwrap()),
                Element::Str(_) => Element::Str(reader.string().unwrap()),
                Element::U64(_) => Element::U64(reader.u64().unwrap()),
                Element::I64(_) => Element::I64(reader.i64().unwrap()),
            })
            .collect();
        assert!(reader.is_done());
        decoded
    }

    fn element() -> impl Strategy<Value = Element> {
        prop_oneof![
            // Small alphabets with NUL and 0xFF make prefix and escape collisions likely.
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1u8), Just(0xFF), any::<u8>()],
                0..6
            )
            .prop_map(Element::Bytes),
            "[\\x00ab\u{e9}]{0,5}".prop_map(Element::Str),
            prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()].prop_map(Element::U64),
            prop_oneof![Just(i64::MIN), Just(-1i64), Just(0i64), any::<i64>()]
                .prop_map(Element::I64),
        ]
    }

    proptest! {
        #[test]
        fn encoded_order_equals_logical_order(
            a in proptest::collection::vec(element(), 0..4),
            b in proptest::collection::vec(element(), 0..4),
        ) {
            prop_assert_eq!(encode(&a).cmp(&encode(&b)), a.cmp(&b));
        }

        #[test]
        fn decoding_inverts_encoding(elements in proptest::collection::vec(element(), 0..5)) {
            prop_assert_eq!(decode(&encode(&elements), &elements), elements);
        }

        #[test]
        fn logical_prefix_is_byte_prefix(
            head in proptest::collection::vec(element(), 0..3),
            tail in proptest::collection::vec(element(), 1..3),
        ) {
            let mut full = head.clone();
            full.extend(tail);
            prop_assert!(encode(&full).starts_with(&encode(&head)));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut reader = KeyReader::new(&bytes);
            let _ = reader.scope();
            let _ = reader.string();
            let _ = reader.i64();
        }
    }

    #[test]
    fn timestamps_sort_chronologically_across_zero() {
        let times = [i64::MIN, -86_400_000, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for pair in times.windows(2) {
            let a = encode(&[Element::I64(pair[0])]);
            let b = encode(&[Element::I64(pair[1])]);
            assert_eq!(a.cmp(&b), Ordering::Less, "{pair:?}");
        }
    }

    #[test]
    fn string_with_nul_sorts_after_its_prefix_and_before_next_element() {
        let plain = encode(&[Element::Str("a".into()), Element::U64(9)]);
        let with_nul = encode(&[Element::Str("a\0".into()), Element::U64(0)]);
        assert_eq!(plain.cmp(&with_nul), Ordering::Less);
    }

    #[test]
    fn scopes_round_trip_and_do_not_overlap() {
        let tenant_a = Scope::Tenant(Tenant::parse("A@AdobeOrg", "prod").unwrap());
        let tenant_b = Scope::Tenant(Tenant::parse("A@AdobeOrg", "prod-2").unwrap());
        let org = Scope::Org(OrgId::parse("A@AdobeOrg").unwrap());
        for scope in [
            Scope::System,
            org.clone(),
            tenant_a.clone(),
            tenant_b.clone(),
        ] {
            let key = Key::builder(&scope).str("x").finish();
            let (decoded, mut rest) = key.reader().unwrap();
            assert_eq!(decoded, scope);
            assert_eq!(rest.string().unwrap(), "x");
        }
        // "prod" must not be a byte prefix of "prod-2": sandboxes are disjoint ranges.
        let a = Key::scope_prefix(&tenant_a);
        let b = Key::scope_prefix(&tenant_b);
        assert!(!b.as_bytes().starts_with(a.as_bytes()));
        assert!(!a.as_bytes().starts_with(b.as_bytes()));
    }

    #[test]
    fn wrong_layout_is_an_error_not_garbage() {
        let key = encode(&[Element::Str("x".into())]);
        assert!(matches!(
            KeyReader::new(&key).u64(),
            Err(Error::MalformedKey { offset: 0, .. })
        ));
        assert!(KeyReader::new(&[TAG_STR, b'a']).string().is_err());
        assert!(KeyReader::new(&[TAG_U64, 0, 0]).u64().is_err());
    }
}
