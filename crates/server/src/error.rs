//! The one place where errors become HTTP responses.
//!
//! Every crate's error converts into [`ApiError`] here (`From` impls below), and
//! [`ApiError`] alone decides the status code and the body shape. AEP uses several error
//! envelopes (see the reference's §11.2); each variant renders the one its area uses:
//! - gateway errors (headers, credentials): `{"error_code": "...", "message": "..."}`;
//! - service errors: problem details `{"type", "status", "title", "detail", "report"?}` with a
//!   stable Tessera code in `type` (`/errors/{CODE}`) and repeated as `code`.
//!
//! A 500 logs its cause once, here, and tells the client nothing about internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Stable, documented error codes. Clients may match on them; never reuse or renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request body is not valid JSON or not the expected shape.
    MalformedBody,
    /// A field value is invalid.
    InvalidField,
    /// The named resource does not exist.
    NotFound,
    /// The resource already exists.
    AlreadyExists,
    /// The operation is not allowed in the resource's current state.
    InvalidState,
    /// The caller's key lacks the role or sandbox this request needs.
    Forbidden,
    /// The sandbox named by `x-sandbox-name` does not exist (or was deleted) in the org.
    UnknownSandbox,
    /// A concurrent change won; the client may retry.
    Conflict,
    /// The store refuses writes after a failed fsync; restart required.
    StoreUnavailable,
    /// Anything unexpected; details are in the server log under the request id.
    Internal,
}

impl ErrorCode {
    /// The code as sent to clients.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedBody => "TSR-1001-400",
            ErrorCode::InvalidField => "TSR-1002-400",
            ErrorCode::UnknownSandbox => "TSR-1003-400",
            ErrorCode::Forbidden => "TSR-1101-403",
            ErrorCode::NotFound => "TSR-1201-404",
            ErrorCode::AlreadyExists => "TSR-1301-409",
            ErrorCode::InvalidState => "TSR-1302-409",
            ErrorCode::Conflict => "TSR-1303-409",
            ErrorCode::Internal => "TSR-1501-500",
            ErrorCode::StoreUnavailable => "TSR-1503-503",
        }
    }

    /// The HTTP status this code is always sent with.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::MalformedBody | ErrorCode::InvalidField | ErrorCode::UnknownSandbox => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::AlreadyExists | ErrorCode::InvalidState | ErrorCode::Conflict => {
                StatusCode::CONFLICT
            }
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    const fn title(self) -> &'static str {
        match self {
            ErrorCode::MalformedBody => "Malformed request body",
            ErrorCode::InvalidField => "Invalid field value",
            ErrorCode::UnknownSandbox => "Unknown sandbox",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::NotFound => "Not found",
            ErrorCode::AlreadyExists => "Already exists",
            ErrorCode::InvalidState => "Invalid state",
            ErrorCode::Conflict => "Concurrent modification",
            ErrorCode::Internal => "Internal error",
            ErrorCode::StoreUnavailable => "Store unavailable",
        }
    }
}

/// Gateway-level failures: AEP answers these before any service sees the request, with
/// its own `{error_code, message}` envelope and codes, which clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    /// `x-gw-ims-org-id` (or `x-sandbox-name` on a sandbox route) is missing or invalid.
    MissingHeader(&'static str),
    /// No `Authorization: Bearer` token while keys are configured.
    TokenMissing,
    /// The token does not match the key.
    TokenInvalid,
    /// No `x-api-key` while keys are configured.
    ApiKeyMissing,
    /// The `x-api-key` names no configured key.
    ApiKeyInvalid,
    /// The key holds no grant for the organisation.
    OrgNotEntitled,
}

