//! AEP segmentation schedules: `/data/core/ups/config/schedules` (the service and the
//! scheduler are [`crate::schedules`]).
//!
//! Status codes follow the Schedules API guide: POST and GET answer 200 with the schedule,
//! PATCH (JSON Patch on `/state`, `/schedule`, `/name`, `/properties`) and DELETE answer 204.
//! Lists page with `start` and `limit` into `{_page{totalCount, pageSize}, children,
//! _links{next}}`. A schedule shows AEP's fields plus two Tessera read-only extensions:
//! `lastRunEpoch` (the occurrence last fired) and `nextRunEpoch` (the next one, while active).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::SandboxContext;
use crate::cron::Cron;
use crate::error::ApiResult;
use crate::routes::{blocking, off_thread};
use crate::sandboxes;
use crate::schedules::{self, Schedule, ScheduleError};
use crate::state::AppState;
use crate::system_jobs::now_ms;

const SCHEDULES: &str = "/data/core/ups/config/schedules";

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schedules, create_schedule))
        .routes(routes!(get_schedule, patch_schedule, delete_schedule))
}

fn body(body: Result<Json<Value>, JsonRejection>) -> Result<Value, ScheduleError> {
    body.map(|Json(v)| v).map_err(|rejection| {
        ScheduleError::Invalid(format!(
            "the body is not valid JSON: {}",
            rejection.body_text()
        ))
    })
}

async fn sandbox_of(state: &AppState, context: &SandboxContext) -> ApiResult<sandboxes::Sandbox> {
    let org = context.tenant.org.clone();
    let name = context.tenant.sandbox.as_str().to_owned();
    blocking(state, move |store| sandboxes::get(store, &org, &name)).await
}

fn render(schedule: &Schedule, sandbox: &sandboxes::Sandbox) -> Value {
    let mut value = json!({
        "id": schedule.id,
        "imsOrgId": schedule.org,
        "sandbox": {"sandboxId": sandbox.name, "sandboxName": sandbox.name, "type": sandbox.kind, "default": sandbox.is_default},
        "name": schedule.name,
        "state": schedule.state,
        "type": schedule.kind,
        "schedule": schedule.schedule,
        "properties": schedule.properties,
        "createEpoch": schedule.create_epoch,
        "updateEpoch": schedule.update_epoch,
    });
    if let Value::Object(map) = &mut value {
        if let Some(last) = schedule.last_fire_ms {
            map.insert("lastRunEpoch".into(), json!(last / 1000));
        }
        let next = schedule
            .schedule
            .parse::<Cron>()
            .ok()
            .and_then(|cron| schedules::next_fire(schedule, &cron, OffsetDateTime::now_utc()));
        if let Some(next) = next {
            map.insert("nextRunEpoch".into(), json!(next.unix_timestamp()));
        }
    }
    value
}

/// Create a schedule (at most one per type and sandbox).
#[utoipa::path(post, path = "/data/core/ups/config/schedules", tag = "segmentation",
    responses((status = 200, description = "the schedule"),
        (status = 400, description = "invalid body or cron expression, or more often than once a day"),
        (status = 409, description = "the sandbox already has a schedule of this type")))]
async fn create_schedule(
    State(state): State<AppState>,
    context: SandboxContext,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let body = body(request)?;
    let schedules = state.schedules.clone();
    let tenant = context.tenant.clone();
    let created = off_thread(move || schedules.create(&tenant, &body, now_ms())).await?;
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(&created, &sandbox)))
}

/// Paging of a schedule list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Offset (default 0).
    start: Option<usize>,
    /// Page size (default 100).
    limit: Option<usize>,
}

/// Schedules of the sandbox, oldest first.
#[utoipa::path(get, path = "/data/core/ups/config/schedules", tag = "segmentation", params(ListParams),
    responses((status = 200, description = "`{_page{totalCount,pageSize}, children, _links{next}}`")))]
async fn list_schedules(
    State(state): State<AppState>,
    context: SandboxContext,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    let start = params.start.unwrap_or(0);
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let schedules = state.schedules.clone();
    let tenant = context.tenant.clone();
    let all = off_thread(move || schedules.list(&tenant)).await?;
    let sandbox = sandbox_of(&state, &context).await?;
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|s| render(s, &sandbox))
        .collect();
    let next = start + page.len();
    let links = if next < all.len() {
        json!({"next": {"href": format!("{SCHEDULES}?start={next}&limit={limit}")}})
    } else {
        json!({"next": {}})
    };
    Ok(Json(json!({
        "_page": {"totalCount": all.len(), "pageSize": page.len()},
        "children": page,
        "_links": links,
    })))
}

/// One schedule.
#[utoipa::path(get, path = "/data/core/ups/config/schedules/{id}", tag = "segmentation",
    params(("id" = String, Path, description = "schedule id")),
    responses((status = 200, description = "the schedule"), (status = 404, description = "unknown id")))]
async fn get_schedule(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let schedules = state.schedules.clone();
    let tenant = context.tenant.clone();
    let schedule = off_thread(move || schedules.get(&tenant, &id)).await?;
    let sandbox = sandbox_of(&state, &context).await?;
    Ok(Json(render(&schedule, &sandbox)))
}

/// Change a schedule's state, expression, name or properties (JSON Patch).
#[utoipa::path(patch, path = "/data/core/ups/config/schedules/{id}", tag = "segmentation",
    params(("id" = String, Path, description = "schedule id")),
    responses((status = 204, description = "changed"), (status = 400, description = "invalid patch or expression"),
        (status = 404, description = "unknown id")))]
async fn patch_schedule(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
    request: Result<Json<Value>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let ops = body(request)?;
    let schedules = state.schedules.clone();
    let tenant = context.tenant.clone();
    off_thread(move || schedules.patch(&tenant, &id, &ops, now_ms())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a schedule.
#[utoipa::path(delete, path = "/data/core/ups/config/schedules/{id}", tag = "segmentation",
    params(("id" = String, Path, description = "schedule id")),
    responses((status = 204, description = "deleted"), (status = 404, description = "unknown id")))]
async fn delete_schedule(
    State(state): State<AppState>,
    context: SandboxContext,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let schedules = state.schedules.clone();
    let tenant = context.tenant.clone();
    let schedule_id = id.clone();
    let deleted = off_thread(move || schedules.delete(&tenant, &schedule_id)).await?;
    if !deleted {
        return Err(ScheduleError::NotFound { id }.into());
    }
    Ok(StatusCode::NO_CONTENT)
}
