//! Segment definitions written straight into the store, for tests about what evaluates them.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::json;
use tessera_model::Tenant;
use tessera_segment::definition::{self, EvaluationInfo, Expression, SegmentDefinition};
use tessera_store::WriteBatch;

use super::TestServer;

/// Stores a batch-evaluated PQL definition `id` in the test organisation's `prod` sandbox.
pub fn store_definition(server: &TestServer, id: &str, pql: &str) {
    let tenant = Tenant::parse(super::ingest::ORG, "prod").unwrap();
    let segment = SegmentDefinition {
        id: id.into(),
        name: id.into(),
        description: String::new(),
        schema: json!({"name": "_xdm.context.profile"}),
        profile_instance_id: "ups".into(),
        expression: Expression {
            kind: "PQL".into(),
            format: "pql/text".into(),
            value: pql.into(),
        },
        merge_policy_id: None,
        evaluation_info: EvaluationInfo::default(),
        dependencies: Vec::new(),
        ttl_in_days: None,
        extra: Default::default(),
        creation_time: 0,
        update_time: 0,
        update_epoch: 0,
    };
    let mut batch = WriteBatch::new();
    definition::put(&mut batch, &tenant, &segment, None).unwrap();
    server.state.store.commit(batch).unwrap();
}
