//! One page of a profile's experience events: the store half of AEP's time-series lookup
//! (`GET /access/entities?schema.name=_xdm.context.experienceevent`).
//!
//! What lives here: merging the events of several identities (a stitched profile's members)
//! into one order, a time window, property filters applied while scanning, and the opaque page
//! cursor. What does not: identity resolution (the caller passes the members), the merge
//! policy's choice of members, HTTP parameters and the response shape (server).
//!
//! Order: `(timestamp, dataset, _id, identity)`, ascending or descending. Each identity's events
//! already sit in `(timestamp, dataset, _id)` key order under its prefix, so the page is a k-way
//! merge of one bounded scan per member; the identity breaks ties, which makes the order total
//! even if two identities hold an event with the same time, dataset and `_id`.
//!
//! Bounded work: each member is scanned in chunks sized to what the page still needs (doubling
//! while filters reject events, capped), so a page of `limit` events reads at most about
//! `limit + 1` events per member plus those the filters rejected, never a whole history.
//!
//! Retention: `cutoffs` maps a dataset to the oldest event time it still retains (its TTL
//! applied to "now" by the caller, who knows the catalog). Older events of that dataset are
//! skipped like events a filter rejects, before `limit`, so they stop counting the moment a
//! TTL is set, whether or not the sweeper has deleted them yet.
//!
//! Paging: a page ends with the position of the event that would come next, which becomes the
//! next page's (inclusive) start. Positions compare as tuples, so paging is exact even when
//! events are added or removed between requests: nothing before the cursor is repeated.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use base64::Engine;
use tessera_identity::IdentityKey;
use tessera_model::Tenant;
use tessera_store::{Direction, Entry, KeyReader, ScanRange, Store, Table};

use crate::error::{Error, Result};
use crate::event::{self, StoredEvent};
use crate::event_filter::PropertyFilter;

/// Largest number of events one store scan reads for one member.
const MAX_CHUNK: usize = 1024;
/// Smallest first scan per member, so a small page over many members does not degrade into
/// one store round trip per event.
const MIN_CHUNK: usize = 16;
/// Version tag inside the cursor, so a change of its contents can be told from a forgery.
const CURSOR_VERSION: u64 = 1;

/// Where an event sits in the lookup's order; as a cursor, where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Event time, ms since the epoch.
    pub timestamp_ms: i64,
    /// Dataset holding the event.
    pub dataset: String,
    /// The event's `_id`.
    pub event_id: String,
    /// Identity the event is filed under.
    pub identity: IdentityKey,
}

impl Position {
    /// The opaque cursor for this position: base64url (no padding) of the JSON array
    /// `[1, timestamp, dataset, _id, namespace, id]`. An `_id` alone cannot be the cursor:
    /// it is only unique per dataset and says nothing about which member's scan to resume.
    pub fn to_cursor(&self) -> String {
        let tuple = (
            CURSOR_VERSION,
            self.timestamp_ms,
            &self.dataset,
            &self.event_id,
            &self.identity.namespace,
            &self.identity.id,
        );
        // Serializing integers and strings to JSON cannot fail.
        let json = serde_json::to_vec(&tuple).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads a cursor made by [`Position::to_cursor`].
    pub fn from_cursor(cursor: &str) -> Result<Self> {
        let invalid = || Error::InvalidCursor {
            cursor: cursor.to_owned(),
        };
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| invalid())?;
        let (version, timestamp_ms, dataset, event_id, namespace, id): (
            u64,
            i64,
            String,
            String,
            String,
            String,
        ) = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if version != CURSOR_VERSION {
            return Err(invalid());
        }
        Ok(Self {
            timestamp_ms,
            dataset,
            event_id,
            identity: IdentityKey::new(namespace, id),
        })
    }
}

/// Event times to return: `start_ms` inclusive, `end_ms` exclusive, either open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    /// Earliest event time returned.
    pub start_ms: Option<i64>,
    /// Events at or after this time are not returned.
    pub end_ms: Option<i64>,
}

/// Per dataset, the oldest event time (ms, inclusive) still retained; datasets not listed
/// keep every event.
pub type Cutoffs = BTreeMap<String, i64>;

