//! Helpers shared by the executor, breaker and crash tests: scenario and config files in a
//! temporary directory, a webhook receiver, and reads of the audit database.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

pub const TENANT: &str = "00000000-0000-4000-8000-00000000e5e5";
pub const CLIENT_ID: &str = "33333333-3333-4333-8333-333333333333";
pub const SECRET: &str = "executor-tests-secret-not-real";

/// The rule every test here uses: contain users rated high risk and still at risk.
pub const HIGH_RISK_RULE: &str = "\
rules:
  - id: high-risk-users
    description: contain users rated high risk and still at risk
    source: risky_users
    match:
      risk_level: [high]
      risk_state: [atRisk]
    actions: [revoke_sessions]
";

/// A temporary directory with a scenario, rules and a config.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("rules")).expect("rules dir");
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the scenario: `body` is everything after tenant and client, e.g. `users:` or
    /// `generate:` and `quotas:`.
    pub fn scenario(&self, body: &str) -> String {
        let text = format!(
            "tenant_id: {TENANT}\nclients:\n  - client_id: {CLIENT_ID}\n    client_secret: {SECRET}\n{body}"
        );
        let path = self.path("scenario.yaml");
        std::fs::write(&path, text).expect("scenario");
        path.display().to_string()
    }

    pub fn rules(&self, text: &str) {
        std::fs::write(self.path("rules/rules.yaml"), text).expect("rules");
    }

    /// Writes `revokd.yaml`: enforcement on, only the riskyUsers feed, and `extra` top-level
    /// sections and `tenant_extra` keys for the tenant (indented by four spaces).
    pub fn config(&self, sim_url: &str, extra: &str, tenant_extra: &str) -> PathBuf {
        let text = format!(
            "\
store:
  path: audit.db
rules:
  files: [rules]
{extra}
tenants:
  - tenant_id: {TENANT}
    authority_url: {sim_url}
    graph_url: {sim_url}
    auth:
      client_id: {CLIENT_ID}
      client_secret: {SECRET}
    feeds:
      risky_users: true
      risk_detections: false
      sign_ins: false
{tenant_extra}"
        );
        let path = self.path("revokd.yaml");
        std::fs::write(&path, text).expect("config");
        path
    }

    pub fn db(&self) -> PathBuf {
        self.path("audit.db")
    }
}

/// A tiny webhook receiver on a free loopback port; keeps every JSON body it gets.
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Value>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let kept = kept.clone();
                async move {
                    kept.lock().expect("lock").push(body);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            received,
            _server: server,
        }
    }

    /// Bodies received so far whose `event` is `event`.
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|b| b["event"] == event)
            .cloned()
            .collect()
    }
}

/// Runs the binary to its end in `dir`, returning (success, stdout, stderr, exit code).
pub fn run_revokd(dir: &Path, args: &[&str]) -> (bool, String, String, Option<i32>) {
    let out = crate::support::revokd()
        .current_dir(dir)
        .env("USER", "test-operator")
        .args(args)
        .output()
        .expect("revokd runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// Users with a successful revoke in the simulator's record (by resolved object id).
pub fn revoked_users(record: &Value) -> std::collections::BTreeSet<String> {
    record["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["kind"] == "revokeSignInSessions" && a["status"] == 200)
        .filter_map(|a| a["user_id"].as_str().map(str::to_string))
        .collect()
}

/// Scalar count from the audit database.
pub async fn count(db: &sqlx::SqlitePool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(db)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
