//! The Schema Registry API over HTTP, replaying the request/response pairs of the AEP docs
//! (help/xdm/api/schemas.md, descriptors.md, unions.md, getting-started.md) with Tessera's
//! ids, plus the error answers.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
mod common;

use common::{send, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const REGISTRY: &str = "/data/foundation/schemaregistry";
const ORG: (&str, &str) = ("x-gw-ims-org-id", "ACME@AdobeOrg");
const SANDBOX: (&str, &str) = ("x-sandbox-name", "prod");
const ID_LIST: (&str, &str) = ("accept", "application/vnd.adobe.xed-id+json");
const RAW: (&str, &str) = ("accept", "application/vnd.adobe.xed+json; version=1");
const FULL: (&str, &str) = ("accept", "application/vnd.adobe.xed-full+json; version=1");

fn encode(id: &str) -> String {
    id.replace(':', "%3A").replace('/', "%2F")
}

#[tokio::test]
async fn schema_lifecycle_follows_the_aep_docs() {
    let server = TestServer::start(None).await;
    let url = |p: &str| server.url(&format!("{REGISTRY}{p}"));
    let call = |method: Method,
                path: String,
                accept: Option<(&'static str, &'static str)>,
                body: Option<Value>| {
        let mut headers = vec![ORG, SANDBOX];
        headers.extend(accept);
        let target = url(&path);
        async move { send(method, &target, &headers, body).await }
    };

    // getting-started.md: the tenant id.
    let stats = call(Method::GET, "/stats".into(), None, None).await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(stats.json()["tenantId"], "acme");
    assert_eq!(stats.json()["imsOrg"], "ACME@AdobeOrg");
    assert_eq!(stats.json()["counts"]["schemas"], 0);

    // Global container.
    let classes = call(Method::GET, "/global/classes".into(), Some(ID_LIST), None).await;
    assert_eq!(classes.status, StatusCode::OK);
    assert_eq!(
        classes.json()["results"][0],
        json!({"$id": "https://ns.adobe.com/xdm/context/profile", "meta:altId": "_xdm.context.profile",
               "version": "1.0", "title": "XDM Individual Profile"})
    );
    let groups = call(
        Method::GET,
        "/global/fieldgroups".into(),
        Some(ID_LIST),
        None,
    )
    .await;
    let groups_json = groups.json();
    let titles: Vec<String> = groups_json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles.len(), 13);
    for expected in [
        "IdentityMap",
        "Demographic Details",
        "Personal Contact Details",
        "Work Contact Details",
        "Loyalty Details",
        "Consents and Preferences",
        "Segment Membership Details",
        "Commerce Details",
        "Web Details",
        "Environment Details",
        "Marketing Details",
        "Channel Details",
    ] {
        assert!(
            titles.iter().any(|t| t == expected),
            "{expected} missing from {titles:?}"
        );
    }
    let event_class = call(
        Method::GET,
        format!(
            "/global/classes/{}",
            encode("https://ns.adobe.com/xdm/context/experienceevent")
        ),
        Some(FULL),
        None,
    )
    .await;
    assert_eq!(event_class.status, StatusCode::OK);
    assert_eq!(event_class.json()["required"], json!(["_id", "timestamp"]));
    assert_eq!(
        event_class.json()["properties"]["timestamp"]["format"],
        "date-time"
    );
    let personal = call(
        Method::GET,
        "/global/fieldgroups/_xdm.context.profile-personal-details".into(),
        Some(FULL),
        None,
    )
    .await;
    assert_eq!(
        personal.json()["properties"]["personalEmail"]["properties"]["address"]["format"],
        "email"
    );
    assert!(personal.json().get("allOf").is_none());

    // schemas.md "Create a schema" (with a standard field group instead of a tenant class).
    let created = call(
        Method::POST,
        "/tenant/schemas".into(),
        None,
        Some(json!({
            "title": "Property Information",
            "description": "Property-related information.",
            "type": "object",
            "allOf": [{"$ref": "https://ns.adobe.com/xdm/context/profile"}]
        })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let schema = created.json();
    let id = schema["$id"].as_str().unwrap().to_owned();
    let alt = schema["meta:altId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("https://ns.adobe.com/acme/schemas/"));
    assert_eq!(
        alt,
        format!("_acme.schemas.{}", id.rsplit('/').next().unwrap())
    );
    assert_eq!(schema["version"], "1.0");
    assert_eq!(
        schema["meta:class"],
        "https://ns.adobe.com/xdm/context/profile"
    );
    assert_eq!(schema["meta:abstract"], false);
    assert_eq!(schema["meta:extensible"], false);
    assert_eq!(schema["meta:containerId"], "tenant");
    assert_eq!(schema["meta:resourceType"], "schemas");
    assert_eq!(schema["meta:xdmType"], "object");
    assert_eq!(schema["imsOrg"], "ACME@AdobeOrg");
    assert_eq!(
        schema["meta:extends"],
        json!([
            "https://ns.adobe.com/xdm/context/profile",
            "https://ns.adobe.com/xdm/data/record",
            "https://ns.adobe.com/xdm/common/auditable"
        ])
    );

    // "Retrieve a list of schemas" with the id Accept header.
    let list = call(
        Method::GET,
        "/tenant/schemas?orderby=title".into(),
        Some(ID_LIST),
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.json()["results"],
        json!([{"$id": id, "meta:altId": alt, "version": "1.0", "title": "Property Information"}])
    );
    assert_eq!(list.json()["_page"]["count"], 1);

    // "Look up a schema" by altId and by URL-encoded $id.
    let by_alt = call(
        Method::GET,
        format!("/tenant/schemas/{alt}"),
        Some(RAW),
        None,
    )
    .await;
    assert_eq!(by_alt.status, StatusCode::OK);
    assert_eq!(by_alt.json(), schema);
    let by_id = call(
        Method::GET,
        format!("/tenant/schemas/{}", encode(&id)),
        Some(RAW),
        None,
    )
    .await;
    assert_eq!(by_id.json(), schema);

    // "Update a portion of a schema": add a field group to meta:extends and allOf.
    let patched = call(Method::PATCH, format!("/tenant/schemas/{alt}"), None, Some(json!([
        {"op": "add", "path": "/meta:extends/-", "value": "https://ns.adobe.com/xdm/context/profile-personal-details"},
        {"op": "add", "path": "/allOf/-", "value": {"$ref": "https://ns.adobe.com/xdm/context/profile-personal-details"}}
    ]))).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json()["version"], "1.1");
    assert_eq!(
        patched.json()["allOf"][1]["$ref"],
        "https://ns.adobe.com/xdm/context/profile-personal-details"
    );
    let full = call(
        Method::GET,
        format!("/tenant/schemas/{alt}"),
        Some(FULL),
        None,
    )
    .await;
    assert_eq!(
        full.json()["properties"]["personalEmail"]["properties"]["address"]["format"],
        "email"
    );
    let notext = call(
        Method::GET,
        format!("/tenant/schemas/{alt}"),
        Some((
            "accept",
            "application/vnd.adobe.xed-full-notext+json; version=1",
        )),
        None,
    )
    .await;
    assert!(notext.json().get("title").is_none());
    assert!(notext.json()["properties"]["personalEmail"]
        .get("title")
        .is_none());

    // "Enable a schema for use in Real-time Customer Profile".
    let enabled = call(
        Method::PATCH,
        format!("/tenant/schemas/{alt}"),
        None,
        Some(json!([{"op": "add", "path": "/meta:immutableTags", "value": ["union"]}])),
    )
    .await;
    assert_eq!(enabled.status, StatusCode::OK);
    assert_eq!(enabled.json()["meta:immutableTags"], json!(["union"]));

    // unions.md: list, look up, list members.
    let unions = call(Method::GET, "/tenant/unions".into(), Some(ID_LIST), None).await;
    assert_eq!(
        unions.json(),
        json!({"results": [{"title": "XDM Individual Profile",
        "$id": "https://ns.adobe.com/xdm/context/profile__union", "meta:altId": "_xdm.context.profile__union", "version": "1"}]})
    );
    let union = call(
        Method::GET,
        format!(
            "/tenant/unions/{}",
            encode("https://ns.adobe.com/xdm/context/profile__union")
        ),
        Some(RAW),
        None,
    )
    .await;
    assert_eq!(union.status, StatusCode::OK);
    let union = union.json();
    assert_eq!(union["meta:resourceType"], "unions");
    assert_eq!(
        union["meta:class"],
        "https://ns.adobe.com/xdm/context/profile"
    );
    assert_eq!(
        union["description"],
        "Union view of all schemas that extend https://ns.adobe.com/xdm/context/profile"
    );
    assert_eq!(
        union["allOf"],
        json!([{"$ref": "https://ns.adobe.com/xdm/context/profile"},
        {"$ref": "https://ns.adobe.com/xdm/context/profile-personal-details"}])
    );
    let union_full = call(
        Method::GET,
        "/tenant/schemas/_xdm.context.profile__union".into(),
        Some(FULL),
        None,
    )
    .await;
    assert!(union_full.json()["properties"]["identityMap"].is_object());
    let members = call(Method::GET, "/tenant/schemas?property=meta:immutableTags==union&property=meta:class==https://ns.adobe.com/xdm/context/profile".into(), Some(ID_LIST), None).await;
    assert_eq!(members.json()["results"][0]["$id"], id.as_str());
    let none = call(Method::GET, "/tenant/schemas?property=meta:class==https%3A%2F%2Fns.adobe.com%2Fxdm%2Fcontext%2Fexperienceevent".into(), Some(ID_LIST), None).await;
    assert_eq!(none.json()["results"], json!([]));

    // descriptors.md: create, look up, list (link form), delete.
    let descriptor = call(
        Method::POST,
        "/tenant/descriptors".into(),
        None,
        Some(json!({
            "@type": "xdm:descriptorIdentity",
            "xdm:sourceSchema": id,
            "xdm:sourceVersion": 1,
            "xdm:sourceProperty": "/personalEmail/address",
            "xdm:namespace": "Email",
            "xdm:property": "xdm:code",
            "xdm:isPrimary": false
        })),
    )
    .await;
    assert_eq!(
        descriptor.status,
        StatusCode::CREATED,
        "{}",
        descriptor.text
    );
    let descriptor = descriptor.json();
    let descriptor_id = descriptor["@id"].as_str().unwrap().to_owned();
    assert_eq!(descriptor["meta:containerId"], "tenant");
    assert_eq!(descriptor["xdm:sourceProperty"], "/personalEmail/address");
    let looked_up = call(
        Method::GET,
        format!("/tenant/descriptors/{descriptor_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(looked_up.json()["xdm:namespace"], "Email");
    assert_eq!(looked_up.json()["imsOrg"], "ACME@AdobeOrg");
    let links = call(
        Method::GET,
        "/tenant/descriptors".into(),
        Some(("accept", "application/vnd.adobe.xdm-link+json")),
        None,
    )
    .await;
    assert_eq!(
        links.json(),
        json!({"xdm:descriptorIdentity": [format!("/tenant/descriptors/{descriptor_id}")]})
    );
    let ids = call(
        Method::GET,
        "/tenant/descriptors".into(),
        Some(("accept", "application/vnd.adobe.xdm-id+json")),
        None,
    )
    .await;
    assert_eq!(
        ids.json(),
        json!({"xdm:descriptorIdentity": [descriptor_id]})
    );
    let objects = call(
        Method::GET,
        "/tenant/descriptors".into(),
        Some(("accept", "application/vnd.adobe.xdm+json")),
        None,
    )
    .await;
    assert_eq!(
        objects.json()["xdm:descriptorIdentity"][0]["xdm:namespace"],
        "Email"
    );
    let deleted = call(
        Method::DELETE,
        format!("/tenant/descriptors/{descriptor_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(
            Method::GET,
            format!("/tenant/descriptors/{descriptor_id}"),
            None,
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // "Delete a schema": 204, then 404.
    let gone = call(
        Method::DELETE,
        format!("/tenant/schemas/{}", encode(&id)),
        None,
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert!(gone.text.is_empty());
    let missing = call(
        Method::GET,
        format!("/tenant/schemas/{alt}"),
        Some(RAW),
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json()["report"],
        json!({"kind": "schema", "id": alt})
    );
    server.stop().await;
}

#[tokio::test]
async fn schema_errors_are_problems_with_reports() {
    let server = TestServer::start(None).await;
    let url = |p: &str| server.url(&format!("{REGISTRY}{p}"));
    let headers = [ORG, SANDBOX];
    let post = |body: Value| {
        let target = url("/tenant/schemas");
        async move { send(Method::POST, &target, &headers, Some(body)).await }
    };
    let with_tier = |title: &str, kind: &str| {
        json!({
            "title": title,
            "meta:immutableTags": ["union"],
            "allOf": [{"$ref": "https://ns.adobe.com/xdm/context/profile"},
                      {"properties": {"_acme": {"type": "object", "properties": {"tier": {"type": kind}}}}}]
        })
    };

    let first = post(with_tier("CRM", "string")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let first_id = first.json()["$id"].as_str().unwrap().to_owned();

    // Union conflict: 409 naming both schemas and the path.
    let conflict = post(with_tier("Loyalty", "integer")).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    let body = conflict.json();
    assert_eq!(body["code"], "TSR-1302-409");
    assert_eq!(body["report"]["path"], "/_acme/tier");
    assert_eq!(
        body["report"]["class"],
        "https://ns.adobe.com/xdm/context/profile"
    );
    assert_eq!(
        body["report"]["schemas"][0],
        json!({"$id": first_id, "type": "string"})
    );
    assert_eq!(body["report"]["schemas"][1]["type"], "integer(long)");
    assert!(body["detail"].as_str().unwrap().contains(&first_id));

    // Invalid documents: 400 with the JSON pointer.
    let cases = [
        (
            json!({"title": "x", "allOf": [{"$ref": "https://ns.adobe.com/xdm/nope"}]}),
            "/allOf/0/$ref",
        ),
        (
            json!({"allOf": [{"$ref": "https://ns.adobe.com/xdm/context/profile"}]}),
            "/title",
        ),
        (
            json!({"title": "y", "allOf": [{"$ref": "https://ns.adobe.com/xdm/context/profile"},
            {"properties": {"loose": {"type": "string"}}}]}),
            "/allOf/1/properties/loose",
        ),
    ];
    for (body, path) in cases {
        let reply = post(body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert_eq!(reply.json()["code"], "TSR-1002-400");
        assert_eq!(reply.json()["report"]["path"], path);
    }
    // Duplicate title: 409 AlreadyExists.
    assert_eq!(
        post(with_tier("CRM", "string")).await.json()["code"],
        "TSR-1301-409"
    );
    // Malformed JSON.
    let malformed = send(
        Method::POST,
        &url("/tenant/schemas"),
        &[ORG, SANDBOX, ("content-type", "application/json")],
        None,
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json()["code"], "TSR-1001-400");
    // A bad JSON Patch names the failing operation.
    let patch = send(
        Method::PATCH,
        &url(&format!("/tenant/schemas/{}", encode(&first_id))),
        &headers,
        Some(json!([{"op": "remove", "path": "/nope"}])),
    )
    .await;
    assert_eq!(patch.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        patch.json()["report"],
        json!({"operation": 0, "op": "remove", "path": "/nope"})
    );
    // Removing the immutable union tag: 409.
    let untag = send(
        Method::PATCH,
        &url(&format!("/tenant/schemas/{}", encode(&first_id))),
        &headers,
        Some(json!([{"op": "remove", "path": "/meta:immutableTags"}])),
    )
    .await;
    assert_eq!(untag.status, StatusCode::CONFLICT);
    // Unknown resources: 404.
    for path in [
        "/global/classes/_xdm.context.nope",
        "/global/fieldgroups/_xdm.context.nope",
        "/tenant/unions/_xdm.context.experienceevent__union",
        "/tenant/descriptors/abc",
    ] {
        assert_eq!(
            send(Method::GET, &url(path), &headers, None).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // A descriptor on a field the schema does not have.
    let descriptor = send(
        Method::POST,
        &url("/tenant/descriptors"),
        &headers,
        Some(json!({
        "@type": "xdm:descriptorIdentity", "xdm:sourceSchema": first_id,
        "xdm:sourceProperty": "/personalEmail/address", "xdm:namespace": "Email"})),
    )
    .await;
    assert_eq!(descriptor.status, StatusCode::BAD_REQUEST);
    assert_eq!(descriptor.json()["report"]["path"], "/xdm:sourceProperty");
    // Another sandbox sees none of it.
    let dev = send(
        Method::POST,
        &server.url("/data/foundation/sandbox-management/sandboxes"),
        &[ORG],
        Some(json!({"name": "dev", "title": "Dev", "type": "development"})),
    )
    .await;
    assert_eq!(dev.status, StatusCode::OK, "{}", dev.text);
    let other = send(
        Method::GET,
        &url("/tenant/schemas"),
        &[ORG, ("x-sandbox-name", "dev")],
        None,
    )
    .await;
    assert_eq!(other.json()["results"], json!([]));
    server.stop().await;
}
