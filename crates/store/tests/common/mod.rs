#![allow(dead_code, clippy::unwrap_used)]

use tessera_model::Tenant;
use tessera_store::{EmbeddedStore, Scope, StoreOptions};

pub fn tenant(org: &str, sandbox: &str) -> Scope {
    Scope::Tenant(Tenant::parse(org, sandbox).unwrap())
}

pub fn open(dir: &std::path::Path) -> EmbeddedStore {
    EmbeddedStore::open(dir, StoreOptions::default()).unwrap()
}
