//! Segmentation schedules (AEP `/config/schedules`) and the scheduler that fires them.
//!
//! A schedule is a Quartz cron expression ([`crate::cron`], UTC) with a type:
//! `batch_segmentation` fires a segment job over its segments (`["*"]`: every segment);
//! `export` is stored and listed but not fired (an export job needs a destination dataset
//! and a field selection the schedule does not carry). AEP's rules are enforced at every
//! write: a `batch_segmentation` expression fires at most once per 24 hours (one second,
//! minute and hour value), and a sandbox holds at most one schedule of each type.
//!
//! Stored in `Table::Jobs`:
//! - `tenant, "schedule", id` → [`Schedule`];
//! - `tenant, "schedule-type", type` → the id holding that type, written under
//!   compare-and-set so two concurrent creates cannot both win;
//! - `system, "schedule-index", org, sandbox, id` → nothing, so the scheduler finds every
//!   schedule without scanning every tenant.
//!
//! Firing ([`Scheduler::tick`]): an active schedule is due when an occurrence lies after its
//! *anchor* (the later of its last fire and the instant it was activated or its expression
//! changed) and at or before now. The last fire time is saved (compare-and-set) *before* the
//! job is created, so a restart never fires the same occurrence twice; a crash between the
//! two loses that one run. Occurrences missed while the server was down collapse into one
//! catch-up run at start (recorded as the latest missed occurrence), so downtime costs at
//! most the runs in between, never a burst of jobs.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_model::Tenant;
use tessera_store::{Direction, Key, KeyReader, ScanRange, Scope, Store, Table, WriteBatch};
use time::OffsetDateTime;

use crate::cron::{Cron, CronError};
use crate::segment_jobs::{SegmentJobError, SegmentJobs};

/// `type` of a schedule that runs batch segmentation.
pub const BATCH_SEGMENTATION: &str = "batch_segmentation";
/// `type` of a schedule that runs a profile export (stored, not fired).
pub const EXPORT: &str = "export";
/// Expression used when a create names none (AEP generates one): daily at midnight UTC.
pub const DEFAULT_SCHEDULE: &str = "0 0 0 * * ?";
/// Longest wait of the scheduler between checks (it also wakes on every schedule change).
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Why a schedule operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// Creating the segment job failed.
    #[error(transparent)]
    Job(#[from] SegmentJobError),
    /// No such schedule.
    #[error("schedule {id} does not exist")]
    NotFound {
        /// Requested id.
        id: String,
    },
    /// The sandbox already has a schedule of this type.
    #[error("this sandbox already has a {kind} schedule ({existing}); change or delete it")]
    AlreadyExists {
        /// Type.
        kind: String,
        /// Id of the existing schedule.
        existing: String,
    },
    /// The expression is not valid Quartz cron.
    #[error("schedule: {0}")]
    Cron(#[from] CronError),
    /// A field is missing or wrong.
    #[error("{0}")]
    Invalid(String),
    /// A stored schedule does not decode.
    #[error("stored schedule is unreadable: {0}")]
    Corrupt(String),
}

type Result<T> = std::result::Result<T, ScheduleError>;

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Id (UUID).
    pub id: String,
    /// Organisation.
    pub org: String,
    /// Sandbox.
    pub sandbox: String,
    /// Display name.
    pub name: String,
    /// `batch_segmentation` or `export`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `{"segments": ["*"]}` and whatever else the client sent.
    pub properties: Value,
    /// Quartz cron, UTC.
    pub schedule: String,
    /// `active` or `inactive`.
    pub state: String,
    /// Created, seconds.
    pub create_epoch: i64,
    /// Created, ms (orders lists: several schedules are often made in one second).
    #[serde(default)]
    pub created_ms: i64,
    /// Last change, seconds.
    pub update_epoch: i64,
    /// Occurrences at or before this instant (ms) never fire: set when the schedule is
    /// activated or its expression changes, so that no past occurrence fires.
    pub anchor_ms: i64,
    /// The occurrence last fired (ms).
    #[serde(default)]
    pub last_fire_ms: Option<i64>,
}

