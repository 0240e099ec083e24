//! The HTTP client behind the admin commands (`inlet`, `import`): they talk to a running
//! server's public API, like any AEP client would, so they work against remote servers and
//! exercise the same checks.

use anyhow::{bail, Context as _};
use clap::Args;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

/// Where and as whom to call.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Server base URL.
    #[arg(long, env = "TESSERA_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Organisation (x-gw-ims-org-id).
    #[arg(long, env = "TESSERA_ORG")]
    pub org: String,
    /// Sandbox (x-sandbox-name).
    #[arg(long, env = "TESSERA_SANDBOX", default_value = "prod")]
    pub sandbox: String,
    /// API key client id (x-api-key), when the server has keys.
    #[arg(long, env = "TESSERA_API_KEY")]
    pub api_key: Option<String>,
    /// API key secret (sent as Authorization: Bearer).
    #[arg(long, env = "TESSERA_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
}

/// A configured client.
pub struct Api {
    client: Client,
    args: ClientArgs,
}

impl Api {
    /// Builds the client.
    pub fn new(args: ClientArgs) -> anyhow::Result<Self> {
        let client = Client::builder()
            .timeout(None)
            .build()
            .context("build the HTTP client")?;
        Ok(Self { client, args })
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> &str {
        self.args.server.trim_end_matches('/')
    }

    /// A request with the tenant and credential headers.
    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base()))
            .header("x-gw-ims-org-id", &self.args.org)
            .header("x-sandbox-name", &self.args.sandbox);
        if let Some(key) = &self.args.api_key {
            request = request.header("x-api-key", key);
        }
        if let Some(secret) = &self.args.secret {
            request = request.bearer_auth(secret);
        }
        request
    }

    /// Sends and decodes a JSON answer, turning error statuses into errors with the body.
    pub fn send(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let response: Response = request.send().context("send the request")?;
        let status = response.status();
        let text = response.text().context("read the answer")?;
        if !status.is_success() {
            bail!("server answered {status}: {text}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("answer is not JSON: {text}"))
    }
}