/// What one page request asks for.
#[derive(Debug, Clone, Copy)]
pub struct EventQuery<'a> {
    /// Whose data.
    pub tenant: &'a Tenant,
    /// Identities whose events are merged (the looked-up identity, or its whole graph).
    pub members: &'a [IdentityKey],
    /// Time window.
    pub window: TimeWindow,
    /// `Forward`: oldest first; `Reverse`: newest first.
    pub direction: Direction,
    /// Where the page starts (inclusive); `None` for the first page.
    pub start: Option<&'a Position>,
    /// Every filter must hold for an event to be returned.
    pub filters: &'a [PropertyFilter],
    /// Most events on the page.
    pub limit: usize,
    /// Retention: events older than their dataset's cutoff are not returned.
    pub cutoffs: &'a Cutoffs,
}

impl EventQuery<'_> {
    /// Whether retention hides an event of `dataset` at `timestamp_ms`.
    fn expired(&self, dataset: &str, timestamp_ms: i64) -> bool {
        self.cutoffs
            .get(dataset)
            .is_some_and(|cutoff| timestamp_ms < *cutoff)
    }
}

/// An event on a page.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundEvent {
    /// Its place in the order (its key fields).
    pub position: Position,
    /// The stored event.
    pub event: StoredEvent,
}

/// One page of events.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events, in the requested order.
    pub events: Vec<FoundEvent>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Position>,
}

/// Reads one page of the events of `query.members`.
pub fn page(store: &dyn Store, query: &EventQuery<'_>) -> Result<EventPage> {
    let mut members: Vec<&IdentityKey> = query.members.iter().collect();
    members.sort_unstable();
    members.dedup();
    let first_chunk = (query.limit.saturating_add(1))
        .div_ceil(members.len().max(1))
        .clamp(MIN_CHUNK, MAX_CHUNK);
    let mut scans: Vec<MemberScan<'_>> = members
        .into_iter()
        .map(|identity| MemberScan::new(query, identity, first_chunk))
        .collect();
    let mut events = Vec::with_capacity(query.limit.min(MAX_CHUNK));
    loop {
        // One more than the page holds: the extra event is the next page's start.
        let wanted = query.limit.saturating_add(1) - events.len();
        for scan in &mut scans {
            scan.fill(store, query, wanted)?;
        }
        let heads = scans
            .iter()
            .enumerate()
            .filter_map(|(index, scan)| Some((index, &scan.buffer.front()?.position)));
        let best = match query.direction {
            Direction::Forward => heads.min_by(|a, b| a.1.cmp(b.1)),
            Direction::Reverse => heads.max_by(|a, b| a.1.cmp(b.1)),
        };
        let Some((index, position)) = best else {
            return Ok(EventPage { events, next: None });
        };
        if events.len() >= query.limit {
            let next = Some(position.clone());
            return Ok(EventPage { events, next });
        }
        let found = scans
            .get_mut(index)
            .and_then(|scan| scan.buffer.pop_front());
        debug_assert!(found.is_some(), "the chosen head exists");
        events.extend(found);
    }
}

/// The resumable scan of one member's events within the query's bounds.
struct MemberScan<'a> {
    identity: &'a IdentityKey,
    range: ScanRange,
    resume: Option<Vec<u8>>,
    /// Events read and accepted by the filters, not yet put on the page.
    buffer: VecDeque<FoundEvent>,
    exhausted: bool,
    chunk: usize,
}

impl<'a> MemberScan<'a> {
    fn new(query: &EventQuery<'_>, identity: &'a IdentityKey, chunk: usize) -> Self {
        let tenant = query.tenant;
        let mut range = ScanRange::prefix(event::identity_prefix(tenant, identity));
        if let Some(start) = query.window.start_ms {
            let at = event::time_key(tenant, identity, start).into_bytes();
            range = range.narrow_lower(Bound::Included(at));
        }
        if let Some(end) = query.window.end_ms {
            let at = event::time_key(tenant, identity, end).into_bytes();
            range = range.narrow_upper(Bound::Excluded(at));
        }
        if let Some(cursor) = query.start {
            let at = event::key(
                tenant,
                identity,
                cursor.timestamp_ms,
                &cursor.dataset,
                &cursor.event_id,
            )
            .into_bytes();
            // At the cursor's (time, dataset, _id) the identity decides: members ordered at
            // or after the cursor's identity still owe that event, the others do not.
            range = match query.direction {
                Direction::Forward if identity >= &cursor.identity => {
                    range.narrow_lower(Bound::Included(at))
                }
                Direction::Forward => range.narrow_lower(Bound::Excluded(at)),
                Direction::Reverse if identity <= &cursor.identity => {
                    range.narrow_upper(Bound::Included(at))
                }
                Direction::Reverse => range.narrow_upper(Bound::Excluded(at)),
            };
        }
        Self {
            identity,
            range,
            resume: None,
            buffer: VecDeque::new(),
            exhausted: false,
            chunk,
        }
    }

