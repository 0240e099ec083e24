//! Segment definitions written straight into the store, for tests about what evaluates them.
#![allow(dead_code, clippy::unwrap_used)]

use tessera_model::Tenant;
use tessera_segment::definition::{self, Expression, SegmentDefinition};
use tessera_store::WriteBatch;

use super::TestServer;

/// Stores a batch-evaluated PQL definition `id` in the test organisation's `prod` sandbox.
pub fn store_definition(server: &TestServer, id: &str, pql: &str) {
    let tenant = Tenant::parse(super::ingest::ORG, "prod").unwrap();
    let segment = SegmentDefinition::new(id, Expression::pql_text(pql), Vec::new(), 0);
    let mut batch = WriteBatch::new();
    definition::put(&mut batch, &tenant, &segment, None).unwrap();
    server.state.store.commit(batch).unwrap();
}
