#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests index JSON replies and fail loudly
//! Segment definitions over HTTP: create from pql/text and pql/json with syntax and type
//! checks against the sandbox's union schema, list paging / sort / filters, bulk-get,
//! PATCH re-computing `inSegment` dependencies, refused cycles and in-use deletes, the
//! text ⇄ json conversion, and tenancy.

mod common;

use common::ingest::{get, post, setup, ORG, TENANT};
use common::{send, TestServer, SANDBOXES};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const DEFINITIONS: &str = "/data/core/ups/segment/definitions";
const CONVERSION: &str = "/data/core/ups/segment/conversion";

fn text(name: &str, pql: &str) -> Value {
    json!({
        "name": name,
        "profileInstanceId": "ups",
        "expression": {"type": "PQL", "format": "pql/text", "value": pql},
        "schema": {"name": "_xdm.context.profile"},
    })
}

async fn create(base: &str, body: Value) -> Value {
    let reply = post(base, DEFINITIONS, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()
}

async fn refused(base: &str, body: Value) -> String {
    let reply = post(base, DEFINITIONS, body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["statusCode"], "400");
    body["message"].as_str().unwrap().to_owned()
}

async fn count(base: &str) -> u64 {
    let reply = get(base, DEFINITIONS).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["page"]["totalCount"].as_u64().unwrap()
}

async fn patch(base: &str, id: &str, body: Value) -> common::Reply {
    send(
        Method::PATCH,
        &format!("{base}{DEFINITIONS}/{id}"),
        &TENANT,
        Some(body),
    )
    .await
}

async fn delete(base: &str, id: &str) -> common::Reply {
    send(
        Method::DELETE,
        &format!("{base}{DEFINITIONS}/{id}"),
        &TENANT,
        None,
    )
    .await
}

fn id_of(definition: &Value) -> String {
    definition["id"].as_str().unwrap().to_owned()
}

async fn convert(base: &str, format: &str, value: &str) -> common::Reply {
    post(
        base,
        CONVERSION,
        json!({"name": "n", "expression": {"type": "PQL", "format": format, "value": value},
            "schema": {"name": "_xdm.context.profile"}, "ttlInDays": 60}),
    )
    .await
}

#[tokio::test]
async fn create_checks_syntax_and_types_and_saves_nothing_on_error() {
    let server = TestServer::start(None).await;
    let base = setup(&server.url("")).await.base;

    let created = create(&base, text("US homes", r#"homeAddress.country = "US""#)).await;
    assert_eq!(created["imsOrgId"], ORG);
    assert_eq!(created["sandbox"]["sandboxName"], "prod");
    assert_eq!(created["sandbox"]["default"], true);
    assert_eq!(created["profileInstanceId"], "ups");
    assert_eq!(created["expression"]["format"], "pql/text");
    assert_eq!(created["evaluationInfo"]["batch"]["enabled"], true);
    assert_eq!(created["evaluationInfo"]["continuous"]["enabled"], false);
    assert!(created["creationTime"].as_i64().unwrap() > 1_600_000_000_000);
    assert_eq!(
        created["updateEpoch"].as_i64().unwrap(),
        created["updateTime"].as_i64().unwrap() / 1000
    );
    assert_eq!(created["dependents"], json!([]));
    assert_eq!(created["aepEligibility"]["method"], "edge");

    // pql/json, as the conversion endpoint produces it; unknown fields are kept.
    let converted = convert(&base, "pql/text", "person.birthYear >= 1980").await;
    assert_eq!(converted.status, StatusCode::OK, "{}", converted.text);
    let mut body = text("born 1980+", "");
    body["expression"] = converted.json()["expression"].clone();
    body["dataGovernancePolicy"] = json!({"excludeOptOut": true});
    body["evaluationInfo"] = json!({"continuous": {"enabled": true}});
    let from_json = create(&base, body).await;
    assert_eq!(from_json["expression"]["format"], "pql/json");
    assert_eq!(from_json["dataGovernancePolicy"]["excludeOptOut"], true);
    assert_eq!(from_json["evaluationInfo"]["continuous"]["enabled"], true);
    let fetched = get(&base, &format!("{DEFINITIONS}/{}", id_of(&from_json))).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.json(), from_json);

    // Event predicates are typed by the experience-event union.
    create(
        &base,
        text(
            "big spenders",
            r#"xEvent[commerce.order.priceTotal > 100.0].count() > 2"#,
        ),
    )
    .await;
    assert_eq!(count(&base).await, 3);

    let syntax = refused(&base, text("bad", r#"homeAddress.country = = "US""#)).await;
    assert!(
        syntax.starts_with("expression.value: syntax error at 1:23"),
        "{syntax}"
    );
    let unknown = refused(&base, text("bad", r#"person.nmae = "x""#)).await;
    assert!(
        unknown.contains("`person.nmae`: unknown field `nmae`"),
        "{unknown}"
    );
    let event_field = refused(
        &base,
        text("bad", r#"xEvent[commerce.ordr.priceTotal > 1].count() > 0"#),
    )
    .await;
    assert!(
        event_field.contains("unknown field `ordr`"),
        "{event_field}"
    );
    let types = refused(&base, text("bad", r#"person.birthYear = "1980""#)).await;
    assert!(
        types.starts_with("expression.value: does not type-check"),
        "{types}"
    );
    let not_boolean = refused(&base, text("bad", "person.birthYear")).await;
    assert!(
        not_boolean.contains("must be a boolean condition"),
        "{not_boolean}"
    );
    let mut json_error = text("bad", "");
    json_error["expression"] =
        json!({"type": "PQL", "format": "pql/json", "value": r#"{"nodeType":"nope"}"#});
    let json_message = refused(&base, json_error).await;
    assert!(
        json_message.contains("invalid pql/json at /"),
        "{json_message}"
    );
    let no_name = refused(&base, text("", "person.birthYear > 1")).await;
    assert!(no_name.starts_with("name:"), "{no_name}");
    let mut bad_policy = text("p", "person.birthYear > 1");
    bad_policy["mergePolicyId"] = json!("no-such-policy");
    let policy = refused(&base, bad_policy).await;
    assert!(policy.starts_with("mergePolicyId:"), "{policy}");
    let mut known_policy = text("p", "person.birthYear > 1");
    known_policy["mergePolicyId"] = json!("timestampOrdered-pdg");
    create(&base, known_policy).await;
    assert_eq!(count(&base).await, 4);

    let missing = get(&base, &format!("{DEFINITIONS}/no-such-id")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["statusCode"], "404");
    server.stop().await;
}

#[tokio::test]
async fn list_pages_sorts_filters_and_bulk_gets() {
    let server = TestServer::start(None).await;
    let base = setup(&server.url("")).await.base;
    let mut ids = Vec::new();
    for (name, streaming) in [("c", false), ("a", true), ("b", false)] {
        let mut body = text(name, "person.birthYear > 1");
        body["evaluationInfo"] = json!({"batch": {"enabled": !streaming},
            "continuous": {"enabled": streaming}});
        ids.push(id_of(&create(&base, body).await));
    }

    let first = get(&base, &format!("{DEFINITIONS}?limit=2&sort=name:asc")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let first = first.json();
    let names = |page: &Value| -> Vec<String> {
        page["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["a", "b"]);
    assert_eq!(
        first["page"],
        json!({"totalCount": 3, "totalPages": 2, "sortField": "name", "sort": "asc",
            "pageSize": 2, "limit": 2})
    );
    let next = first["link"]["next"].as_str().unwrap();
    let second = get(&base, next).await.json();
    assert_eq!(names(&second), ["c"]);
    assert_eq!(second["link"], json!({}));

    let newest_first = get(&base, DEFINITIONS).await.json();
    assert_eq!(newest_first["page"]["sortField"], "creationTime");
    assert_eq!(newest_first["page"]["sort"], "desc");
    assert_eq!(newest_first["page"]["limit"], 100);
    let desc = get(&base, &format!("{DEFINITIONS}?sort=name:desc"))
        .await
        .json();
    assert_eq!(names(&desc), ["c", "b", "a"]);

    let streaming = get(
        &base,
        &format!("{DEFINITIONS}?evaluationInfo.continuous.enabled=true"),
    )
    .await
    .json();
    assert_eq!(names(&streaming), ["a"]);
    let edge = get(
        &base,
        &format!("{DEFINITIONS}?evaluationInfo.synchronous.enabled=true"),
    )
    .await
    .json();
    assert_eq!(edge["segments"], json!([]));
    assert_eq!(edge["page"]["totalCount"], 0);

    let bad_sort = get(&base, &format!("{DEFINITIONS}?sort=color:asc")).await;
    assert_eq!(bad_sort.status, StatusCode::BAD_REQUEST);

    let bulk = post(
        &base,
        &format!("{DEFINITIONS}/bulk-get"),
        json!({"ids": [{"id": ids[0]}, {"id": ids[2]}, {"id": "unknown"}]}),
    )
    .await;
    assert_eq!(bulk.status, StatusCode::MULTI_STATUS, "{}", bulk.text);
    let results = bulk.json()["results"].clone();
    assert_eq!(results.as_object().unwrap().len(), 2);
    assert_eq!(results[&ids[0]]["name"], "c");
    assert_eq!(results[&ids[2]]["name"], "b");
    assert_eq!(results[&ids[2]]["imsOrgId"], ORG);
    server.stop().await;
}

#[tokio::test]
async fn segment_of_segments_dependencies_cycles_and_deletes() {
    let server = TestServer::start(None).await;
    let base = setup(&server.url("")).await.base;
    let child = id_of(&create(&base, text("child", "person.birthYear > 1980")).await);
    let other = id_of(&create(&base, text("other", r#"homeAddress.country = "US""#)).await);

    let unknown = refused(&base, text("p", r#"inSegment("no-such-segment")"#)).await;
    assert!(unknown.contains("no-such-segment"), "{unknown}");
    assert_eq!(count(&base).await, 2);

    let parent = create(&base, text("parent", &format!(r#"inSegment("{child}")"#))).await;
    let parent_id = id_of(&parent);
    assert_eq!(parent["dependencies"], json!([child]));
    assert_eq!(parent["aepEligibility"]["shape"], "segment of segments");
    let child_read = get(&base, &format!("{DEFINITIONS}/{child}")).await.json();
    assert_eq!(child_read["dependents"], json!([parent_id]));

    // PATCH (AEP's whole-object form) moves the dependency.
    let mut whole = parent.clone();
    whole["expression"]["value"] =
        json!(format!(r#"inSegment("{other}") and person.birthYear > 1"#));
    whole["creationTime"] = json!(0);
    whole["updateTime"] = json!(0);
    let changed = patch(&base, &parent_id, whole).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let changed = changed.json();
    assert_eq!(changed["dependencies"], json!([other]));
    assert_eq!(changed["creationTime"], parent["creationTime"]);
    let child_read = get(&base, &format!("{DEFINITIONS}/{child}")).await.json();
    assert_eq!(child_read["dependents"], json!([]));
    let other_read = get(&base, &format!("{DEFINITIONS}/{other}")).await.json();
    assert_eq!(other_read["dependents"], json!([parent_id]));

    // other -> parent would close parent -> other -> parent.
    let cycle = patch(
        &base,
        &other,
        json!([{"op": "replace", "path": "/expression/value",
            "value": format!(r#"inSegment("{parent_id}")"#)}]),
    )
    .await;
    assert_eq!(cycle.status, StatusCode::BAD_REQUEST, "{}", cycle.text);
    let message = cycle.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("cycle"), "{message}");
    assert!(message.contains(&parent_id), "{message}");
    let other_read = get(&base, &format!("{DEFINITIONS}/{other}")).await.json();
    assert_eq!(
        other_read["expression"]["value"],
        r#"homeAddress.country = "US""#
    );

    // A definition others read cannot be deleted; the refusal names them.
    let in_use = delete(&base, &other).await;
    assert_eq!(in_use.status, StatusCode::CONFLICT, "{}", in_use.text);
    assert!(in_use.json()["message"]
        .as_str()
        .unwrap()
        .contains(&parent_id));

    let gone = delete(&base, &parent_id).await;
    assert_eq!(gone.status, StatusCode::OK);
    assert!(gone.text.is_empty());
    assert_eq!(
        get(&base, &format!("{DEFINITIONS}/{parent_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(&base, &parent_id).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(delete(&base, &other).await.status, StatusCode::OK);
    assert_eq!(count(&base).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn conversion_round_trips_to_canonical_text() {
    let server = TestServer::start(None).await;
    let base = setup(&server.url("")).await.base;

    // The documented example, byte for byte.
    let reply = convert(&base, "pql/text", r#"workAddress.country = "US""#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["imsOrgId"], ORG);
    assert_eq!(body["sandbox"]["sandboxName"], "prod");
    assert_eq!(body["ttlInDays"], 60);
    assert!(body.get("name").is_none());
    assert_eq!(body["expression"]["format"], "pql/json");
    assert_eq!(
        body["expression"]["value"],
        r#"{"nodeType":"fnApply","fnName":"=","params":[{"nodeType":"fieldLookup","fieldName":"country","object":{"nodeType":"fieldLookup","fieldName":"workAddress","object":{"nodeType":"parameterReference","position":1}}},{"nodeType":"literal","literalType":"String","value":"US"}]}"#
    );

    for pql in [
        r#"homeAddress.countryISO = "CA" and person.birthYear = 1985"#,
        r#"not (homeAddress.countryISO = "CA")"#,
        r#"person.birthMonth in [3, 6, 9]"#,
        r#"xEvent[(timestamp occurs < 7 days before now) and eventType="download"].count()"#,
        r#"inSegment("7deb246a-49b4-4687-95f9-6316df049948") and inSegment("9e1646bb-57ff-4309-ba59-17d6c5bab6a1")"#,
        r#"CHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals("commerce.checkouts", false)) WHEN(today)])"#,
    ] {
        let as_json = convert(&base, "pql/text", pql).await;
        assert_eq!(as_json.status, StatusCode::OK, "{pql}: {}", as_json.text);
        let ast = as_json.json()["expression"]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        let back = convert(&base, "pql/json", &ast).await;
        assert_eq!(back.status, StatusCode::OK, "{pql}: {}", back.text);
        let canonical = back.json()["expression"]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(back.json()["expression"]["format"], "pql/text");
        // Canonical text is a fixed point: converting it again gives the same AST and text.
        let again = convert(&base, "pql/text", &canonical).await.json();
        assert_eq!(again["expression"]["value"], ast.as_str(), "{pql}");
    }

    let bad = convert(&base, "pql/text", "person.name = ").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let message = bad.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("syntax error at 1:15"), "{message}");
    let arl = post(
        &base,
        CONVERSION,
        json!({"expression": {"type": "ARL", "format": "pql/text", "value": "a = 1"}}),
    )
    .await;
    assert_eq!(arl.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn another_sandbox_sees_nothing() {
    let server = TestServer::start(None).await;
    let base = setup(&server.url("")).await.base;
    let id = id_of(&create(&base, text("prod only", "person.birthYear > 1")).await);

    let sandbox = send(
        Method::POST,
        &format!("{base}{SANDBOXES}"),
        &[("x-gw-ims-org-id", ORG)],
        Some(json!({"name": "dev", "title": "Dev", "type": "development"})),
    )
    .await;
    assert_eq!(sandbox.status, StatusCode::OK, "{}", sandbox.text);
    let dev = [("x-gw-ims-org-id", ORG), ("x-sandbox-name", "dev")];
    let url = |path: &str| format!("{base}{path}");

    let list = send(Method::GET, &url(DEFINITIONS), &dev, None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.json()["segments"], json!([]));
    let read = send(
        Method::GET,
        &url(&format!("{DEFINITIONS}/{id}")),
        &dev,
        None,
    )
    .await;
    assert_eq!(read.status, StatusCode::NOT_FOUND);
    let bulk = send(
        Method::POST,
        &url(&format!("{DEFINITIONS}/bulk-get")),
        &dev,
        Some(json!({"ids": [{"id": id}]})),
    )
    .await;
    assert_eq!(bulk.json()["results"], json!({}));
    // dev has no profile-enabled schema: its union is the bare profile class, without the
    // field groups prod's union has.
    let no_union = send(
        Method::POST,
        &url(DEFINITIONS),
        &dev,
        Some(text("x", "person.birthYear > 1")),
    )
    .await;
    assert_eq!(
        no_union.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_union.text
    );
    assert!(
        no_union.text.contains("unknown field `person`"),
        "{}",
        no_union.text
    );
    // inSegment cannot reach across sandboxes either.
    let across = send(
        Method::POST,
        &url(DEFINITIONS),
        &dev,
        Some(text("x", &format!(r#"inSegment("{id}")"#))),
    )
    .await;
    assert_eq!(across.status, StatusCode::BAD_REQUEST, "{}", across.text);
    let removed = send(
        Method::DELETE,
        &url(&format!("{DEFINITIONS}/{id}")),
        &dev,
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::NOT_FOUND);
    assert_eq!(count(&base).await, 1);
    server.stop().await;
}
