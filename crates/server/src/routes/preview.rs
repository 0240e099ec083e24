//! AEP preview sample status: `/data/core/ups/previewsamplestatus` and its reports
//! (`report/dataset`, `report/namespace`, `report/dataset/overlap`,
//! `report/namespace/overlap`, `report/unknownProfiles`), in the shapes of the AEP reference
//! §4.2, quirks included (counts as strings, strings holding quoted values).
//!
//! Tessera's "sample" is the whole store: a request without `date` computes the report exactly
//! ([`tessera_profile::stats::compute`], whose doc says how that scales), so the sampling ratio
//! is 1 and sample counts equal full counts. Each computed report is kept per UTC day under
//! `tenant, "sample-report", date` in `Table::Jobs`, so `date=` for a past day returns what
//! was computed that day and a day never computed is a 404, as in AEP.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use tessera_identity::Namespaces;
use tessera_model::Tenant;
use tessera_profile::stats::{self, Report};
use tessera_store::{Key, Store, Table, WriteBatch};
use time::macros::format_description;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::off_thread;
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sample_status))
        .routes(routes!(dataset_report))
        .routes(routes!(namespace_report))
        .routes(routes!(dataset_overlap_report))
        .routes(routes!(namespace_overlap_report))
        .routes(routes!(unknown_profiles_report))
}

/// Which report of a day.
#[derive(Debug, Clone, Copy)]
enum Part {
    Status,
    Dataset,
    Namespace,
    DatasetOverlap,
    NamespaceOverlap,
    UnknownProfiles,
}

impl Part {
    const fn field(self) -> &'static str {
        match self {
            Part::Status => "status",
            Part::Dataset => "dataset",
            Part::Namespace => "namespace",
            Part::DatasetOverlap => "datasetOverlap",
            Part::NamespaceOverlap => "namespaceOverlap",
            Part::UnknownProfiles => "unknownProfiles",
        }
    }
}

/// `date=YYYY-MM-DD`; absent: the latest report.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ReportQuery {
    /// Day of the report (UTC).
    date: Option<String>,
}

fn profile_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::Profile {
        status,
        message: message.into(),
    }
}

fn report_key(tenant: &Tenant, date: &str) -> Key {
    Key::tenant(tenant).str("sample-report").str(date).finish()
}

fn utc_date(at: OffsetDateTime) -> String {
    at.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// `2020-08-01T17:57:58.697`, AEP's `reportTimestamp`.
fn report_timestamp(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"
    ))
    .unwrap_or_default()
}

/// `2020-08-01 17:57:57.0`, AEP's `lastSampledTimestamp`.
fn sampled_timestamp(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:1]"
    ))
    .unwrap_or_default()
}

/// `part / whole`, six decimals as AEP shows them; 0 for an empty store.
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    let value = part as f64 / whole as f64;
    (value * 1_000_000.0).round() / 1_000_000.0
}