    /// Reads until an event is buffered or the member has no more; reads at most `wanted`
    /// events per scan, since the page cannot use more from one member.
    fn fill(&mut self, store: &dyn Store, query: &EventQuery<'_>, wanted: usize) -> Result<()> {
        while self.buffer.is_empty() && !self.exhausted {
            let chunk = self.chunk.min(wanted).max(1);
            let range = match &self.resume {
                Some(after) => self.range.clone().resume_after(after.clone()),
                None => self.range.clone(),
            };
            let rows = store.scan(Table::Events, &range, query.direction, chunk)?;
            self.exhausted = rows.len() < chunk;
            // Rejections mean the next read needs more rows to find as many matches.
            self.chunk = self.chunk.saturating_mul(2).min(MAX_CHUNK);
            self.resume = rows.last().map(|row| row.key.clone());
            for row in rows {
                let position = self.position(&row.key)?;
                // Checked on the key alone: an expired event is not worth decoding.
                if query.expired(&position.dataset, position.timestamp_ms) {
                    continue;
                }
                let found = decode(position, &row)?;
                if query.filters.iter().all(|f| f.matches(&found.event.event)) {
                    self.buffer.push_back(found);
                }
            }
        }
        Ok(())
    }

    fn position(&self, key: &[u8]) -> Result<Position> {
        let (_, mut reader) = KeyReader::with_scope(key)?;
        let _table_tag = reader.string()?;
        let _namespace = reader.string()?;
        let _id = reader.string()?;
        let timestamp_ms = reader.i64()?;
        let dataset = reader.string()?;
        let event_id = reader.string()?;
        Ok(Position {
            timestamp_ms,
            dataset,
            event_id,
            identity: self.identity.clone(),
        })
    }
}

