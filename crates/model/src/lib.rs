//! Tessera's shared vocabulary: the tenant every key and request is scoped by, and the
//! validated names that cross crate boundaries.
//!
//! What lives here: small, dependency-free types that every other crate speaks (never
//! storage, HTTP or domain logic). Upholds DESIGN.md invariant 5 at the type level: a
//! [`Tenant`] can only be built from a validated organisation id and sandbox name, so no
//! code path can address data with a half-formed scope.

mod error;
mod tenant;

pub use error::{Error, Result};
pub use tenant::{OrgId, SandboxName, Tenant};
