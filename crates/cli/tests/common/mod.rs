//! Spawns the real `tessera` binary and talks to it over plain HTTP/1.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Tessera {
    pub child: Child,
    pub addr: String,
    pub stderr: Arc<Mutex<String>>,
}

impl Tessera {
    /// Starts `tessera serve` on an ephemeral port and waits for its listening line.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("TESSERA_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tessera");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = String::new();
            let _ = err_pipe.read_to_string(&mut buf);
            sink.lock().unwrap().push_str(&buf);
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().expect("tessera printed nothing").unwrap();
        let addr = line
            .strip_prefix("tessera listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self {
            child,
            addr,
            stderr,
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        org: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        http(&self.addr, method, path, &[("x-gw-ims-org-id", org)], body)
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit; returns the exit status and its stderr.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Give the stderr reader a moment to drain.
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.stderr.lock().unwrap().clone());
            }
            assert!(
                Instant::now() < deadline,
                "tessera did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    try_http(addr, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Like [`http`], but a refused connection or a reply cut short is an error, not a panic
/// (what a client sees when the server is killed under it).
pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let body = body.unwrap_or("");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad response {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Lines at ERROR level in a server log (a clean run has none).
pub fn error_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(" ERROR ")).collect()
}

/// A JSON call in `org`'s `prod` sandbox; the reply parsed (Null when not JSON).
pub fn call(
    addr: &str,
    org: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let headers = [("x-gw-ims-org-id", org), ("x-sandbox-name", "prod")];
    let text = body.map(|b| b.to_string());
    let (status, reply) = http(addr, method, path, &headers, text.as_deref());
    (
        status,
        serde_json::from_str(&reply).unwrap_or(serde_json::Value::Null),
    )
}

/// Creates a profile-enabled (and identity-enabled) dataset on a schema made of `refs`, and
/// an open inlet `inlet_id` bound to it; returns the dataset id.
pub fn dataset_with_inlet(addr: &str, org: &str, refs: &[&str], inlet_id: &str) -> String {
    let all_of: Vec<serde_json::Value> = refs
        .iter()
        .map(|r| serde_json::json!({ "$ref": r }))
        .collect();
    let (status, schema) = call(
        addr,
        org,
        "POST",
        "/data/foundation/schemaregistry/tenant/schemas",
        Some(serde_json::json!({
            "type": "object", "title": format!("Schema for {inlet_id}"), "allOf": all_of, "meta:immutableTags": ["union"]
        })),
    );
    assert_eq!(status, 201, "{schema}");
    let (status, dataset) = call(
        addr,
        org,
        "POST",
        "/data/foundation/catalog/dataSets",
        Some(serde_json::json!({
            "name": inlet_id, "schemaRef": {"id": schema["$id"]},
            "tags": {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]}
        })),
    );
    assert_eq!(status, 201, "{dataset}");
    let dataset_id = dataset[0]
        .as_str()
        .unwrap()
        .trim_start_matches("@/dataSets/")
        .to_owned();
    let (status, inlet) = call(
        addr,
        org,
        "POST",
        "/data/foundation/flowservice/connections",
        Some(serde_json::json!({
            "id": inlet_id, "name": inlet_id, "auth": {"params": {"datasetId": dataset_id, "authenticationRequired": false}}
        })),
    );
    assert_eq!(status, 201, "{inlet}");
    dataset_id
}

/// Client threads streaming JSON messages to one path until told to stop or the server
/// stops answering (a killed server shows up as a failed connection or a truncated reply).
pub struct StreamingClients {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl StreamingClients {
    /// Client `c` sends `message(c, n)` for n = 0, 1, ... and hands each reply answered with
    /// 200 to `acknowledged(c, n, body)`.
    pub fn start<M, A>(addr: &str, path: &str, clients: usize, message: M, acknowledged: A) -> Self
    where
        M: Fn(usize, usize) -> String + Send + Sync + 'static,
        A: Fn(usize, usize, &str) + Send + Sync + 'static,
    {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let message = Arc::new(message);
        let acknowledged = Arc::new(acknowledged);
        let threads = (0..clients)
            .map(|client| {
                let (addr, path) = (addr.to_owned(), path.to_owned());
                let (stop, message, acknowledged) = (
                    Arc::clone(&stop),
                    Arc::clone(&message),
                    Arc::clone(&acknowledged),
                );
                std::thread::spawn(move || {
                    for n in 0.. {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            return;
                        }
                        let body = message(client, n);
                        let headers = [("content-type", "application/json")];
                        match try_http(&addr, "POST", &path, &headers, Some(&body)) {
                            Ok((200, reply)) => acknowledged(client, n, &reply),
                            _ => return,
                        }
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }

    /// Stops the clients and waits for them.
    pub fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