impl Schedule {
    fn is_active(&self) -> bool {
        self.state == "active"
    }

    /// The segments a fire evaluates: `None` for every segment (`"*"`).
    fn segments(&self) -> Option<Vec<String>> {
        let ids: Vec<String> = self
            .properties
            .get("segments")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if ids.is_empty() || ids.iter().any(|id| id == "*") {
            None
        } else {
            Some(ids)
        }
    }

    fn base(&self) -> i64 {
        self.last_fire_ms
            .map_or(self.anchor_ms, |l| l.max(self.anchor_ms))
    }
}

fn at_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn ms_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The occurrence `schedule` should fire for at `now`, if any: the latest occurrence after
/// its anchor (or last fire) and at or before `now`. Pure, so the clock is the caller's.
pub fn due(schedule: &Schedule, cron: &Cron, now: OffsetDateTime) -> Option<OffsetDateTime> {
    if !schedule.is_active() || schedule.kind != BATCH_SEGMENTATION {
        return None;
    }
    cron.last_between(at_ms(schedule.base()), now)
}

/// When `schedule` fires next after `now` (for the scheduler's sleep and for clients).
pub fn next_fire(schedule: &Schedule, cron: &Cron, now: OffsetDateTime) -> Option<OffsetDateTime> {
    if !schedule.is_active() || schedule.kind != BATCH_SEGMENTATION {
        return None;
    }
    cron.next_after(at_ms(schedule.base()).max(now))
}

/// Parses `expression` and applies the rules of `kind`.
pub fn validate_cron(kind: &str, expression: &str, now: OffsetDateTime) -> Result<Cron> {
    let cron: Cron = expression.parse()?;
    if kind == BATCH_SEGMENTATION && cron.fires_per_day() > 1 {
        return Err(ScheduleError::Invalid(format!(
            "schedule: a batch_segmentation schedule may run at most once per 24 hours; \
             {expression:?} fires {} times a day (use one value for seconds, minutes and hours)",
            cron.fires_per_day()
        )));
    }
    if cron.next_after(now).is_none() {
        return Err(ScheduleError::Invalid(format!(
            "schedule: {expression:?} never fires again"
        )));
    }
    Ok(cron)
}

fn schedule_key(tenant: &Tenant, id: &str) -> Key {
    Key::tenant(tenant).str("schedule").str(id).finish()
}

fn schedule_prefix(tenant: &Tenant) -> Key {
    Key::tenant(tenant).str("schedule").finish()
}

fn type_key(tenant: &Tenant, kind: &str) -> Key {
    Key::tenant(tenant).str("schedule-type").str(kind).finish()
}

fn index_prefix() -> Key {
    Key::builder(&Scope::System).str("schedule-index").finish()
}

fn index_key(tenant: &Tenant, id: &str) -> Key {
    Key::extend(&index_prefix())
        .str(tenant.org.as_str())
        .str(tenant.sandbox.as_str())
        .str(id)
        .finish()
}

fn encode(schedule: &Schedule) -> Result<Vec<u8>> {
    serde_json::to_vec(schedule).map_err(|e| ScheduleError::Corrupt(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<Schedule> {
    serde_json::from_slice(bytes).map_err(|e| ScheduleError::Corrupt(e.to_string()))
}

fn string_field<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ScheduleError::Invalid(format!(
            "{field} must be a string, not {other}"
        ))),
    }
}

fn check_state(state: &str) -> Result<()> {
    match state {
        "active" | "inactive" => Ok(()),
        other => Err(ScheduleError::Invalid(format!(
            "state must be active or inactive, not {other:?}"
        ))),
    }
}

fn check_properties(kind: &str, properties: &Value) -> Result<()> {
    if !properties.is_object() {
        return Err(ScheduleError::Invalid(
            "properties is required: {\"segments\": [\"*\"]}".into(),
        ));
    }
    if kind != BATCH_SEGMENTATION {
        return Ok(());
    }
    match properties.get("segments") {
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            Ok(())
        }
        _ => Err(ScheduleError::Invalid(
            "properties.segments is required for batch_segmentation: [\"*\"] or segment ids".into(),
        )),
    }
}

