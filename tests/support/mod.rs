//! Shared helpers for the end-to-end tests: the binary, a simulator subprocess, the audit db.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The `revokd` binary under test, run from the repository root so relative paths resolve.
pub fn revokd() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("revokd").expect("revokd binary");
    cmd.current_dir(repo_root()).env_remove("REVOKD_LOG");
    cmd
}

pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// `revokd sim` on a free loopback port, killed when dropped.
pub struct Sim {
    child: Child,
    pub url: String,
}

impl Sim {
    pub fn start(scenario: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_revokd"))
            .current_dir(repo_root())
            .args(["sim", "--listen", "127.0.0.1:0", "--scenario", scenario])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("revokd sim starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("sim prints its address");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("address on the first line")
            .to_string();
        assert!(url.starts_with("http://"), "unexpected first line: {line}");
        Self { child, url }
    }

    /// Everything the simulator received, from its control endpoint.
    pub async fn record(&self) -> serde_json::Value {
        graph::http_client(std::time::Duration::from_secs(10))
            .expect("http client")
            .get(format!("{}/_sim/record", self.url))
            .send()
            .await
            .expect("record request")
            .json()
            .await
            .expect("record is JSON")
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A read-only connection to an audit database.
pub async fn audit_db(path: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    sqlx::SqlitePool::connect_with(options)
        .await
        .expect("audit database opens")
}
