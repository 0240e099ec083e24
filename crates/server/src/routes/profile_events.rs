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

/// What one profile's page of events needs besides the identity.
#[derive(Debug, Clone)]
struct PageSpec {
    window: TimeWindow,
    direction: Direction,
    start: Option<Position>,
    filters: Vec<PropertyFilter>,
    limit: usize,
}

/// Resolves the identity (`id` with namespace `ns`, or an XID) and reads one page of the
/// events of its profile: every identity of its graph with `use_graph`, only its own without
/// (a merge policy with `identityGraph.type = none`).
fn read_page(
    store: &dyn tessera_store::Store,
    state: &AppState,
    tenant: &tessera_model::Tenant,
    (id, ns): (&str, Option<&str>),
    use_graph: bool,
    spec: &PageSpec,
) -> ApiResult<(tessera_identity::IdentityKey, event_query::EventPage)> {
    let namespaces = state.ingest.namespaces(tenant)?;
    let key = requested_identity(&namespaces, id, ns)?;
    let max_identities = state.ingest.limits().max_graph_identities;
    let members = graph_members(store, tenant, &key, use_graph, max_identities)?;
    // One clock reading for the whole page, so every dataset's retention cutoff agrees.
    let now_ms = crate::system_jobs::now_ms();
    let cutoffs: Cutoffs = tessera_ingest::dataset::event_ttls(store, tenant)?
        .into_iter()
        .map(|(dataset, ttl)| (dataset, ttl.cutoff_ms(now_ms)))
        .collect();
    let query = EventQuery {
        tenant,
        members: &members,
        cutoffs: &cutoffs,
        window: spec.window,
        direction: spec.direction,
        start: spec.start.as_ref(),
        filters: &spec.filters,
        limit: spec.limit,
    };
    Ok((key, event_query::page(store, &query)?))
}

/// AEP's page object around `children`; `next_link` is `_links.next` when there is a next
/// page (the caller knows whether it is a GET href or a POST payload).
fn render_page(
    key: &tessera_identity::IdentityKey,
    page: &event_query::EventPage,
    fields: Option<&str>,
    direction: Direction,
    next_link: impl FnOnce(&str) -> Value,
) -> Value {
    let related = key.xid().as_str().to_owned();
    let children: Vec<Value> = page
        .events
        .iter()
        .map(|found| child(found, &related, fields))
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
    let link = if next.is_empty() {
        json!({ "href": "" })
    } else {
        next_link(&next)
    };
    let orderby = match direction {
        Direction::Forward => "timestamp",
        Direction::Reverse => "-timestamp",
    };
    json!({
        "_page": {
            "orderby": orderby,
            "start": first_id,
            "count": children.len(),
            "next": next,
        },
        "children": children,
        "_links": { "next": link },
    })
}

/// A page of the experience events of the profile `params` names (see [`read_page`]).
pub(crate) async fn get_events(
    state: AppState,
    context: SandboxContext,
    params: EventsParams,
    use_graph: bool,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let spec = PageSpec {
        window: params.window,
        direction: params.direction,
        start: params.start.clone(),
        filters: params.filters.clone(),
        limit: params.limit,
    };
    let lookup = params.clone();
    let worker = state.clone();
    let (key, page) = blocking(&state, move |store| {
        read_page(
            store,
            &worker,
            &tenant,
            (
                &lookup.related_entity_id,
                lookup.related_entity_id_ns.as_deref(),
            ),
            use_graph,
            &spec,
        )
    })
    .await?;
    Ok(Json(render_page(
        &key,
        &page,
        params.fields.as_deref(),
        params.direction,
        |cursor| json!({ "href": params.next_href(cursor) }),
    )))
}

/// Body of the multi-profile event lookup (`POST /access/entities`).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EventsBody {
    #[serde(default)]
    identities: Vec<RelatedIdentity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fields: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_filter: Option<TimeFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
    #[serde(default, alias = "orderBy", skip_serializing_if = "Option::is_none")]
    orderby: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RelatedIdentity {
    #[serde(alias = "entityId")]
    related_entity_id: String,
    #[serde(default, alias = "entityIdNS", skip_serializing_if = "Option::is_none")]
    related_entity_id_n_s: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<String>,
}

