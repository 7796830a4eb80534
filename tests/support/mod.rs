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

/// The rule most end-to-end tests run: contain users rated high risk and still at risk.
pub const HIGH_RISK_RULES: &str = "\
rules:
  - id: high-risk-users
    description: contain users rated high risk and still at risk
    source: risky_users
    match: {risk_level: [high], risk_state: [atRisk]}
    actions: [revoke_sessions]
";

/// A temporary directory holding `revokd.yaml` and `rules/rules.yaml`.
pub fn workspace(config: &str, rules: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("rules")).expect("rules dir");
    std::fs::write(dir.path().join("rules/rules.yaml"), rules).expect("rules file");
    std::fs::write(dir.path().join("revokd.yaml"), config).expect("config file");
    dir
}

/// `revokd run --once --config revokd.yaml` in `dir`.
pub fn run_once(dir: &Path) -> std::process::Output {
    revokd()
        .current_dir(dir)
        .args(["run", "--once", "--config", "revokd.yaml"])
        .output()
        .expect("revokd runs")
}

/// How many revokes the simulator answered with 200.
pub async fn revoked_count(sim: &Sim) -> usize {
    sim.record().await["actions"].as_array().map_or(0, |a| {
        a.iter()
            .filter(|a| a["kind"] == "revokeSignInSessions" && a["status"] == 200)
            .count()
    })
}

/// The app registration a scenario's simulator accepts.
pub struct App {
    pub tenant_id: &'static str,
    pub client_id: &'static str,
    pub client_secret: &'static str,
}

/// tests/fixtures/e2e-scenario.yaml
pub const E2E_APP: App = App {
    tenant_id: "00000000-0000-4000-8000-0000000e2e00",
    client_id: "22222222-2222-4222-8222-222222222222",
    client_secret: "e2e-secret-not-real",
};

/// tests/fixtures/feeds-scenario.yaml
pub const FEEDS_APP: App = App {
    tenant_id: "00000000-0000-4000-8000-00000000fee0",
    client_id: "33333333-3333-4333-8333-333333333333",
    client_secret: "feeds-secret-not-real",
};

/// tests/fixtures/directory-scenario.yaml
pub const DIRECTORY_APP: App = App {
    tenant_id: "00000000-0000-4000-8000-0000000d1e00",
    client_id: "66666666-6666-4666-8666-666666666666",
    client_secret: "directory-secret-not-real",
};

/// tests/fixtures/post-containment-scenario.yaml
pub const POST_CONTAINMENT_APP: App = App {
    tenant_id: "00000000-0000-4000-8000-0000000c0de0",
    client_id: "77777777-7777-4777-8777-777777777777",
    client_secret: "post-secret-not-real",
};

/// A config with the store at `audit.db`, the rules in `rules/`, and one tenant served by
/// `sim`. `sections` is YAML for the other top-level sections (safety, polling, executor);
/// `tenant` is YAML for the tenant's other keys (feeds, quotas).
pub fn one_tenant_config(sim: &Sim, app: &App, sections: &str, tenant: &str) -> String {
    let tenant: String = tenant.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "store:\n  path: audit.db\nrules:\n  files: [rules]\n{sections}tenants:\n  - tenant_id: {}\n    authority_url: {url}\n    graph_url: {url}\n    auth: {{client_id: {}, client_secret: {}}}\n{tenant}",
        app.tenant_id,
        app.client_id,
        app.client_secret,
        url = sim.url
    )
}
