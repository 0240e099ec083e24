#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
//! Profile lookup by any identity: fragments of every identity in the graph, merged with the
//! most recent value winning per field, in AEP's Profile Access shape.

mod common;

use common::ingest::{dataset, get, setup};
use common::TestServer;
use hyper::StatusCode;
use serde_json::json;

#[tokio::test]
async fn lookup_by_any_identity_returns_one_merged_profile() {
    let server = TestServer::start(None).await;
    let setup = setup(&server.url("")).await;
    let base = setup.base.clone();
    let crm = json!({"identityMap": {"CRMID": [{"id": "jane-1", "primary": true}], "Email": [{"id": "Jane@Example.com"}]},
        "person": {"name": {"firstName": "Jane", "lastName": "Doe"}, "birthDate": "1969-03-14"}});
    assert_eq!(
        setup.stream(setup.profile_message(crm)).await.status,
        StatusCode::OK
    );
    // A second profile dataset, written later, changes the last name only.
    let loyalty = dataset(&base, "Loyalty", &setup.profile_schema, false).await;
    let mut message = setup.profile_message(
        json!({"identityMap": {"Email": [{"id": "jane@example.com", "primary": true}]},
        "person": {"name": {"lastName": "Smith"}}}),
    );
    message["header"]["datasetId"] = json!(loyalty);
    assert_eq!(setup.stream(message).await.status, StatusCode::OK);
    // The web visitor logs in: ECID joins the graph.
    let ecid = "66666666666666666666666666666666666666";
    let login = json!({"_id": "p1", "timestamp": "2025-01-01T00:00:00Z",
        "identityMap": {"ECID": [{"id": ecid, "primary": true}], "CRMID": [{"id": "jane-1"}]}});
    assert_eq!(
        setup.stream(setup.event_message(login)).await.status,
        StatusCode::OK
    );

    for (ns, id) in [
        ("CRMID", "jane-1"),
        ("email", "JANE@example.com"),
        ("ECID", ecid),
    ] {
        let reply = get(&base, &format!("/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId={id}&entityIdNS={ns}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{ns}: {}", reply.text);
        let body = reply.json();
        let (xid, profile) = body.as_object().unwrap().iter().next().unwrap();
        assert_eq!(profile["entityId"], xid.as_str());
        assert_eq!(
            profile["entity"]["person"]["name"],
            json!({"firstName": "Jane", "lastName": "Smith"}),
            "{ns}"
        );
        assert_eq!(profile["entity"]["person"]["birthDate"], "1969-03-14");
        assert_eq!(profile["sources"].as_array().unwrap().len(), 2);
        assert_eq!(profile["identityGraph"].as_array().unwrap().len(), 3);
        assert_eq!(profile["mergePolicy"]["id"], "timestampOrdered-pdg");
        assert!(profile["entity"]["identityMap"]["CRMID"].is_array());
        assert!(profile["lastModifiedAt"].as_str().unwrap().ends_with('Z'));
    }
    // By XID, and only some fields.
    let xid = get(
        &base,
        "/data/core/identity/identity?namespace=CRMID&id=jane-1",
    )
    .await
    .json()["xid"]
        .as_str()
        .unwrap()
        .to_owned();
    let only = get(&base, &format!("/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId={xid}&fields=person.name.firstName")).await;
    assert_eq!(only.status, StatusCode::OK, "{}", only.text);
    assert_eq!(
        only.json()[&xid]["entity"],
        json!({"person": {"name": {"firstName": "Jane"}}})
    );

    let missing = get(&base, "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=nobody&entityIdNS=CRMID").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["statusCode"], "404");
    let no_schema = get(
        &base,
        "/data/core/ups/access/entities?entityId=jane-1&entityIdNS=CRMID",
    )
    .await;
    assert_eq!(no_schema.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}
