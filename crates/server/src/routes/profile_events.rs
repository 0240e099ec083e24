//! AEP Profile Access for experience events:
//! `GET /data/core/ups/access/entities?schema.name=_xdm.context.experienceevent&relatedEntityId=..`
//! — a page of a profile's events, with the `_page` / `children` / `_links` shape of AEP.
//!
//! What lives here: the query parameters (validated once into `EventsParams`), identity
//! lookup and the response shape. What does not: the scan, merge order, filters and cursor
//! (`tessera_profile::event_query`, `event_filter`).
//!
//! Differences from AEP, documented in docs/api-decisions.md: the page cursor (`_page.next`,
//! `start=`) is an opaque token rather than the next event's `_id`, because an `_id` alone does
//! not locate an event among several identities and datasets; an unknown identity is an empty
//! page, not a 404.
//!
//! Retention: events older than their dataset's profile TTL
//! (`extensions.adobe_unifiedProfile.rowExpiration.ttlValue`) are not returned, from the
//! moment the TTL is set, even before the sweeper has deleted them.

use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use tessera_profile::event_filter::{self, PropertyFilter};
use tessera_profile::event_query::{self, Cutoffs, EventQuery, FoundEvent, Position, TimeWindow};
use tessera_store::Direction;

use crate::context::SandboxContext;
use crate::error::ApiResult;
use crate::routes::blocking;
use crate::routes::profile::{graph_members, profile_error, project, requested_identity};
use crate::state::AppState;

/// Page size when `limit` is absent (AEP's default).
pub const DEFAULT_EVENT_LIMIT: usize = 1000;
/// Largest accepted `limit`: a page is built in memory and sent in one response.
pub const MAX_EVENT_LIMIT: usize = 10_000;

/// The event lookup's parameters, validated.
#[derive(Debug, Clone)]
pub(crate) struct EventsParams {
    related_entity_id: String,
    related_entity_id_ns: Option<String>,
    window: TimeWindow,
    limit: usize,
    direction: Direction,
    filters: Vec<PropertyFilter>,
    fields: Option<String>,
    start: Option<Position>,
    /// The request's own `name=value` segments (still URL-encoded) except `start`, so the
    /// next page's link repeats exactly what the client sent.
    other_params: Vec<String>,
}

impl EventsParams {
    /// Reads the decoded query `pairs` (`property` may repeat) and the raw query string.
    pub(crate) fn parse(pairs: &[(String, String)], raw_query: &str) -> ApiResult<Self> {
        let bad = |message: String| profile_error(StatusCode::BAD_REQUEST, message);
        let first = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        if let Some(related) = first("relatedSchema.name") {
            if related != "_xdm.context.profile" {
                return Err(bad(format!(
                    "relatedSchema.name {related} is not supported; use _xdm.context.profile"
                )));
            }
        }
        let Some(related_entity_id) = first("relatedEntityId").filter(|id| !id.is_empty()) else {
            return Err(bad(
                "relatedEntityId is required for _xdm.context.experienceevent".to_owned(),
            ));
        };
        let time = |name: &str| -> ApiResult<Option<i64>> {
            first(name)
                .map(|text| {
                    text.trim().parse::<i64>().map_err(|_| {
                        bad(format!(
                            "{name} must be a time in milliseconds, got {text:?}"
                        ))
                    })
                })
                .transpose()
        };
        let window = TimeWindow {
            start_ms: time("startTime")?,
            end_ms: time("endTime")?,
        };
        if let (Some(start), Some(end)) = (window.start_ms, window.end_ms) {
            if start > end {
                return Err(bad(format!("startTime {start} is after endTime {end}")));
            }
        }
        let limit = match first("limit") {
            None => DEFAULT_EVENT_LIMIT,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_EVENT_LIMIT).contains(n))
                .ok_or_else(|| {
                    bad(format!(
                        "limit must be a whole number from 1 to {MAX_EVENT_LIMIT}, got {text:?}"
                    ))
                })?,
        };
        // `+` in a query string decodes to a space, so `orderby=+timestamp` arrives as
        // " timestamp".
        let direction = match first("orderby").or_else(|| first("orderBy")).map(str::trim) {
            None | Some("timestamp" | "+timestamp") => Direction::Forward,
            Some("-timestamp") => Direction::Reverse,
            Some(other) => {
                return Err(bad(format!(
                    "orderby must be timestamp, +timestamp or -timestamp, got {other:?}"
                )))
            }
        };
        let properties: Vec<&str> = pairs
            .iter()
            .filter(|(key, _)| key == "property")
            .map(|(_, value)| value.as_str())
            .collect();
        let filters = event_filter::parse_all(&properties)?;
        let start = first("start")
            .filter(|cursor| !cursor.is_empty())
            .map(Position::from_cursor)
            .transpose()?;
        let other_params = raw_query
            .split('&')
            .filter(|segment| !segment.is_empty() && segment.split('=').next() != Some("start"))
            .map(str::to_owned)
            .collect();
        Ok(Self {
            related_entity_id: related_entity_id.to_owned(),
            related_entity_id_ns: first("relatedEntityIdNS")
                .filter(|ns| !ns.is_empty())
                .map(str::to_owned),
            window,
            limit,
            direction,
            filters,
            fields: first("fields").map(str::to_owned),
            start,
            other_params,
        })
    }

    /// `_links.next.href` for a page that ends before `next`.
    fn next_href(&self, cursor: &str) -> String {
        let mut href = format!("/entities?start={cursor}");
        for segment in &self.other_params {
            href.push('&');
            href.push_str(segment);
        }
        href
    }
}

