//! The HTTP side of the load generator: where the server is ([`Target`]), what to send
//! ([`RequestSpec`], [`RequestSource`]) and one keep-alive HTTP/1.1 connection ([`Connection`]).
//! Every request carries the AEP tenancy headers the data routes require.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rand_chacha::ChaCha8Rng;
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// IMS organisation sent on every request.
pub const ORG_ID: &str = "BENCH@AdobeOrg";
/// Sandbox sent on every request.
pub const SANDBOX: &str = "prod";

/// The server under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Resolved socket address.
    pub addr: SocketAddr,
    /// `Host` header value (`host:port` as given).
    pub authority: String,
    /// Path prefix from the URL, without a trailing slash (usually empty).
    pub base_path: String,
    /// Extra headers sent on every request (e.g. authorization).
    pub extra_headers: Vec<(HeaderName, HeaderValue)>,
}

impl Target {
    /// Parses `http://host:port[/prefix]` and resolves the host.
    pub async fn from_url(url: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let uri: hyper::Uri = url.parse().map_err(|_| invalid("not a URI"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(invalid("only http:// is supported")),
            None => return Err(invalid("missing http:// scheme")),
        }
        let authority = uri.authority().ok_or_else(|| invalid("missing host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| invalid("host does not resolve"))?
            .next()
            .ok_or_else(|| invalid("host does not resolve"))?;
        Ok(Self {
            addr,
            authority: authority.as_str().to_owned(),
            base_path: uri.path().trim_end_matches('/').to_owned(),
            extra_headers: Vec::new(),
        })
    }

    /// A target on a known address (spawned server, tests).
    pub fn from_addr(addr: SocketAddr) -> Self {
        Self {
            addr,
            authority: addr.to_string(),
            base_path: String::new(),
            extra_headers: Vec::new(),
        }
    }

    /// `http://host:port[/prefix]`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.base_path)
    }

    fn build(&self, spec: &RequestSpec) -> Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(spec.method.clone())
            .uri(format!("{}{}", self.base_path, spec.path))
            .header(HOST, self.authority.as_str())
            .header(USER_AGENT, "tessera-bench")
            .header("x-gw-ims-org-id", ORG_ID)
            .header("x-sandbox-name", SANDBOX);
        if spec.body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        for (name, value) in &self.extra_headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(spec.body.clone().unwrap_or_default()))
            .map_err(|e| Error::Http {
                addr: self.authority.clone(),
                reason: format!("building request for {}: {e}", spec.path),
            })
    }
}

/// One request to send: method, path (origin form, after the target's prefix) and JSON body.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// HTTP method.
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    /// JSON body, if any.
    pub body: Option<Bytes>,
}

impl RequestSpec {
    /// A GET without body.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            body: None,
        }
    }
}

/// Produces the requests of a scenario; called once per request from every connection task.
pub trait RequestSource: Send + Sync {
    /// The next request; `rng` is the calling connection's own seeded generator.
    fn next_request(&self, rng: &mut ChaCha8Rng) -> RequestSpec;

    /// Figures a scenario measures beside the request latencies (e.g. a probe), reported
    /// after the run.
    fn probe_report(&self) -> Option<serde_json::Value> {
        None
    }
}

/// A response: status and the whole body (read to the end so the connection can be reused).
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: StatusCode,
    /// Body bytes.
    pub body: Bytes,
}

/// One keep-alive HTTP/1.1 connection; one request in flight at a time.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

impl Connection {
    /// Opens a TCP connection (no Nagle) and completes the HTTP/1.1 handshake; the connection's
    /// I/O task runs on the current runtime until the connection closes.
    pub async fn open(target: &Target) -> Result<Self> {
        let fail = |reason: String| Error::Http {
            addr: target.authority.clone(),
            reason,
        };
        let stream = TcpStream::connect(target.addr)
            .await
            .map_err(|e| fail(format!("connect: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| fail(format!("set TCP_NODELAY: {e}")))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(format!("handshake: {e}")))?;
        tokio::spawn(async move {
            // Ends when the peer closes or the sender is dropped; errors surface on send.
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            authority: target.authority.clone(),
        })
    }

    /// Sends one request and reads the whole response.
    pub async fn send(&mut self, target: &Target, spec: &RequestSpec) -> Result<Response> {
        let request = target.build(spec)?;
        let fail = |reason: String| Error::Http {
            addr: self.authority.clone(),
            reason,
        };
        self.sender
            .ready()
            .await
            .map_err(|e| fail(format!("connection not ready: {e}")))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| fail(format!("{} {}: {e}", spec.method, spec.path)))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(format!("reading body of {}: {e}", spec.path)))?
            .to_bytes();
        Ok(Response { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_server_urls() {
        let t = Target::from_url("http://127.0.0.1:8080").await.unwrap();
        assert_eq!(t.addr.port(), 8080);
        assert_eq!(t.base_path, "");
        assert_eq!(t.url(), "http://127.0.0.1:8080");
        let t = Target::from_url("http://127.0.0.1:9/api/").await.unwrap();
        assert_eq!(t.base_path, "/api");
        assert!(Target::from_url("https://127.0.0.1:1").await.is_err());
        assert!(Target::from_url("127.0.0.1:1").await.is_err());
    }
}
