//! Starts a simulator on 127.0.0.1:0 and talks to it over real HTTP.

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use sim::{Scenario, SimRecord, Simulator};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const TENANT: &str = "6f3b0f0e-8d5a-4c2e-9b7a-2a1d3c4e5f60";
pub const CLIENT: &str = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5";
pub const SECRET: &str = "test-secret";

/// Quotas generous enough that only tests about throttling see a 429.
const ROOMY_QUOTAS: &str = "quotas:
  identity_protection: {limit: 1000, window: 1s}
  reports: {limit: 1000, window: 1s}
  directory_write: {limit: 1000, window: 1s}
  directory_read: {limit: 1000, window: 1s}
";

/// A scenario with the test tenant and app registration, plus `body`; roomy quotas unless
/// `body` has its own.
pub fn scenario(body: &str) -> String {
    let quotas = if body.contains("quotas:") {
        ""
    } else {
        ROOMY_QUOTAS
    };
    format!(
        "tenant_id: {TENANT}\nclients:\n  - {{client_id: {CLIENT}, client_secret: {SECRET}}}\n{quotas}{body}"
    )
}

/// A running simulator.
pub struct Sim {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The in-process handle, for `record()` and `inject()`.
    pub sim: Simulator,
    /// A plain HTTP client.
    pub http: Client,
    shutdown: CancellationToken,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Sim {
    /// Serves the scenario built from `body` (see [`scenario`]).
    pub async fn start(body: &str) -> Sim {
        let parsed =
            Scenario::from_yaml(&scenario(body), "test.yaml").unwrap_or_else(|e| panic!("{e}"));
        Sim::serve(parsed).await
    }

    /// Serves a parsed scenario.
    pub async fn serve(scenario: Scenario) -> Sim {
        // reqwest is built without a default TLS provider; plain HTTP still needs one chosen.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let sim = Simulator::new(scenario);
        let shutdown = CancellationToken::new();
        let server = tokio::spawn({
            let (sim, shutdown) = (sim.clone(), shutdown.clone());
            async move { sim.serve(listener, shutdown).await }
        });
        let http = Client::builder().build().expect("reqwest client");
        Sim {
            url,
            sim,
            http,
            shutdown,
            server: Some(server),
        }
    }

    /// POSTs a client-credentials request with the given form fields.
    pub async fn token_request(&self, tenant: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.url))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    /// A valid access token for the test app.
    pub async fn token(&self) -> String {
        let response = self
            .token_request(
                TENANT,
                &[
                    ("client_id", CLIENT),
                    ("client_secret", SECRET),
                    ("scope", "https://graph.microsoft.com/.default"),
                    ("grant_type", "client_credentials"),
                ],
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("token json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// A request to `path_and_query` (relative to the simulator, or an absolute URL).
    pub fn request(&self, method: Method, target: &str, token: &str) -> RequestBuilder {
        let url = if target.starts_with("http") {
            target.to_string()
        } else {
            format!("{}{target}", self.url)
        };
        self.http.request(method, url).bearer_auth(token)
    }

    /// GET with a token; returns status and JSON body (Null when the body is not JSON).
    pub async fn get(&self, target: &str, token: &str) -> (u16, Value) {
        let response = self
            .request(Method::GET, target, token)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST a JSON body with a token; returns status and JSON body (Null when empty).
    pub async fn post(&self, target: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(Method::POST, target, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Follows `@odata.nextLink` from `first`, returning every record and the links followed.
    pub async fn all_pages(&self, first: &str, token: &str) -> (Vec<Value>, Vec<String>) {
        let (mut records, mut links) = (Vec::new(), Vec::new());
        let mut next = Some(first.to_string());
        while let Some(target) = next.take() {
            let (status, page) = self.get(&target, token).await;
            assert_eq!(status, 200, "{target}: {page}");
            records.extend(
                page["value"]
                    .as_array()
                    .expect("value array")
                    .iter()
                    .cloned(),
            );
            if let Some(link) = page["@odata.nextLink"].as_str() {
                links.push(link.to_string());
                next = Some(link.to_string());
            }
            assert!(links.len() < 100, "paging does not end");
        }
        (records, links)
    }

    /// The record, as served over the control plane.
    pub async fn record(&self) -> SimRecord {
        let response = self
            .http
            .get(format!("{}/_sim/record", self.url))
            .send()
            .await
            .expect("record");
        assert_eq!(response.status(), 200);
        response.json().await.expect("record json")
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("serve result");
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The Graph error code of a body.
pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}