impl GatewayError {
    fn parts(self) -> (StatusCode, &'static str, String) {
        match self {
            // 401 for every failure to establish who is calling; AEP's own error codes are
            // kept in the body so clients that match on them keep working.
            GatewayError::TokenMissing => (
                StatusCode::UNAUTHORIZED,
                "403010",
                "Oauth token is missing.".into(),
            ),
            GatewayError::TokenInvalid => (
                StatusCode::UNAUTHORIZED,
                "401013",
                "Oauth token is not valid".into(),
            ),
            GatewayError::ApiKeyMissing => (
                StatusCode::UNAUTHORIZED,
                "403000",
                "Api Key is required".into(),
            ),
            GatewayError::ApiKeyInvalid => (
                StatusCode::UNAUTHORIZED,
                "403003",
                "Api Key is invalid".into(),
            ),
            GatewayError::OrgNotEntitled => (
                StatusCode::FORBIDDEN,
                "403025",
                "Profile is not valid".into(),
            ),
            GatewayError::MissingHeader(header) => (
                StatusCode::BAD_REQUEST,
                "400003",
                format!("Missing header: {header}"),
            ),
        }
    }
}

/// An error on its way to the client.
#[derive(Debug)]
pub enum ApiError {
    /// Rendered in AEP's gateway envelope.
    Gateway(GatewayError),
    /// A streamed record refused by validation, rendered in DCS's inlet problem shape.
    Rejected {
        /// Inlet the message came through.
        inlet_id: String,
        /// Organisation of the inlet.
        org: String,
        /// Why.
        rejection: tessera_ingest::Rejection,
    },
    /// The namespace API's own problem shape
    /// (`{timestamp, type, status, error, title, description, report: {code}}`).
    Namespace {
        /// HTTP status.
        status: StatusCode,
        /// AEP's error name, e.g. `NAMESPACE_NOT_FOUND` (also the problem's title).
        error: &'static str,
        /// `report.code`, e.g. `INTEGRATION_CODE_EXISTS`.
        report: &'static str,
        /// Explanation.
        description: String,
    },
    /// The Profile API's error shape (`{message, statusCode: "<string>"}`).
    Profile {
        /// HTTP status.
        status: StatusCode,
        /// Explanation.
        message: String,
    },
    /// The identity API's problem shape (`{title, status, detail}`), e.g. `InvalidInput`.
    Identity {
        /// HTTP status.
        status: StatusCode,
        /// AEP's title, e.g. `InvalidInput`.
        title: &'static str,
        /// Explanation.
        detail: String,
    },
    /// Rendered as problem details.
    Problem {
        /// Stable code (decides the status).
        code: ErrorCode,
        /// Human-readable explanation, safe to show the caller.
        detail: String,
        /// Structured facts (field path, record index...), when there are any.
        report: Option<Value>,
    },
}

impl ApiError {
    /// A problem with a detail message.
    pub fn problem(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError::Problem {
            code,
            detail: detail.into(),
            report: None,
        }
    }

    /// The status this error will be sent with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Gateway(gateway) => gateway.parts().0,
            ApiError::Rejected { .. } => StatusCode::BAD_REQUEST,
            ApiError::Namespace { status, .. }
            | ApiError::Identity { status, .. }
            | ApiError::Profile { status, .. } => *status,
            ApiError::Problem { code, .. } => code.status(),
        }
    }

    fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed with an internal error");
        Self::problem(
            ErrorCode::Internal,
            "the request failed; the server log has the cause under this request's x-request-id",
        )
    }
}

impl From<GatewayError> for ApiError {
    fn from(error: GatewayError) -> Self {
        ApiError::Gateway(error)
    }
}

impl From<tessera_store::Error> for ApiError {
    fn from(error: tessera_store::Error) -> Self {
        use tessera_store::Error as E;
        match error {
            E::Poisoned => {
                tracing::error!("write refused: store poisoned by an earlier failed fsync");
                Self::problem(
                    ErrorCode::StoreUnavailable,
                    "the store refuses writes after a failed disk sync; the server must be restarted",
                )
            }
            E::Conflict { .. } => Self::problem(
                ErrorCode::Conflict,
                "the resource was changed by a concurrent request; retry",
            ),
            other @ (E::Engine(_) | E::MalformedKey { .. } | E::UnsupportedFormat { .. }) => {
                Self::internal(&other)
            }
        }
    }
}

