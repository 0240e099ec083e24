//! A consumer's digest of an event ([`super::Digester`]) packed into one allocation, for
//! handing it from the ingesting thread to the consumer's.
//!
//! Decoded, a digest is a vector of values, some with allocations of their own. Handed over
//! as such, the consumer's core would free memory another core allocated and wrote, missing
//! the cache on each block (when whole documents were handed over that way it was ~20% of
//! the consumer's time saturated). Packed, the only block crossing cores is the buffer; the
//! consumer unpacks into memory of its own thread, which it also frees.
//!
//! The form is private to this process (never stored): a tag byte per value, LEB128
//! lengths, numbers as their 8 bytes. A digest is an array whose first item is the event's
//! `_id`, which [`unpack_digest`] checks without allocating.

use serde_json::{Map, Number, Value};

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UNSIGNED: u8 = 3;
const SIGNED: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// Deeper than any document serde_json parses with its default limit (128); it bounds the
/// recursion, and a value deeper still unpacks to nothing (the consumer then reads the
/// event from the store).
const MAX_DEPTH: usize = 256;

/// One digest in its packed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed(Box<[u8]>);

/// Packs the digest `items` of the event `event_id`.
pub(crate) fn pack_digest(event_id: &str, items: &[Value]) -> Packed {
    let mut out = Vec::with_capacity(64 + event_id.len());
    out.push(ARRAY);
    put_len(items.len() + 1, &mut out);
    out.push(STRING);
    put_str(event_id, &mut out);
    for item in items {
        pack_value(item, &mut out);
    }
    Packed(out.into_boxed_slice())
}

/// The items [`pack_digest`] packed, if it packed them for `event_id`; `None` for another
/// event's digest or bytes that are not such a form.
pub(crate) fn unpack_digest(packed: &Packed, event_id: &str) -> Option<Vec<Value>> {
    let mut reader = Reader {
        bytes: &packed.0,
        at: 0,
    };
    if reader.byte()? != ARRAY {
        return None;
    }
    let len = reader.len()?.checked_sub(1)?;
    if reader.byte()? != STRING || reader.str()? != event_id {
        return None;
    }
    let mut items = Vec::with_capacity(len);
    for _ in 0..len {
        items.push(reader.value(1)?);
    }
    (reader.at == reader.bytes.len()).then_some(items)
}

fn pack_object(object: &Map<String, Value>, out: &mut Vec<u8>) {
    out.push(OBJECT);
    put_len(object.len(), out);
    for (key, value) in object {
        put_str(key, out);
        pack_value(value, out);
    }
}

fn pack_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(number) => {
            if let Some(n) = number.as_u64() {
                out.push(UNSIGNED);
                out.extend_from_slice(&n.to_le_bytes());
            } else if let Some(n) = number.as_i64() {
                out.push(SIGNED);
                out.extend_from_slice(&n.to_le_bytes());
            } else {
                out.push(FLOAT);
                out.extend_from_slice(&number.as_f64().unwrap_or(0.0).to_le_bytes());
            }
        }
        Value::String(s) => {
            out.push(STRING);
            put_str(s, out);
        }
        Value::Array(items) => {
            out.push(ARRAY);
            put_len(items.len(), out);
            for item in items {
                pack_value(item, out);
            }
        }
        Value::Object(object) => pack_object(object, out),
    }
}