#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TimeFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_time: Option<i64>,
}

/// Pages of events of up to 100 profiles (`POST /access/entities` with
/// `schema.name=_xdm.context.experienceevent`): keyed by each `relatedEntityId` as sent, with
/// `_links.next = {href: "/entities", payload}` where `payload` is the body to POST for the
/// next page of that profile (AEP's shape). Identities that fail make the answer a 207 with
/// `{xid, error}` items, the others as `{xid, entity: <page>}`.
pub(crate) async fn post_events(
    state: AppState,
    context: SandboxContext,
    body: Value,
    use_graph: bool,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let bad = |message: String| profile_error(StatusCode::BAD_REQUEST, message);
    let request: EventsBody =
        serde_json::from_value(body).map_err(|e| bad(format!("invalid event lookup: {e}")))?;
    if request.identities.is_empty() || request.identities.len() > 100 {
        return Err(bad("identities must list 1 to 100 profiles".to_owned()));
    }
    let limit = request.limit.unwrap_or(DEFAULT_EVENT_LIMIT);
    if !(1..=MAX_EVENT_LIMIT).contains(&limit) {
        return Err(bad(format!("limit must be from 1 to {MAX_EVENT_LIMIT}")));
    }
    let direction = match request.orderby.as_deref().map(str::trim) {
        None | Some("timestamp" | "+timestamp") => Direction::Forward,
        Some("-timestamp") => Direction::Reverse,
        Some(other) => {
            return Err(bad(format!(
                "orderby must be timestamp, +timestamp or -timestamp, got {other:?}"
            )))
        }
    };
    let window = TimeWindow {
        start_ms: request.time_filter.and_then(|t| t.start_time),
        end_ms: request.time_filter.and_then(|t| t.end_time),
    };
    let fields = request.fields.as_ref().map(|f| f.join(","));
    let tenant = context.tenant.clone();
    let worker = state.clone();
    let identities = request.identities.clone();
    let results = blocking(&state, move |store| {
        let mut results = Vec::with_capacity(identities.len());
        for identity in &identities {
            let ns = match &identity.related_entity_id_n_s {
                Some(Value::String(code)) => Some(code.clone()),
                Some(Value::Object(map)) => {
                    map.get("code").and_then(Value::as_str).map(str::to_owned)
                }
                _ => None,
            };
            let outcome = identity
                .start
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(Position::from_cursor)
                .transpose()
                .map_err(crate::error::ApiError::from)
                .and_then(|start| {
                    let spec = PageSpec {
                        window,
                        direction,
                        start,
                        filters: Vec::new(),
                        limit,
                    };
                    read_page(
                        store,
                        &worker,
                        &tenant,
                        (&identity.related_entity_id, ns.as_deref()),
                        use_graph,
                        &spec,
                    )
                });
            results.push((identity.clone(), outcome));
        }
        Ok(results)
    })
    .await?;
    let mut pages = serde_json::Map::new();
    let mut items = Vec::new();
    let mut failed = false;
    for (identity, outcome) in results {
        let name = identity.related_entity_id.clone();
        match outcome {
            Ok((key, page)) => {
                let rendered = render_page(&key, &page, fields.as_deref(), direction, |cursor| {
                    let mut payload = request.clone();
                    payload.identities = vec![RelatedIdentity {
                        start: Some(cursor.to_owned()),
                        ..identity.clone()
                    }];
                    json!({ "href": "/entities", "payload": payload })
                });
                items.push(json!({ "xid": name, "entity": rendered.clone() }));
                pages.insert(name, rendered);
            }
            Err(error) => {
                failed = true;
                let status = error.status();
                let message = match &error {
                    crate::error::ApiError::Profile { message, .. } => message.clone(),
                    crate::error::ApiError::Identity { detail, .. } => detail.clone(),
                    other => format!("{other:?}"),
                };
                items.push(json!({"xid": name, "error": {"message": message, "statusCode": status.as_u16().to_string()}}));
            }
        }
    }
    if failed {
        return Ok((StatusCode::MULTI_STATUS, Json(Value::Array(items))));
    }
    Ok((StatusCode::OK, Json(Value::Object(pages))))
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
