//! Sets up schemas, datasets and an inlet over HTTP, as an AEP client would.
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::{send, Reply};

pub const ORG: &str = "INGEST@AdobeOrg";
pub const TENANT: [(&str, &str); 2] = [("x-gw-ims-org-id", ORG), ("x-sandbox-name", "prod")];

pub struct Setup {
    pub base: String,
    pub profile_schema: String,
    pub event_schema: String,
    pub profile_dataset: String,
    pub event_dataset: String,
    pub inlet: String,
}

pub async fn post(base: &str, path: &str, body: Value) -> Reply {
    send(Method::POST, &format!("{base}{path}"), &TENANT, Some(body)).await
}

pub async fn get(base: &str, path: &str) -> Reply {
    send(Method::GET, &format!("{base}{path}"), &TENANT, None).await
}

async fn schema(base: &str, title: &str, refs: &[&str]) -> String {
    let all_of: Vec<Value> = refs.iter().map(|r| json!({ "$ref": r })).collect();
    let reply = post(
        base,
        "/data/foundation/schemaregistry/tenant/schemas",
        json!({"type": "object", "title": title, "allOf": all_of, "meta:immutableTags": ["union"]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json()["$id"].as_str().unwrap().to_owned()
}

pub async fn dataset(base: &str, name: &str, schema_id: &str, upsert: bool) -> String {
    let mut profile_tags = vec!["enabled:true"];
    if upsert {
        profile_tags.push("isUpsert:true");
    }
    let reply = post(
        base,
        "/data/foundation/catalog/dataSets",
        json!({
            "name": name,
            "schemaRef": {"id": schema_id, "contentType": "application/vnd.adobe.xed-full+json;version=1"},
            "tags": {"unifiedProfile": profile_tags, "unifiedIdentity": ["enabled:true"]}
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let reference = reply.json()[0].as_str().unwrap().to_owned();
    reference.trim_start_matches("@/dataSets/").to_owned()
}

/// A profile schema (person, personal contact, identityMap), an event schema (web,
/// commerce, identityMap), a profile-enabled dataset of each, and an open inlet.
pub async fn setup(base: &str) -> Setup {
    let profile_schema = schema(
        base,
        "Customers",
        &[
            "https://ns.adobe.com/xdm/context/profile",
            "https://ns.adobe.com/xdm/context/profile-person-details",
            "https://ns.adobe.com/xdm/context/profile-personal-details",
            "https://ns.adobe.com/xdm/context/identitymap",
        ],
    )
    .await;
    let event_schema = schema(
        base,
        "Web events",
        &[
            "https://ns.adobe.com/xdm/context/experienceevent",
            "https://ns.adobe.com/xdm/context/experienceevent-web",
            "https://ns.adobe.com/xdm/context/experienceevent-commerce",
            "https://ns.adobe.com/xdm/context/identitymap",
        ],
    )
    .await;
    let profile_dataset = dataset(base, "CRM", &profile_schema, false).await;
    let event_dataset = dataset(base, "Web", &event_schema, false).await;
    let reply = post(
        base,
        "/data/foundation/flowservice/connections",
        json!({"name": "test inlet", "auth": {"specName": "Streaming Connection", "params": {"authenticationRequired": false}}}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let inlet = reply.json()["id"].as_str().unwrap().to_owned();
    Setup {
        base: base.to_owned(),
        profile_schema,
        event_schema,
        profile_dataset,
        event_dataset,
        inlet,
    }
}

impl Setup {
    pub fn profile_message(&self, entity: Value) -> Value {
        json!({
            "header": {"schemaRef": {"id": self.profile_schema}, "imsOrgId": ORG, "datasetId": self.profile_dataset},
            "body": {"xdmMeta": {"schemaRef": {"id": self.profile_schema}}, "xdmEntity": entity}
        })
    }

    pub fn event_message(&self, entity: Value) -> Value {
        json!({
            "header": {"schemaRef": {"id": self.event_schema}, "imsOrgId": ORG, "datasetId": self.event_dataset},
            "body": {"xdmMeta": {"schemaRef": {"id": self.event_schema}}, "xdmEntity": entity}
        })
    }

    pub async fn stream(&self, message: Value) -> Reply {
        send(
            Method::POST,
            &format!("{}/collection/{}", self.base, self.inlet),
            &[("content-type", "application/json")],
            Some(message),
        )
        .await
    }

    pub async fn stream_batch(&self, messages: Vec<Value>) -> Reply {
        send(
            Method::POST,
            &format!("{}/collection/batch/{}", self.base, self.inlet),
            &[],
            Some(json!({ "messages": messages })),
        )
        .await
    }

    /// Every change-feed entry of the tenant.
    pub async fn feed(&self) -> Vec<Value> {
        let reply = get(&self.base, "/data/core/ups/system/changefeed?limit=10000").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["entries"].as_array().unwrap().clone()
    }
}

pub fn person(email: &str) -> Value {
    json!({
        "identityMap": {"Email": [{"id": email, "primary": true}]},
        "person": {"name": {"firstName": "Jane", "lastName": "Doe"}, "birthDate": "1969-03-14"},
        "personalEmail": {"address": email}
    })
}

pub fn page_view(id: &str, ecid: &str) -> Value {
    json!({
        "_id": id,
        "timestamp": "2025-03-01T10:00:00Z",
        "eventType": "web.webpagedetails.pageViews",
        "identityMap": {"ECID": [{"id": ecid, "primary": true}]},
        "web": {"webPageDetails": {"name": "home", "URL": "https://example.com/"}}
    })
}

/// Loads `lines` (JSON lines) into `dataset` through a file batch and waits until it is
/// processed; returns the batch id and its catalog record.
pub async fn load_batch(setup: &Setup, dataset: &str, lines: &[Value]) -> (String, Value) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let reply = post(
        &setup.base,
        "/data/foundation/import/batches",
        json!({"datasetId": dataset, "inputFormat": {"format": "json"}}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let batch = reply.json()["id"].as_str().unwrap().to_owned();
    let body: Vec<String> = lines.iter().map(Value::to_string).collect();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<hyper::body::Bytes>>();
    let mut request = hyper::Request::builder()
        .method(Method::PUT)
        .uri(format!(
            "{}/data/foundation/import/batches/{batch}/datasets/{dataset}/files/rows.json",
            setup.base
        ))
        .header("content-type", "application/octet-stream");
    for (k, v) in TENANT {
        request = request.header(k, v);
    }
    let response = client
        .request(request.body(Full::new(body.join("\n").into())).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let _ = response.into_body().collect().await;
    let completed = post(
        &setup.base,
        &format!("/data/foundation/import/batches/{batch}?action=COMPLETE"),
        json!({}),
    )
    .await;
    assert_eq!(completed.status, StatusCode::OK, "{}", completed.text);
    for _ in 0..300 {
        let reply = get(
            &setup.base,
            &format!("/data/foundation/catalog/batches/{batch}"),
        )
        .await;
        let record = reply.json()[&batch].clone();
        if !matches!(record["status"].as_str(), Some("loading" | "processing")) {
            return (batch, record);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("batch {batch} did not finish");
}
