//! The server under test: either one already running (`--server URL`) or one the harness starts
//! itself (`--spawn`): the current executable as `tessera serve` on a free loopback port and a
//! temporary data directory, killed (and its directory removed) when the run ends.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::client::{Connection, RequestSpec, Target};
use crate::error::{Error, Result};

/// A `tessera serve` child process on a temporary data directory.
pub struct SpawnedServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl SpawnedServer {
    /// Starts `exe serve --listen 127.0.0.1:PORT --data-dir TMP` and waits until `GET /ready`
    /// answers 200 (at most `timeout`). Server output goes to `server.log` in the temp dir.
    pub async fn start(exe: &Path, timeout: Duration) -> Result<Self> {
        let addr = free_port()?;
        let dir = tempfile::Builder::new()
            .prefix("tessera-bench-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
        let log_err = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
        let child = Command::new(exe)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Spawn {
                exe: exe.to_owned(),
                source,
            })?;
        let mut server = Self { child, addr, dir };
        wait_ready(&Target::from_addr(addr), timeout, Some(&mut server)).await?;
        Ok(server)
    }

    /// The server's process id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Path of the server's combined stdout and stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines
            .get(lines.len().saturating_sub(10)..)
            .unwrap_or_default()
            .join("\n")
    }

    /// Kills the process and waits for it; the temp dir goes when `self` is dropped.
    pub async fn stop(mut self) -> Result<()> {
        // Already exited is fine: we only need it gone.
        let _ = self.child.start_kill();
        self.child
            .wait()
            .await
            .map_err(|e| Error::io(self.dir.path(), e))?;
        Ok(())
    }
}

/// A loopback address with a port that was free a moment ago (bound, then released).
pub fn free_port() -> Result<SocketAddr> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io(PathBuf::from("127.0.0.1:0"), e))?;
    listener
        .local_addr()
        .map_err(|e| Error::io(PathBuf::from("127.0.0.1:0"), e))
}

/// Polls `GET /ready` until it answers 200. With a spawned server, gives up early (with the
/// log tail) if the process exits.
pub async fn wait_ready(
    target: &Target,
    timeout: Duration,
    mut spawned: Option<&mut SpawnedServer>,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if let Some(server) = spawned.as_deref_mut() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(Error::NotReady {
                    addr: target.authority.clone(),
                    waited_ms: millis(started.elapsed()),
                    last: format!("server exited with {status}; log:\n{}", server.log_tail()),
                });
            }
        }
        let last = match probe(target).await {
            Ok(200) => return Ok(()),
            Ok(status) => format!("GET /ready answered {status}"),
            Err(e) => e.to_string(),
        };
        if started.elapsed() >= timeout {
            let tail = spawned
                .map(|s| format!("; log:\n{}", s.log_tail()))
                .unwrap_or_default();
            return Err(Error::NotReady {
                addr: target.authority.clone(),
                waited_ms: millis(started.elapsed()),
                last: format!("{last}{tail}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn probe(target: &Target) -> Result<u16> {
    let mut connection = Connection::open(target).await?;
    let response = connection.send(target, &RequestSpec::get("/ready")).await?;
    Ok(response.status.as_u16())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
