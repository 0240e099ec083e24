//! A real server on an ephemeral port with a temp-dir store, and a tiny HTTP client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod ingest;
pub mod segments;

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tessera_server::context::SandboxContext;
use tessera_server::{AppState, Overrides, Server, ServerConfig};

pub struct TestServer {
    pub addr: SocketAddr,
    /// The running server's state (its store, services), for checks below the HTTP API.
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts the full application with an optional config file text (dev mode without).
    pub async fn start(config_toml: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(dir.path().to_owned()),
            durability: None,
        };
        let config = match config_toml {
            Some(text) => ServerConfig::from_toml(text, overrides).unwrap(),
            None => ServerConfig::load(None, overrides).unwrap(),
        };
        let server = Server::bind(config).await.unwrap();
        let addr = server.local_addr().unwrap();
        let state = server.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .serve(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            state,
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// Sends one request; `headers` are (name, value) pairs.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match body {
        Some(json) => {
            builder = builder.header("content-type", "application/json");
            Full::new(Bytes::from(json.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let response = client.request(builder.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub const SANDBOXES: &str = "/data/foundation/sandbox-management/sandboxes";

/// A router with one sandbox-scoped probe route on the real application state, to test
/// the tenancy extractor the way every data route uses it.
pub async fn start_probe(config_toml: Option<&str>) -> (SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(dir.path().to_owned()),
        durability: None,
    };
    let config = match config_toml {
        Some(text) => ServerConfig::from_toml(text, overrides).unwrap(),
        None => ServerConfig::load(None, overrides).unwrap(),
    };
    let store = tessera_store::EmbeddedStore::open(dir.path(), Default::default()).unwrap();
    let (state, _wake) = AppState::new(
        std::sync::Arc::new(store),
        config.auth,
        dir.path().join("batch-files"),
        dir.path().join("exports"),
        config.limits,
        config.preview,
    );
    async fn probe(context: SandboxContext) -> String {
        format!("{} {}", context.tenant, context.role)
    }
    let probe_router = Router::new()
        .route("/probe", get(probe).post(probe))
        .with_state(state.clone());
    let app = tessera_server::app(state).merge(probe_router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, dir)
}