fn decode(position: Position, row: &Entry) -> Result<FoundEvent> {
    let event: StoredEvent = serde_json::from_slice(&row.value).map_err(|e| Error::Corrupt {
        what: "event",
        reason: e.to_string(),
    })?;
    Ok(FoundEvent { position, event })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use serde_json::{json, Map, Value};
    use tessera_store::{EmbeddedStore, StoreOptions, WriteBatch};

    use super::*;
    use crate::event::NewEvent;
    use crate::event_filter::PropertyFilter;

    fn tenant() -> Tenant {
        Tenant::parse("ACME@AdobeOrg", "prod").unwrap()
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    /// Stores `(identity, timestamp, _id, page name)` events in dataset `web`.
    fn store_with(
        events: &[(&IdentityKey, i64, &str, &str)],
    ) -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let mut batch = WriteBatch::new();
        for (identity, ts, id, name) in events {
            let new = NewEvent {
                dataset: "web",
                identity,
                timestamp_ms: *ts,
                event_id: id,
                xaction_id: "1700000000000:1:0",
            };
            let body = object(json!({"_id": id, "web": {"webPageDetails": {"name": name}}}));
            event::append(&mut batch, &tenant(), &new, &body).unwrap();
        }
        store.commit(batch).unwrap();
        (dir, store)
    }

    const NO_CUTOFFS: &Cutoffs = &Cutoffs::new();

    fn query<'a>(members: &'a [IdentityKey], tenant: &'a Tenant) -> EventQuery<'a> {
        EventQuery {
            tenant,
            members,
            window: TimeWindow::default(),
            direction: Direction::Forward,
            start: None,
            filters: &[],
            limit: 100,
            cutoffs: NO_CUTOFFS,
        }
    }

    fn ids(page: &EventPage) -> Vec<&str> {
        page.events
            .iter()
            .map(|e| e.position.event_id.as_str())
            .collect()
    }

    #[test]
    fn cursor_round_trips_and_rejects_forgeries() {
        let position = Position {
            timestamp_ms: -5,
            dataset: "d\u{0}s".into(),
            event_id: "e/1?&=".into(),
            identity: IdentityKey::new("Email", "a@b.c"),
        };
        let cursor = position.to_cursor();
        assert!(cursor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(Position::from_cursor(&cursor).unwrap(), position);
        for bad in ["", "not base64!", "WzIsMSwiYSIsImIiLCJjIiwiZCJd", "e30"] {
            assert!(
                matches!(Position::from_cursor(bad), Err(Error::InvalidCursor { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn members_merge_by_time_then_identity() {
        let ecid = IdentityKey::new("ECID", "1");
        let email = IdentityKey::new("Email", "a@b.c");
        let (_dir, store) = store_with(&[
            (&ecid, 10, "e1", "home"),
            (&email, 5, "m1", "home"),
            (&ecid, 20, "e2", "cart"),
            (&email, 20, "m2", "cart"),
        ]);
        let tenant = tenant();
        let members = [email.clone(), ecid.clone()];
        let all = page(&store, &query(&members, &tenant)).unwrap();
        assert_eq!(ids(&all), ["m1", "e1", "e2", "m2"]);
        assert_eq!(all.next, None);
        let newest = page(
            &store,
            &EventQuery {
                direction: Direction::Reverse,
                ..query(&members, &tenant)
            },
        )
        .unwrap();
        assert_eq!(ids(&newest), ["m2", "e2", "e1", "m1"]);
        // Only the looked-up identity when the graph is not used.
        let alone = [ecid.clone()];
        assert_eq!(
            ids(&page(&store, &query(&alone, &tenant)).unwrap()),
            ["e1", "e2"]
        );
    }

    #[test]
    fn window_is_start_inclusive_end_exclusive() {
        let ecid = IdentityKey::new("ECID", "1");
        let (_dir, store) = store_with(&[
            (&ecid, 9, "a", "x"),
            (&ecid, 10, "b", "x"),
            (&ecid, 19, "c", "x"),
            (&ecid, 20, "d", "x"),
        ]);
        let tenant = tenant();
        let members = [ecid];
        for direction in [Direction::Forward, Direction::Reverse] {
            let found = page(
                &store,
                &EventQuery {
                    window: TimeWindow {
                        start_ms: Some(10),
                        end_ms: Some(20),
                    },
                    direction,
                    ..query(&members, &tenant)
                },
            )
            .unwrap();
            let mut got = ids(&found);
            got.sort_unstable();
            assert_eq!(got, ["b", "c"], "{direction:?}");
        }
    }

    #[test]
    fn filters_apply_before_the_limit_and_the_cursor_names_the_next_match() {
        let ecid = IdentityKey::new("ECID", "1");
        let mut rows = Vec::new();
        let names: Vec<String> = (0..100).map(|i| format!("e{i:03}")).collect();
        for (i, id) in names.iter().enumerate() {
            let name = if i % 10 == 0 { "home" } else { "other" };
            rows.push((&ecid, i as i64, id.as_str(), name));
        }
        let (_dir, store) = store_with(&rows);
        let tenant = tenant();
        let members = [ecid];
        let filters = [PropertyFilter::parse("web.webPageDetails.name=home").unwrap()];
        let first = page(
            &store,
            &EventQuery {
                filters: &filters,
                limit: 3,
                ..query(&members, &tenant)
            },
        )
        .unwrap();
        assert_eq!(ids(&first), ["e000", "e010", "e020"]);
        let next = first.next.unwrap();
        assert_eq!(next.event_id, "e030");
        let second = page(
            &store,
            &EventQuery {
                filters: &filters,
                limit: 10,
                start: Some(&next),
                ..query(&members, &tenant)
            },
        )
        .unwrap();
        assert_eq!(
            ids(&second),
            ["e030", "e040", "e050", "e060", "e070", "e080", "e090"]
        );
        assert_eq!(second.next, None);
    }

    #[test]
    fn cutoffs_hide_older_events_of_their_dataset_only() {
        let ecid = IdentityKey::new("ECID", "1");
        let (_dir, store) = store_with(&[
            (&ecid, 9, "a", "x"),
            (&ecid, 10, "b", "x"),
            (&ecid, 11, "c", "x"),
        ]);
        let tenant = tenant();
        let members = [ecid];
        let cutoffs = Cutoffs::from([("web".to_owned(), 10), ("other".to_owned(), 100)]);
        for direction in [Direction::Forward, Direction::Reverse] {
            let found = page(
                &store,
                &EventQuery {
                    direction,
                    cutoffs: &cutoffs,
                    ..query(&members, &tenant)
                },
            )
            .unwrap();
            let mut got = ids(&found);
            got.sort_unstable();
            assert_eq!(got, ["b", "c"], "the cutoff itself is retained");
        }
    }

    #[test]
    fn unknown_identity_is_an_empty_last_page() {
        let (_dir, store) = store_with(&[]);
        let tenant = tenant();
        let members = [IdentityKey::new("ECID", "nobody")];
        let found = page(&store, &query(&members, &tenant)).unwrap();
        assert!(found.events.is_empty());
        assert_eq!(found.next, None);
    }
}
