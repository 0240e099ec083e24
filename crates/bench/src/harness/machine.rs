//! Where a figure came from: host name, cores, CPU model, OS and the git commit of the working
//! directory. Read once per report; every field is best effort (absent rather than failing).

use std::process::Command;

use serde::Serialize;

/// The machine a benchmark ran on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// Host name.
    pub hostname: String,
    /// Logical cores available to this process.
    pub cores: usize,
    /// CPU model name, from `/proc/cpuinfo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// OS name, from `/etc/os-release`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Kernel release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
}

impl Machine {
    /// Describes the current machine.
    pub fn current() -> Self {
        let hostname = read_trimmed("/proc/sys/kernel/hostname")
            .or_else(|| command("hostname", &[]))
            .unwrap_or_else(|| "unknown".to_owned());
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            });
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_owned())
            });
        Self {
            hostname,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            os,
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        }
    }
}

/// The git commit of the current directory and whether the work tree has changes.
#[derive(Debug, Clone, Serialize)]
pub struct GitCommit {
    /// `git rev-parse HEAD`.
    pub commit: String,
    /// True when `git status --porcelain` lists changes.
    pub dirty: bool,
}

impl GitCommit {
    /// None when git or a repository is not available.
    pub fn current() -> Option<Self> {
        let commit = command("git", &["rev-parse", "HEAD"])?;
        let dirty = command("git", &["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty());
        Some(Self { commit, dirty })
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