/// The schedule service.
#[derive(Clone)]
pub struct Schedules {
    store: Arc<dyn Store>,
    kick: SyncSender<()>,
}

impl std::fmt::Debug for Schedules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedules").finish_non_exhaustive()
    }
}

impl Schedules {
    /// The service and the receiver its scheduler waits on (see [`spawn`]).
    pub fn new(store: Arc<dyn Store>) -> (Self, Receiver<()>) {
        let (kick, wake) = sync_channel(1);
        (Self { store, kick }, wake)
    }

    /// Creates a schedule from AEP's body `{name, type, properties, schedule?, state?}`.
    pub fn create(&self, tenant: &Tenant, body: &Value, now_ms: i64) -> Result<Schedule> {
        let name = string_field(body, "name")?
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| ScheduleError::Invalid("name is required".into()))?;
        let kind = string_field(body, "type")?.unwrap_or_default();
        if kind != BATCH_SEGMENTATION && kind != EXPORT {
            return Err(ScheduleError::Invalid(format!(
                "type must be batch_segmentation or export, not {kind:?}"
            )));
        }
        let properties = body.get("properties").cloned().unwrap_or(Value::Null);
        check_properties(kind, &properties)?;
        let expression = string_field(body, "schedule")?.unwrap_or(DEFAULT_SCHEDULE);
        validate_cron(kind, expression, at_ms(now_ms))?;
        let state = string_field(body, "state")?.unwrap_or("inactive");
        check_state(state)?;
        let schedule = Schedule {
            id: uuid::Uuid::new_v4().to_string(),
            org: tenant.org.to_string(),
            sandbox: tenant.sandbox.to_string(),
            name: name.to_owned(),
            kind: kind.to_owned(),
            properties,
            schedule: expression.to_owned(),
            state: state.to_owned(),
            create_epoch: now_ms / 1000,
            created_ms: now_ms,
            update_epoch: now_ms / 1000,
            anchor_ms: now_ms,
            last_fire_ms: None,
        };
        let slot = type_key(tenant, kind);
        if let Some(existing) = self.store.get(Table::Jobs, &slot)? {
            return Err(ScheduleError::AlreadyExists {
                kind: kind.to_owned(),
                existing: String::from_utf8_lossy(&existing).into_owned(),
            });
        }
        let mut batch = WriteBatch::new();
        batch
            .expect(Table::Jobs, &slot, None)
            .put(Table::Jobs, &slot, schedule.id.as_bytes().to_vec())
            .put(
                Table::Jobs,
                &schedule_key(tenant, &schedule.id),
                encode(&schedule)?,
            )
            .put(Table::Jobs, &index_key(tenant, &schedule.id), Vec::new());
        match self.store.commit(batch) {
            Ok(_) => {}
            // Another create took the slot between the read and the commit.
            Err(tessera_store::Error::Conflict { .. }) => {
                let existing = self
                    .store
                    .get(Table::Jobs, &slot)?
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                return Err(ScheduleError::AlreadyExists {
                    kind: kind.to_owned(),
                    existing,
                });
            }
            Err(other) => return Err(other.into()),
        }
        tracing::info!(schedule = %schedule.id, kind, state, "schedule created");
        let _ = self.kick.try_send(());
        Ok(schedule)
    }

    /// One schedule.
    pub fn get(&self, tenant: &Tenant, id: &str) -> Result<Schedule> {
        match self.store.get(Table::Jobs, &schedule_key(tenant, id))? {
            Some(bytes) => decode(&bytes),
            None => Err(ScheduleError::NotFound { id: id.to_owned() }),
        }
    }

    /// Every schedule of the sandbox, oldest first.
    pub fn list(&self, tenant: &Tenant) -> Result<Vec<Schedule>> {
        let mut all =
            crate::job_worker::read_all(self.store.as_ref(), schedule_prefix(tenant), decode)?;
        all.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(all)
    }

    /// Applies a JSON Patch (`add` / `replace` of `/state`, `/schedule`, `/name`,
    /// `/properties`); all operations or none.
    pub fn patch(&self, tenant: &Tenant, id: &str, ops: &Value, now_ms: i64) -> Result<Schedule> {
        let Some(ops) = ops.as_array() else {
            return Err(ScheduleError::Invalid(
                "expected a JSON Patch array: [{\"op\": \"add\", \"path\": \"/state\", \"value\": \"active\"}]".into(),
            ));
        };
        loop {
            let key = schedule_key(tenant, id);
            let Some(bytes) = self.store.get(Table::Jobs, &key)? else {
                return Err(ScheduleError::NotFound { id: id.to_owned() });
            };
            let mut schedule = decode(&bytes)?;
            let before = schedule.clone();
            for (index, op) in ops.iter().enumerate() {
                let verb = op.get("op").and_then(Value::as_str).unwrap_or_default();
                if verb != "add" && verb != "replace" {
                    return Err(ScheduleError::Invalid(format!(
                        "operation {index}: op must be add or replace, not {verb:?}"
                    )));
                }
                let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
                let value = op.get("value").cloned().unwrap_or(Value::Null);
                let text = || {
                    value.as_str().map(str::to_owned).ok_or_else(|| {
                        ScheduleError::Invalid(format!("operation {index}: {path} takes a string"))
                    })
                };
                match path {
                    "/state" => {
                        let state = text()?;
                        check_state(&state)?;
                        schedule.state = state;
                    }
                    "/schedule" => schedule.schedule = text()?,
                    "/name" => schedule.name = text()?,
                    "/properties" => {
                        check_properties(&schedule.kind, &value)?;
                        schedule.properties = value;
                    }
                    other => {
                        return Err(ScheduleError::Invalid(format!(
                            "operation {index}: path {other:?} cannot be changed; use /state, /schedule, /name or /properties"
                        )))
                    }
                }
            }
            validate_cron(&schedule.kind, &schedule.schedule, at_ms(now_ms))?;
            // Activation or a new expression starts counting from now: no past occurrence
            // fires because of the change.
            if (schedule.is_active() && !before.is_active()) || schedule.schedule != before.schedule
            {
                schedule.anchor_ms = now_ms;
            }
            schedule.update_epoch = now_ms / 1000;
            let mut batch = WriteBatch::new();
            batch
                .expect(Table::Jobs, &key, Some(bytes))
                .put(Table::Jobs, &key, encode(&schedule)?);
            match self.store.commit(batch) {
                Ok(_) => {
                    let _ = self.kick.try_send(());
                    return Ok(schedule);
                }
                Err(tessera_store::Error::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Deletes a schedule; `false` when there was none.
    pub fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool> {
        let key = schedule_key(tenant, id);
        let Some(bytes) = self.store.get(Table::Jobs, &key)? else {
            return Ok(false);
        };
        let schedule = decode(&bytes)?;
        let mut batch = WriteBatch::new();
        batch
            .delete(Table::Jobs, &key)
            .delete(Table::Jobs, &index_key(tenant, id))
            .delete(Table::Jobs, &type_key(tenant, &schedule.kind));
        self.store.commit(batch)?;
        let _ = self.kick.try_send(());
        Ok(true)
    }

    /// The scheduler firing this service's schedules into `jobs`.
    pub fn scheduler(&self, jobs: SegmentJobs) -> Scheduler {
        Scheduler {
            store: Arc::clone(&self.store),
            jobs,
        }
    }
}

/// One fired occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// Schedule id.
    pub schedule: String,
    /// The occurrence (ms).
    pub occurrence_ms: i64,
    /// The segment job created.
    pub job: String,
}

/// Fires due schedules; the clock is passed in.
#[derive(Clone)]
pub struct Scheduler {
    store: Arc<dyn Store>,
    jobs: SegmentJobs,
}

impl Scheduler {
    fn all(&self) -> Result<Vec<(Tenant, Vec<u8>, Schedule)>> {
        let rows = self.store.scan(
            Table::Jobs,
            &ScanRange::prefix(index_prefix()),
            Direction::Forward,
            100_000,
        )?;
        let prefix_len = index_prefix().as_bytes().len();
        let mut found = Vec::new();
        for row in rows {
            let Some(rest) = row.key.get(prefix_len..) else {
                continue;
            };
            let mut reader = KeyReader::new(rest);
            let (org, sandbox, id) = (reader.string()?, reader.string()?, reader.string()?);
            let Ok(tenant) = Tenant::parse(&org, &sandbox) else {
                continue;
            };
            if let Some(bytes) = self.store.get(Table::Jobs, &schedule_key(&tenant, &id))? {
                let schedule = decode(&bytes)?;
                found.push((tenant, bytes, schedule));
            }
        }
        Ok(found)
    }

    /// Fires every schedule due at `now`: records the occurrence, then creates the job.
    pub fn tick(&self, now: OffsetDateTime) -> Result<Vec<Fired>> {
        let mut fired = Vec::new();
        for (tenant, bytes, schedule) in self.all()? {
            // Stored expressions were validated on write; one that no longer parses is
            // skipped, not allowed to stop the others.
            let Ok(cron) = schedule.schedule.parse::<Cron>() else {
                tracing::warn!(schedule = %schedule.id, "stored schedule expression does not parse; skipped");
                continue;
            };
            let Some(occurrence) = due(&schedule, &cron, now) else {
                continue;
            };
            let occurrence_ms = ms_of(occurrence);
            let mut next = schedule.clone();
            next.last_fire_ms = Some(occurrence_ms);
            let key = schedule_key(&tenant, &schedule.id);
            let mut batch = WriteBatch::new();
            batch
                .expect(Table::Jobs, &key, Some(bytes))
                .put(Table::Jobs, &key, encode(&next)?);
            match self.store.commit(batch) {
                Ok(_) => {}
                // Changed meanwhile (patched, deleted, or fired by another node): the next
                // tick sees the new version.
                Err(tessera_store::Error::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
            let job = match self.jobs.create_from_schedule(&tenant, schedule.segments()) {
                Ok(job) => job,
                // E.g. a listed segment was deleted: the occurrence is spent (recorded above);
                // the other schedules still fire.
                Err(error) => {
                    tracing::warn!(schedule = %schedule.id, %error, "scheduled segment job refused");
                    continue;
                }
            };
            tracing::info!(schedule = %schedule.id, job = %job.id, occurrence_ms, "schedule fired");
            fired.push(Fired {
                schedule: schedule.id,
                occurrence_ms,
                job: job.id,
            });
        }
        Ok(fired)
    }

    /// The earliest next occurrence of any active schedule after `now`.
    pub fn next_wakeup(&self, now: OffsetDateTime) -> Result<Option<OffsetDateTime>> {
        Ok(self
            .all()?
            .iter()
            .filter_map(|(_, _, s)| {
                let cron = s.schedule.parse::<Cron>().ok()?;
                next_fire(s, &cron, now)
            })
            .min())
    }
}

/// Starts the scheduler thread: it fires due schedules, then sleeps until the next
/// occurrence (at most a minute, and less when a schedule changes); it ends when every
/// [`Schedules`] handle is dropped.
pub fn spawn(
    scheduler: Scheduler,
    wake: Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tessera-scheduler".into())
        .spawn(move || loop {
            let now = OffsetDateTime::now_utc();
            if let Err(error) = scheduler.tick(now) {
                tracing::warn!(%error, "scheduler pass failed; will retry");
            }
            let sleep = match scheduler.next_wakeup(OffsetDateTime::now_utc()) {
                Ok(Some(next)) => {
                    let until = next - OffsetDateTime::now_utc();
                    Duration::try_from(until)
                        .unwrap_or(Duration::ZERO)
                        .min(MAX_SLEEP)
                }
                Ok(None) | Err(_) => MAX_SLEEP,
            };
            match wake.recv_timeout(sleep) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn schedule(state: &str, anchor: OffsetDateTime, last: Option<OffsetDateTime>) -> Schedule {
        Schedule {
            id: "s".into(),
            org: "o".into(),
            sandbox: "prod".into(),
            name: "n".into(),
            kind: BATCH_SEGMENTATION.into(),
            properties: serde_json::json!({"segments": ["*"]}),
            schedule: "0 0 1 * * ?".into(),
            state: state.into(),
            create_epoch: 0,
            created_ms: 0,
            update_epoch: 0,
            anchor_ms: ms_of(anchor),
            last_fire_ms: last.map(ms_of),
        }
    }

    #[test]
    fn due_only_after_the_anchor_and_once_per_occurrence() {
        let cron: Cron = "0 0 1 * * ?".parse().unwrap();
        let s = schedule("active", datetime!(2025-03-01 00:30 UTC), None);
        assert_eq!(due(&s, &cron, datetime!(2025-03-01 00:59:59 UTC)), None);
        assert_eq!(
            due(&s, &cron, datetime!(2025-03-01 01:00 UTC)),
            Some(datetime!(2025-03-01 01:00 UTC))
        );
        let fired = schedule(
            "active",
            datetime!(2025-03-01 00:30 UTC),
            Some(datetime!(2025-03-01 01:00 UTC)),
        );
        assert_eq!(
            due(&fired, &cron, datetime!(2025-03-01 18:00 UTC)),
            None,
            "no double fire"
        );
        assert_eq!(
            next_fire(&fired, &cron, datetime!(2025-03-01 18:00 UTC)),
            Some(datetime!(2025-03-02 01:00 UTC))
        );
    }

    #[test]
    fn missed_occurrences_collapse_into_one_catch_up() {
        let cron: Cron = "0 0 1 * * ?".parse().unwrap();
        let s = schedule(
            "active",
            datetime!(2025-03-01 00:30 UTC),
            Some(datetime!(2025-03-01 01:00 UTC)),
        );
        assert_eq!(
            due(&s, &cron, datetime!(2025-03-05 09:00 UTC)),
            Some(datetime!(2025-03-05 01:00 UTC))
        );
    }

    #[test]
    fn inactive_and_export_schedules_never_fire() {
        let cron: Cron = "0 0 1 * * ?".parse().unwrap();
        let s = schedule("inactive", datetime!(2025-03-01 00:30 UTC), None);
        assert_eq!(due(&s, &cron, datetime!(2025-03-09 00:00 UTC)), None);
        let mut export = schedule("active", datetime!(2025-03-01 00:30 UTC), None);
        export.kind = EXPORT.into();
        assert_eq!(due(&export, &cron, datetime!(2025-03-09 00:00 UTC)), None);
    }

    #[test]
    fn the_24_hour_rule() {
        let now = datetime!(2025-03-01 00:00 UTC);
        assert!(validate_cron(BATCH_SEGMENTATION, "0 0 1 * * ?", now).is_ok());
        assert!(validate_cron(BATCH_SEGMENTATION, "0 30 2 ? * MON", now).is_ok());
        let hourly = validate_cron(BATCH_SEGMENTATION, "0 0 * * * ?", now)
            .unwrap_err()
            .to_string();
        assert!(hourly.contains("at most once per 24 hours"), "{hourly}");
        assert!(hourly.contains("24 times a day"), "{hourly}");
        assert!(validate_cron(BATCH_SEGMENTATION, "0 0 1,13 * * ?", now).is_err());
        assert!(
            validate_cron(EXPORT, "0 0 * * * ?", now).is_ok(),
            "the rule is batch segmentation's"
        );
        let past = validate_cron(BATCH_SEGMENTATION, "0 0 1 * * ? 2020", now)
            .unwrap_err()
            .to_string();
        assert!(past.contains("never fires"), "{past}");
    }
}