fn put_str(s: &str, out: &mut Vec<u8>) {
    put_len(s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

fn put_len(mut len: usize, out: &mut Vec<u8>) {
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let bytes = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(bytes)
    }

    fn eight(&mut self) -> Option<[u8; 8]> {
        self.take(8)?.try_into().ok()
    }

    fn len(&mut self) -> Option<usize> {
        let mut len = 0usize;
        for shift in (0..usize::BITS).step_by(7) {
            let byte = self.byte()?;
            // The last group has room for the top bit only; more would be shifted out.
            if shift + 7 > usize::BITS && byte > 1 {
                return None;
            }
            len |= usize::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                // Every length counts bytes or values still to read, so it can never
                // exceed what is left; checking here keeps a bad one from reserving memory.
                return (len <= self.bytes.len() - self.at).then_some(len);
            }
        }
        None
    }

    fn str(&mut self) -> Option<&str> {
        let len = self.len()?;
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        Some(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            UNSIGNED => Value::Number(u64::from_le_bytes(self.eight()?).into()),
            SIGNED => Value::Number(i64::from_le_bytes(self.eight()?).into()),
            FLOAT => Value::Number(Number::from_f64(f64::from_le_bytes(self.eight()?))?),
            STRING => Value::String(self.string()?),
            ARRAY => {
                let len = self.len()?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            OBJECT => {
                let len = self.len()?;
                let mut object = Map::new();
                for _ in 0..len {
                    let key = self.string()?;
                    object.insert(key, self.value(depth + 1)?);
                }
                Value::Object(object)
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(value: Value) -> Vec<Value> {
        match value {
            Value::Array(items) => items,
            other => panic!("not an array: {other}"),
        }
    }

    #[test]
    fn every_kind_of_value_comes_back_as_it_went_in() {
        let long = "é".repeat(300);
        let digest = items(json!([
            null, true, false, u64::MAX, -42, 19.99, 0.0, -1.5e300, long, "",
            {"order": {"priceTotal": 120.5, "items": [1, "two", [3], {"four": 4}, []]}},
            {}, []
        ]));
        let packed = pack_digest("e-1", &digest);
        assert_eq!(unpack_digest(&packed, "e-1"), Some(digest));
        assert_eq!(unpack_digest(&pack_digest("", &[]), ""), Some(vec![]));
    }

    #[test]
    fn another_events_digest_unpacks_to_nothing() {
        let packed = pack_digest("e-1", &items(json!([1, "x"])));
        assert_eq!(unpack_digest(&packed, "e-2"), None);
        assert_eq!(unpack_digest(&packed, "e-"), None);
        assert_eq!(unpack_digest(&packed, "e-10"), None);
    }

    #[test]
    fn bytes_that_are_not_a_packed_digest_unpack_to_nothing() {
        let packed = pack_digest("id", &items(json!([{"a": "bc", "n": 1}, [2.5]])));
        for cut in 0..packed.0.len() {
            let truncated = Packed(packed.0[..cut].into());
            assert_eq!(unpack_digest(&truncated, "id"), None, "cut at {cut}");
        }
        let mut trailing = packed.0.to_vec();
        trailing.push(NULL);
        assert_eq!(unpack_digest(&Packed(trailing.into()), "id"), None);
        let digest = |rest: &[u8]| -> Packed {
            let head = [ARRAY, 2, STRING, 2, b'i', b'd'];
            Packed(head.iter().chain(rest).copied().collect())
        };
        assert!(
            unpack_digest(&digest(&[NULL]), "id").is_some(),
            "well formed"
        );
        assert_eq!(
            unpack_digest(&Packed(Box::new([OBJECT, 0])), "id"),
            None,
            "not an array"
        );
        assert_eq!(
            unpack_digest(&Packed(Box::new([ARRAY, 0])), ""),
            None,
            "no event id"
        );
        assert_eq!(
            unpack_digest(&Packed(Box::new([ARRAY, 1, NULL])), ""),
            None,
            "an event id that is not a string"
        );
        assert_eq!(unpack_digest(&digest(&[99]), "id"), None, "unknown tag");
        assert_eq!(
            unpack_digest(&digest(&[OBJECT, 1, 1, b'a', 99]), "id"),
            None
        );
        // A length claiming more than is left (near 2^62: reserving it would abort), one
        // whose last group overflows a usize, and one longer than a usize.
        let huge: Vec<u8> = std::iter::once(ARRAY)
            .chain([0xff; 8])
            .chain([0x3f])
            .collect();
        assert_eq!(unpack_digest(&digest(&huge), "id"), None);
        let overflowing: Vec<u8> = std::iter::once(ARRAY)
            .chain([0x80; 9])
            .chain([0x02])
            .collect();
        assert_eq!(unpack_digest(&digest(&overflowing), "id"), None);
        let endless: Vec<u8> = std::iter::once(ARRAY).chain([0xff; 12]).collect();
        assert_eq!(unpack_digest(&digest(&endless), "id"), None);
        // Invalid UTF-8 in a key, and in the event id.
        assert_eq!(
            unpack_digest(&digest(&[OBJECT, 1, 1, 0xff, NULL]), "id"),
            None
        );
        assert_eq!(
            unpack_digest(&Packed(Box::new([ARRAY, 1, STRING, 1, 0xff])), "\u{fffd}"),
            None
        );
        // Nesting past the bound.
        let deep: Vec<u8> = (0..MAX_DEPTH + 2)
            .flat_map(|_| [ARRAY, 1])
            .chain([NULL])
            .collect();
        assert_eq!(unpack_digest(&digest(&deep), "id"), None);
    }
}