impl From<tessera_model::Error> for ApiError {
    fn from(error: tessera_model::Error) -> Self {
        Self::problem(ErrorCode::InvalidField, error.to_string())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::internal(&error)
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        Self::problem(ErrorCode::MalformedBody, rejection.body_text())
    }
}

impl From<tessera_identity::namespace::NamespaceProblem> for ApiError {
    fn from(problem: tessera_identity::namespace::NamespaceProblem) -> Self {
        use tessera_identity::namespace::NamespaceProblem as P;
        let (status, error, report, description) = match problem {
            P::Invalid(detail) => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST_PARAMS",
                "INVALID_REQUEST_PARAMS",
                detail,
            ),
            // AEP's documented 409 for a taken code.
            P::CodeTaken => (
                StatusCode::CONFLICT,
                "NAMESPACE_CODE_CONFLICT",
                "INTEGRATION_CODE_EXISTS",
                "Namespace code already exists. Please use a different code".to_owned(),
            ),
            // Undocumented; named after the code conflict.
            P::NameTaken => (
                StatusCode::CONFLICT,
                "NAMESPACE_NAME_CONFLICT",
                "INTEGRATION_NAME_EXISTS",
                "Namespace name already exists. Please use a different name".to_owned(),
            ),
            P::NotFound(id) => (
                StatusCode::NOT_FOUND,
                "NAMESPACE_NOT_FOUND",
                "NAMESPACE_NOT_FOUND",
                format!("Namespace id {id} not found for this sandbox"),
            ),
            P::Standard(id) => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST_PARAMS",
                "INVALID_REQUEST_PARAMS",
                format!("namespace {id} is a standard namespace and cannot be changed"),
            ),
        };
        ApiError::Namespace {
            status,
            error,
            report,
            description,
        }
    }
}

impl From<tessera_identity::Error> for ApiError {
    fn from(error: tessera_identity::Error) -> Self {
        match error {
            tessera_identity::Error::Store(store) => store.into(),
            tessera_identity::Error::InvalidXid(xid) => ApiError::Identity {
                status: StatusCode::BAD_REQUEST,
                title: "InvalidInput",
                detail: format!("The provided xid={xid} is invalid. Please provide a valid xid in your request."),
            },
            other @ tessera_identity::Error::Corrupt { .. } => Self::internal(&other),
        }
    }
}

/// Profile reads answer in the Profile API's envelope: a bad filter or cursor is the
/// caller's to fix (400); a store failure keeps its own mapping; an unreadable stored
/// document is ours (500, logged).
impl From<tessera_profile::Error> for ApiError {
    fn from(error: tessera_profile::Error) -> Self {
        use tessera_profile::Error as E;
        match error {
            E::Store(store) => store.into(),
            E::Identity(identity) => identity.into(),
            E::InvalidPolicy(message) => ApiError::Profile {
                status: StatusCode::BAD_REQUEST,
                message,
            },
            E::Conflict => ApiError::Profile {
                status: StatusCode::CONFLICT,
                message: error.to_string(),
            },
            E::InvalidFilter { .. } | E::TooManyFilters { .. } | E::InvalidCursor { .. } => {
                ApiError::Profile {
                    status: StatusCode::BAD_REQUEST,
                    message: error.to_string(),
                }
            }
            other @ E::Corrupt { .. } => Self::internal(&other),
        }
    }
}

/// Segment jobs answer in the Profile API's error shape, as AEP's segmentation service does.
impl From<crate::segment_jobs::SegmentJobError> for ApiError {
    fn from(error: crate::segment_jobs::SegmentJobError) -> Self {
        use crate::segment_jobs::SegmentJobError as E;
        match error {
            E::Store(store) => store.into(),
            E::Profile(profile) => profile.into(),
            E::NotFound { .. } => ApiError::Profile {
                status: StatusCode::NOT_FOUND,
                message: error.to_string(),
            },
            E::Invalid(message) => ApiError::Profile {
                status: StatusCode::BAD_REQUEST,
                message,
            },
            E::Segment(tessera_segment::Error::Invalid { message, .. }) => ApiError::Profile {
                status: StatusCode::BAD_REQUEST,
                message,
            },
            other @ (E::Segment(_) | E::Corrupt(_)) => Self::internal(&other),
        }
    }
}