/// A page of the experience events of the profile `params` names. With `use_graph`, the
/// events of every identity in its identity graph are merged; without, only the looked-up
/// identity's (a merge policy with `identityGraph.type = none`).
pub(crate) async fn get_events(
    state: AppState,
    context: SandboxContext,
    params: EventsParams,
    use_graph: bool,
) -> ApiResult<Json<Value>> {
    let max_identities = state.ingest.limits().max_graph_identities;
    let tenant = context.tenant.clone();
    let lookup = params.clone();
    let ingest = state.ingest.clone();
    let (key, page) = blocking(&state, move |store| {
        let namespaces = ingest.namespaces(&tenant)?;
        let key = requested_identity(
            &namespaces,
            &lookup.related_entity_id,
            lookup.related_entity_id_ns.as_deref(),
        )?;
        let members = graph_members(store, &tenant, &key, use_graph, max_identities)?;
        // One clock reading for the whole page, so every dataset's cutoff agrees.
        let now_ms = crate::system_jobs::now_ms();
        let cutoffs: Cutoffs = tessera_ingest::dataset::event_ttls(store, &tenant)?
            .into_iter()
            .map(|(dataset, ttl)| (dataset, ttl.cutoff_ms(now_ms)))
            .collect();
        let query = EventQuery {
            tenant: &tenant,
            members: &members,
            window: lookup.window,
            direction: lookup.direction,
            start: lookup.start.as_ref(),
            filters: &lookup.filters,
            limit: lookup.limit,
            cutoffs: &cutoffs,
        };
        let page = event_query::page(store, &query)?;
        Ok((key, page))
    })
    .await?;

    let related = key.xid().as_str().to_owned();
    let children: Vec<Value> = page
        .events
        .iter()
        .map(|found| child(found, &related, params.fields.as_deref()))
        .collect();
    let first_id = page
        .events
        .first()
        .map(|found| found.position.event_id.clone())
        .unwrap_or_default();
    let next = page
        .next
        .as_ref()
        .map(Position::to_cursor)
        .unwrap_or_default();
    let href = if next.is_empty() {
        String::new()
    } else {
        params.next_href(&next)
    };
    let orderby = match params.direction {
        Direction::Forward => "timestamp",
        Direction::Reverse => "-timestamp",
    };
    Ok(Json(json!({
        "_page": {
            "orderby": orderby,
            "start": first_id,
            "count": children.len(),
            "next": next,
        },
        "children": children,
        "_links": { "next": { "href": href } },
    })))
}

/// One event in AEP's `children[]` shape.
fn child(found: &FoundEvent, related: &str, fields: Option<&str>) -> Value {
    let entity = match fields {
        Some(fields) => project(&found.event.event, fields),
        None => found.event.event.clone(),
    };
    // When the event was written, from its receipt; its own time for receipts without one.
    let modified_ms = found
        .event
        .received_ms()
        .unwrap_or(found.position.timestamp_ms);
    json!({
        "relatedEntityId": related,
        "entityId": found.position.event_id,
        "timestamp": found.position.timestamp_ms,
        "entity": entity,
        "lastModifiedAt": rfc3339_seconds(modified_ms),
    })
}

/// AEP writes `lastModifiedAt` to the second (`2018-08-21T06:49:02Z`).
fn rfc3339_seconds(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        let uri: axum::http::Uri = format!("/x?{query}").parse().unwrap();
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
            .unwrap()
            .0
    }

    fn parse(query: &str) -> ApiResult<EventsParams> {
        EventsParams::parse(&pairs(query), query)
    }

    #[test]
    fn defaults_and_spellings() {
        let params = parse("relatedEntityId=abc&orderBy=-timestamp").unwrap();
        assert_eq!(params.limit, DEFAULT_EVENT_LIMIT);
        assert_eq!(params.direction, Direction::Reverse);
        let plus = parse("relatedEntityId=abc&orderby=+timestamp").unwrap();
        assert_eq!(plus.direction, Direction::Forward);
        let encoded = parse("relatedEntityId=abc&orderby=%2Btimestamp").unwrap();
        assert_eq!(encoded.direction, Direction::Forward);
    }

    #[test]
    fn invalid_parameters_are_400() {
        for query in [
            "relatedEntityIdNS=ECID",
            "relatedEntityId=a&limit=0",
            "relatedEntityId=a&limit=-1",
            "relatedEntityId=a&limit=10001",
            "relatedEntityId=a&limit=ten",
            "relatedEntityId=a&startTime=yesterday",
            "relatedEntityId=a&startTime=5&endTime=4",
            "relatedEntityId=a&orderby=name",
            "relatedEntityId=a&relatedSchema.name=_xdm.context.account",
            "relatedEntityId=a&start=garbage!",
            "relatedEntityId=a&property=nooperator",
        ] {
            let error = parse(query).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{query}");
        }
    }

    #[test]
    fn next_link_repeats_the_request_without_its_start() {
        let params = parse("schema.name=_xdm.context.experienceevent&start=&relatedEntityId=a%40b&property=x%3D1&limit=2").unwrap();
        assert_eq!(
            params.next_href("CUR"),
            "/entities?start=CUR&schema.name=_xdm.context.experienceevent&relatedEntityId=a%40b&property=x%3D1&limit=2"
        );
    }

    #[test]
    fn last_modified_is_to_the_second() {
        assert_eq!(rfc3339_seconds(1_534_834_142_999), "2018-08-21T06:49:02Z");
    }
}
