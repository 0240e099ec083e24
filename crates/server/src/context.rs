//! Request context extractors: who is calling and in which tenant.
//!
//! Every data route takes [`SandboxContext`] (organisation + sandbox) or, for
//! organisation-level routes such as sandbox management, [`OrgContext`]. Taking one of them
//! is what makes a route tenant-scoped and permission-checked: the extractor authenticates,
//! validates the AEP headers, checks the grant for the HTTP method's role and rejects with
//! the AEP error shapes before the handler runs (DESIGN.md invariant 5).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use tessera_model::{OrgId, SandboxName, Tenant};

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ErrorCode, GatewayError};
use crate::sandboxes;
use crate::state::AppState;

/// AEP organisation header.
pub const ORG_HEADER: &str = "x-gw-ims-org-id";
/// AEP sandbox header.
pub const SANDBOX_HEADER: &str = "x-sandbox-name";
/// AEP API key header.
pub const API_KEY_HEADER: &str = "x-api-key";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The role an HTTP method needs by default: reads need `read`, everything else `write`.
fn role_for(method: &Method) -> Role {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        Role::Read
    } else {
        Role::Write
    }
}

fn authenticate(parts: &Parts, state: &AppState) -> Result<(Caller, OrgId), ApiError> {
    let caller = state.auth.authenticate(
        header(&parts.headers, API_KEY_HEADER),
        header(&parts.headers, "authorization"),
    )?;
    let org = header(&parts.headers, ORG_HEADER)
        .ok_or(GatewayError::MissingHeader(ORG_HEADER))
        .and_then(|value| {
            OrgId::parse(value).map_err(|_| GatewayError::MissingHeader(ORG_HEADER))
        })?;
    if !caller.entitled_to_org(&org) {
        return Err(GatewayError::OrgNotEntitled.into());
    }
    Ok((caller, org))
}

fn forbidden(caller: &Caller, needed: Role, held: Option<Role>, scope: &str) -> ApiError {
    let detail = match held {
        Some(role) => format!(
            "key {} holds role {role} in {scope}; this request needs {needed}",
            caller.label()
        ),
        None => format!("key {} holds no grant for {scope}", caller.label()),
    };
    ApiError::problem(ErrorCode::Forbidden, detail)
}

/// An authenticated caller acting on one organisation (no sandbox).
#[derive(Debug, Clone)]
pub struct OrgContext {
    /// The organisation from `x-gw-ims-org-id`.
    pub org: OrgId,
    /// Who is calling.
    pub caller: Caller,
}

impl OrgContext {
    /// Fails with 403 unless the caller holds at least `needed` over the whole organisation.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        let held = self.caller.org_role(&self.org);
        if held.is_some_and(|role| role >= needed) {
            return Ok(());
        }
        Err(forbidden(
            &self.caller,
            needed,
            held,
            &format!("organization {} (all sandboxes)", self.org),
        ))
    }
}

impl FromRequestParts<AppState> for OrgContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (caller, org) = authenticate(parts, state)?;
        Ok(Self { org, caller })
    }
}

/// An authenticated caller acting in one sandbox, with the role the method needs.
#[derive(Debug, Clone)]
pub struct SandboxContext {
    /// Organisation and sandbox.
    pub tenant: Tenant,
    /// Who is calling.
    pub caller: Caller,
    /// The strongest role the caller holds here (at least what the method needs).
    pub role: Role,
}

impl SandboxContext {
    /// Fails with 403 unless the caller holds at least `needed` here (for routes that need
    /// more than their method implies).
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.role >= needed {
            return Ok(());
        }
        Err(forbidden(
            &self.caller,
            needed,
            Some(self.role),
            &format!("sandbox {}", self.tenant),
        ))
    }
}

impl FromRequestParts<AppState> for SandboxContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (caller, org) = authenticate(parts, state)?;
        let raw_sandbox = header(&parts.headers, SANDBOX_HEADER)
            .ok_or(GatewayError::MissingHeader(SANDBOX_HEADER))?;
        let sandbox = SandboxName::parse(raw_sandbox)?;
        let needed = role_for(&parts.method);
        let held = caller.role_in(&org, &sandbox);
        let role = match held {
            Some(role) if role >= needed => role,
            _ => {
                return Err(forbidden(
                    &caller,
                    needed,
                    held,
                    &format!("sandbox {org}/{sandbox}"),
                ))
            }
        };
        if !sandboxes::is_active(state.store.as_ref(), &org, &sandbox)? {
            return Err(ApiError::problem(
                ErrorCode::UnknownSandbox,
                format!("sandbox {sandbox:?} does not exist or is deleted in organization {org}"),
            ));
        }
        Ok(Self {
            tenant: Tenant::new(org, sandbox),
            caller,
            role,
        })
    }
}