fn now_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Computes every report of the day from the store and renders it.
fn compute(state: &AppState, tenant: &Tenant, at: OffsetDateTime) -> ApiResult<Value> {
    let store = state.store.as_ref();
    let report = stats::compute(store, tenant, now_ms(at))?;
    let namespaces = Namespaces::load(store, tenant)?;
    let stamp = report_timestamp(at);
    let mut datasets = Vec::new();
    for (id, counts) in &report.datasets {
        let doc = match state.ingest.catalog().get(tenant, id) {
            Ok(dataset) => dataset.doc,
            // Data outlives a dataset deleted from the catalog until a system job removes it.
            Err(tessera_ingest::Error::DatasetNotFound { .. }) => Map::new(),
            Err(other) => return Err(other.into()),
        };
        let text = |field: &str| doc.get(field).and_then(Value::as_str).unwrap_or_default();
        datasets.push(json!({
            "sampleCount": counts.profiles,
            "samplePercentage": ratio(counts.profiles, report.profiles),
            "fullIDsCount": counts.profiles,
            "fullIDsPercentage": ratio(counts.profiles, report.profiles),
            "name": text("name"),
            "description": text("description"),
            "value": id,
            "streamingIngestionEnabled": "",
            "createdUser": text("createdUser"),
            "reportTimestamp": stamp,
        }));
    }
    let namespace_items: Vec<Value> = report
        .namespaces
        .iter()
        .filter(|(_, counts)| counts.profiles > 0)
        .map(|(code, counts)| {
            json!({
                "sampleCount": counts.profiles,
                "samplePercentage": ratio(counts.profiles, report.profiles),
                "reportTimestamp": stamp,
                "fullIDsFragmentCount": counts.fragments,
                "fullIDsCount": counts.profiles,
                "fullIDsPercentage": ratio(counts.profiles, report.profiles),
                "code": code,
                "value": namespaces.by_code(code).map(|ns| ns.id.to_string()).unwrap_or_default(),
            })
        })
        .collect();
    let sampled = sampled_timestamp(at);
    let docs = report.fragments + report.events;
    let status = json!({
        "numRowsToRead": report.profiles.to_string(),
        "sampleJobRunning": {"status": false, "submissionTimestamp": sampled},
        "cosmosDocCount": format!("\"{docs}\""),
        "docCount": format!("\"{docs}\""),
        "totalFragmentCount": report.fragments,
        "lastSuccessfulBatchTimestamp": "\"null\"",
        "streamingDriven": "\"false\"",
        "totalRows": report.profiles.to_string(),
        "lastBatchId": "\"null\"",
        "status": "TASK_FINISHED",
        "samplingRatio": 1.0,
        "mergeStrategy": "timestampOrdered_auto",
        "lastSampledTimestamp": sampled,
    });
    Ok(json!({
        Part::Status.field(): status,
        Part::Dataset.field(): {"data": datasets, "reportTimestamp": stamp},
        Part::Namespace.field(): {"data": namespace_items, "reportTimestamp": stamp},
        Part::DatasetOverlap.field(): {"data": report.dataset_overlap, "reportTimestamp": stamp},
        Part::NamespaceOverlap.field(): {"data": report.namespace_overlap, "reportTimestamp": stamp},
        Part::UnknownProfiles.field(): {"data": unknown_profiles(&report), "reportTimestamp": stamp},
    }))
}

fn unknown_profiles(report: &Report) -> Value {
    let windows: BTreeMap<String, Value> = report
        .unknown
        .iter()
        .map(|window| {
            let split: BTreeMap<&str, Value> = window
                .by_namespace
                .iter()
                .map(|(code, (profiles, events))| {
                    (
                        code.as_str(),
                        json!({"countOfProfiles": profiles, "eventsAssociated": events}),
                    )
                })
                .collect();
            (
                format!("{}days", window.days),
                json!({
                    "countOfProfiles": window.profiles,
                    "eventsAssociated": window.events,
                    "nsDistribution": split,
                }),
            )
        })
        .collect();
    json!({
        "totalNumberOfProfiles": report.profiles,
        "totalNumberOfEvents": report.events,
        "unknownProfiles": windows,
    })
}

/// The requested part of the latest report (computed now) or of a past day's.
async fn answer(
    state: AppState,
    context: SandboxContext,
    date: Option<String>,
    part: Part,
) -> ApiResult<Json<Value>> {
    let tenant = context.tenant.clone();
    let now = OffsetDateTime::now_utc();
    let today = utc_date(now);
    if let Some(date) = &date {
        if time::Date::parse(date, format_description!("[year]-[month]-[day]")).is_err() {
            return Err(profile_error(
                StatusCode::BAD_REQUEST,
                format!("date {date:?} is not a date in the format YYYY-MM-DD"),
            ));
        }
    }
    let day = off_thread(move || -> ApiResult<Option<Value>> {
        let store: &dyn Store = state.store.as_ref();
        match date {
            Some(date) if date != today => {
                let stored = store.get(Table::Jobs, &report_key(&tenant, &date))?;
                stored
                    .map(|bytes| {
                        serde_json::from_slice(&bytes).map_err(|e| {
                            ApiError::from(tessera_profile::Error::Corrupt {
                                what: "sample report",
                                reason: e.to_string(),
                            })
                        })
                    })
                    .transpose()
            }
            _ => {
                let day = compute(&state, &tenant, now)?;
                // Kept so that `date=` of this day finds it later; the answer does not wait
                // on anything else, and a lost write only loses history.
                let mut batch = WriteBatch::new();
                batch.put(
                    Table::Jobs,
                    &report_key(&tenant, &today),
                    day.to_string().into_bytes(),
                );
                store.commit(batch)?;
                Ok(Some(day))
            }
        }
    })
    .await?;
    let Some(mut day) = day else {
        return Err(profile_error(
            StatusCode::NOT_FOUND,
            "no sample report exists for this date",
        ));
    };
    match day.get_mut(part.field()).map(Value::take) {
        Some(body) => Ok(Json(body)),
        None => Err(profile_error(
            StatusCode::NOT_FOUND,
            "no sample report exists for this date",
        )),
    }
}