/// Previews and estimates answer in the Profile API's error shape (they are UPS routes).
impl From<crate::previews::PreviewError> for ApiError {
    fn from(error: crate::previews::PreviewError) -> Self {
        use crate::previews::PreviewError as E;
        let status = match error {
            E::NotFound { .. } => StatusCode::NOT_FOUND,
            E::Invalid(_) => StatusCode::BAD_REQUEST,
            // A capacity limit the client can wait out, not a fault of the request.
            E::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        ApiError::Profile {
            status,
            message: error.to_string(),
        }
    }
}

/// Schedules answer in the Profile API's error shape: invalid bodies and cron expressions
/// (including the once-a-day rule) are 400 with the reason; a second schedule of a type in
/// a sandbox is 409 (valid request, current state forbids it).
impl From<crate::schedules::ScheduleError> for ApiError {
    fn from(error: crate::schedules::ScheduleError) -> Self {
        use crate::schedules::ScheduleError as E;
        let profile = |status: StatusCode, message: String| ApiError::Profile { status, message };
        match error {
            E::Store(store) => store.into(),
            E::Job(job) => job.into(),
            E::NotFound { .. } => profile(StatusCode::NOT_FOUND, error.to_string()),
            E::AlreadyExists { .. } => profile(StatusCode::CONFLICT, error.to_string()),
            E::Cron(_) | E::Invalid(_) => profile(StatusCode::BAD_REQUEST, error.to_string()),
            other @ E::Corrupt(_) => Self::internal(&other),
        }
    }
}

/// System jobs answer in the Profile API's error shape, as AEP's `/system/jobs` does.
impl From<crate::system_jobs::JobError> for ApiError {
    fn from(error: crate::system_jobs::JobError) -> Self {
        use crate::system_jobs::JobError as E;
        match error {
            E::Store(store) => store.into(),
            E::Profile(profile) => profile.into(),
            E::NotFound { .. } => ApiError::Profile {
                status: StatusCode::NOT_FOUND,
                message: error.to_string(),
            },
            // AEP documents 422 for "a job for this dataset or batch already exists".
            E::AlreadyExists { .. } => ApiError::Profile {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: error.to_string(),
            },
            other @ (E::Corrupt(_) | E::Unsupported { .. }) => Self::internal(&other),
        }
    }
}

/// Export jobs answer in the Profile API's error shape, as AEP's `/export/jobs` does.
impl From<crate::export_jobs::ExportError> for ApiError {
    fn from(error: crate::export_jobs::ExportError) -> Self {
        use crate::export_jobs::ExportError as E;
        match error {
            E::Store(store) => store.into(),
            E::Profile(profile) => profile.into(),
            E::NotFound { .. } | E::BatchNotFound { .. } => ApiError::Profile {
                status: StatusCode::NOT_FOUND,
                message: error.to_string(),
            },
            // The request is incomplete whatever the job's state: it must say which file.
            E::BatchRequired { .. } => ApiError::Profile {
                status: StatusCode::BAD_REQUEST,
                message: error.to_string(),
            },
            // The job exists; its file does not yet (or never will): a state conflict, not
            // a missing resource.
            E::NotReady { .. } | E::Contended { .. } => ApiError::Profile {
                status: StatusCode::CONFLICT,
                message: error.to_string(),
            },
            other @ (E::Corrupt(_) | E::File { .. }) => Self::internal(&other),
        }
    }
}

/// Segment definitions answer in the Profile API's envelope (`/segment/definitions` is a
/// UPS route). A definition that is wrong in itself — syntax, types, unknown `inSegment`
/// target, a dependency cycle, an unknown merge policy — is 400 with the field in the
/// message; deleting a definition others read is 409 (the request is valid, the current
/// state forbids it), as a schema still used by a dataset is.
impl From<tessera_segment::Error> for ApiError {
    fn from(error: tessera_segment::Error) -> Self {
        use tessera_segment::Error as E;
        let profile = |status: StatusCode, message: String| ApiError::Profile { status, message };
        match error {
            E::Store(store) => store.into(),
            E::Profile(profile_error) => profile_error.into(),
            E::Identity(identity) => identity.into(),
            E::Ingest(ingest) => ingest.into(),
            E::Invalid { field, message } if field.is_empty() => {
                profile(StatusCode::BAD_REQUEST, message)
            }
            E::Invalid { field, message } => {
                profile(StatusCode::BAD_REQUEST, format!("{field}: {message}"))
            }
            E::UnknownDependency { .. } | E::Cycle { .. } => profile(
                StatusCode::BAD_REQUEST,
                format!("expression.value: {error}"),
            ),
            E::NotFound(_) | E::AttributeNotFound(_) => {
                profile(StatusCode::NOT_FOUND, error.to_string())
            }
            // A status change the lifecycle forbids is a bad request (AEP answers 400);
            // deleting a non-draft is refused by the current state, like a schema in use.
            E::Transition { .. } => profile(StatusCode::BAD_REQUEST, error.to_string()),
            E::NotDeletable { .. } => profile(StatusCode::CONFLICT, error.to_string()),
            E::InUse { .. } | E::Conflict => profile(StatusCode::CONFLICT, error.to_string()),
            other @ E::Corrupt { .. } => Self::internal(&other),
        }
    }
}

impl From<tessera_ingest::Error> for ApiError {
    fn from(error: tessera_ingest::Error) -> Self {
        use tessera_ingest::Error as E;
        match error {
            E::Store(store) => store.into(),
            E::Profile(tessera_profile::Error::Store(store)) => store.into(),
            E::Identity(identity) => identity.into(),
            E::Schema(schema) => schema.into(),
            E::DatasetNotFound { .. } | E::BatchNotFound { .. } | E::InletNotFound { .. } => {
                Self::problem(ErrorCode::NotFound, error.to_string())
            }
            E::Invalid { ref field, .. } => ApiError::Problem {
                code: ErrorCode::InvalidField,
                report: Some(json!({ "field": field })),
                detail: error.to_string(),
            },
            E::AlreadyExists { .. } => Self::problem(ErrorCode::AlreadyExists, error.to_string()),
            E::InvalidState(detail) => Self::problem(ErrorCode::InvalidState, detail),
            other @ (E::Corrupt { .. } | E::Profile(_)) => Self::internal(&other),
        }
    }
}

/// DCS's description of one refused message: the problem list in the JSON-schema-validator
/// style AEP clients parse (`_streamingValidation[].causingExceptions[]`), plus Tessera's
/// stable code on each entry.
pub fn streaming_validation(rejection: &tessera_ingest::Rejection) -> Value {
    let causes: Vec<Value> = rejection
        .problems
        .iter()
        .map(|p| {
            json!({
                "schemaLocation": "#",
                "pointerToViolation": format!("#{}", p.path),
                "causingExceptions": [],
                "keyword": p.code,
                "message": p.message,
            })
        })
        .collect();
    json!({
        "_streamingValidation": [{
            "schemaLocation": "#",
            "pointerToViolation": "#",
            "message": rejection.message,
            "code": rejection.code.as_str(),
            "causingExceptions": causes,
        }]
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Gateway(gateway) => {
                let (status, code, message) = gateway.parts();
                (
                    status,
                    Json(json!({ "error_code": code, "message": message })),
                )
                    .into_response()
            }
            ApiError::Namespace {
                status,
                error,
                report,
                description,
            } => {
                let body = json!({
                    "timestamp": time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    "type": "http://ns.adobe.com/adobecloud/problem/namespacevalidation",
                    "status": status.as_u16(),
                    "error": error,
                    "title": error,
                    "description": description,
                    "report": { "code": report },
                });
                (status, Json(body)).into_response()
            }
            ApiError::Profile { status, message } => (
                status,
                Json(json!({ "message": message, "statusCode": status.as_u16().to_string() })),
            )
                .into_response(),
            ApiError::Identity {
                status,
                title,
                detail,
            } => (
                status,
                Json(json!({ "title": title, "status": status.as_u16(), "detail": detail })),
            )
                .into_response(),
            ApiError::Rejected {
                inlet_id,
                org,
                rejection,
            } => {
                let body = json!({
                    "type": "http://ns.adobe.com/adobecloud/problem/data-collection-service/inlet",
                    "status": 400,
                    "title": "Invalid XDM Message Format",
                    "code": rejection.code.as_str(),
                    "report": {
                        "message": format!("inletId: [{inlet_id}] imsOrgId: [{org}] Message is invalid: {}", rejection.message),
                        "cause": streaming_validation(&rejection),
                    },
                });
                (StatusCode::BAD_REQUEST, Json(body)).into_response()
            }
            ApiError::Problem {
                code,
                detail,
                report,
            } => {
                let mut body = json!({
                    "type": format!("/errors/{}", code.as_str()),
                    "status": code.status().as_u16(),
                    "title": code.title(),
                    "detail": detail,
                    "code": code.as_str(),
                });
                if let (Some(report), Some(object)) = (report, body.as_object_mut()) {
                    object.insert("report".into(), report);
                }
                (code.status(), Json(body)).into_response()
            }
        }
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// Schema registry errors: 404 for unknown resources; 400 (`InvalidField`) for documents
/// that are wrong in themselves, with the JSON pointer in `report.path`; 409 for changes
/// the current state forbids (`InvalidState`: union conflicts naming both schemas, a schema
/// still used by a dataset, the immutable `union` tag) and for existing titles or fields.
impl From<tessera_schema::Error> for ApiError {
    fn from(error: tessera_schema::Error) -> Self {
        use tessera_schema::Error as E;
        let detail = error.to_string();
        let (code, report) = match error {
            E::NotFound { kind, id } => (ErrorCode::NotFound, json!({"kind": kind, "id": id})),
            E::AlreadyExists { kind, id } => {
                (ErrorCode::AlreadyExists, json!({"kind": kind, "id": id}))
            }
            E::InvalidSchema { path, .. } | E::InvalidDescriptor { path, .. } => {
                (ErrorCode::InvalidField, json!({"path": path}))
            }
            E::InvalidPatch {
                index, op, path, ..
            } => (
                ErrorCode::InvalidField,
                json!({"operation": index, "op": op, "path": path}),
            ),
            E::FieldConflict {
                path,
                first,
                first_type,
                second,
                second_type,
            } => (
                ErrorCode::InvalidField,
                json!({"path": path, "definedBy": [
                    {"id": first, "type": first_type}, {"id": second, "type": second_type}]}),
            ),
            E::UnionConflict(conflict) => (
                ErrorCode::InvalidState,
                json!({"class": conflict.class, "path": conflict.path, "schemas": [
                    {"$id": conflict.existing, "type": conflict.existing_type},
                    {"$id": conflict.incoming, "type": conflict.incoming_type}]}),
            ),
            E::InUse { id } => (ErrorCode::InvalidState, json!({"$id": id})),
            E::InvalidState(_) => (ErrorCode::InvalidState, Value::Null),
            E::Store(store) => return Self::from(store),
            corrupt @ E::Corrupt { .. } => return Self::internal(&corrupt),
        };
        ApiError::Problem {
            code,
            detail,
            report: (!report.is_null()).then_some(report),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_carry_their_status() {
        let all = [
            ErrorCode::MalformedBody,
            ErrorCode::InvalidField,
            ErrorCode::UnknownSandbox,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::AlreadyExists,
            ErrorCode::InvalidState,
            ErrorCode::Conflict,
            ErrorCode::Internal,
            ErrorCode::StoreUnavailable,
        ];
        let mut codes: Vec<_> = all.iter().map(|c| c.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for code in all {
            assert!(
                code.as_str().ends_with(&code.status().as_u16().to_string()),
                "{code:?}"
            );
        }
    }

    #[test]
    fn poisoned_store_maps_to_503() {
        let error = ApiError::from(tessera_store::Error::Poisoned);
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