/// Status of the latest profile sample: profile and fragment counts.
#[utoipa::path(get, path = "/data/core/ups/previewsamplestatus", tag = "profile", params(ReportQuery),
    responses((status = 200, description = "`{numRowsToRead, totalRows, totalFragmentCount, cosmosDocCount, status, ...}`")))]
async fn sample_status(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Json<Value>> {
    answer(state, context, query.date, Part::Status).await
}

/// Profiles per dataset.
#[utoipa::path(get, path = "/data/core/ups/previewsamplestatus/report/dataset", tag = "profile", params(ReportQuery),
    responses((status = 200, description = "`{data: [{sampleCount, fullIDsCount, value, name, ...}], reportTimestamp}`"),
        (status = 404, description = "no report for the date")))]
async fn dataset_report(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Json<Value>> {
    answer(state, context, query.date, Part::Dataset).await
}

/// Profiles and fragments per identity namespace.
#[utoipa::path(get, path = "/data/core/ups/previewsamplestatus/report/namespace", tag = "profile", params(ReportQuery),
    responses((status = 200, description = "`{data: [{code, value, fullIDsCount, fullIDsFragmentCount, ...}], reportTimestamp}`"),
        (status = 404, description = "no report for the date")))]
async fn namespace_report(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Json<Value>> {
    answer(state, context, query.date, Part::Namespace).await
}

/// Profiles per combination of contributing datasets.
#[utoipa::path(get, path = "/data/core/ups/previewsamplestatus/report/dataset/overlap", tag = "profile", params(ReportQuery),
    responses((status = 200, description = "`{data: {\"ds1,ds2\": n}, reportTimestamp}`"),
        (status = 404, description = "no report for the date")))]
async fn dataset_overlap_report(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Json<Value>> {
    answer(state, context, query.date, Part::DatasetOverlap).await
}

/// Profiles per combination of identity namespaces.
#[utoipa::path(get, path = "/data/core/ups/previewsamplestatus/report/namespace/overlap", tag = "profile", params(ReportQuery),
    responses((status = 200, description = "`{data: {\"ECID,Email\": n}, reportTimestamp}`"),
        (status = 404, description = "no report for the date")))]
async fn namespace_overlap_report(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Json<Value>> {
    answer(state, context, query.date, Part::NamespaceOverlap).await
}

/// Unstitched profiles without recent events, per look-back window.
#[utoipa::path(get, path = "/data/core/ups/previewsamplestatus/report/unknownProfiles", tag = "profile", params(ReportQuery),
    responses((status = 200, description = "`{data: {totalNumberOfProfiles, totalNumberOfEvents, unknownProfiles: {\"7days\": ...}}, reportTimestamp}`"),
        (status = 404, description = "no report for the date")))]
async fn unknown_profiles_report(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Json<Value>> {
    answer(state, context, query.date, Part::UnknownProfiles).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_aep_formats() {
        let at = OffsetDateTime::from_unix_timestamp(1_596_304_678)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(report_timestamp(at), "2020-08-01T17:57:58.000");
        assert_eq!(sampled_timestamp(at), "2020-08-01 17:57:58.0");
        assert_eq!(utc_date(at), "2020-08-01");
        assert!((ratio(1, 3) - 0.333_333).abs() < 1e-9);
        assert!(ratio(1, 0).abs() < f64::EPSILON);
    }
}
