//! The token endpoint and bearer authentication.

use crate::harness::{CLIENT, SECRET, Sim, TENANT, error_code};
use serde_json::Value;

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

fn form<'a>(
    client: &'a str,
    secret: &'a str,
    scope: &'a str,
    grant: &'a str,
) -> [(&'a str, &'a str); 4] {
    [
        ("client_id", client),
        ("client_secret", secret),
        ("scope", scope),
        ("grant_type", grant),
    ]
}

#[tokio::test]
async fn issues_a_bearer_token_with_the_scenario_lifetime() {
    let sim = Sim::start("token_lifetime: 10m\n").await;
    let response = sim
        .http
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", sim.url))
        .header("client-request-id", "5b9a6c1e-0000-4000-8000-000000000001")
        .form(&form(CLIENT, SECRET, GRAPH_SCOPE, "client_credentials"))
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("request-id"));
    assert_eq!(
        response.headers()["client-request-id"],
        "5b9a6c1e-0000-4000-8000-000000000001"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert!(body["access_token"].as_str().is_some_and(|t| t.len() >= 32));
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(3),
        "exactly the documented fields: {body}"
    );
}

#[tokio::test]
async fn token_errors_have_the_documented_shape_and_codes() {
    let sim = Sim::start("").await;
    let cases = [
        (
            "00000000-0000-0000-0000-00000000beef",
            form(CLIENT, SECRET, GRAPH_SCOPE, "client_credentials"),
            400,
            "invalid_request",
            90002,
        ),
        (
            TENANT,
            form(
                "9d9d9d9d-0000-4000-8000-000000000000",
                SECRET,
                GRAPH_SCOPE,
                "client_credentials",
            ),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            TENANT,
            form(CLIENT, "wrong", GRAPH_SCOPE, "client_credentials"),
            401,
            "invalid_client",
            7000215,
        ),
        (
            TENANT,
            form(
                CLIENT,
                SECRET,
                "https://graph.microsoft.com/User.Read",
                "client_credentials",
            ),
            400,
            "invalid_scope",
            70011,
        ),
        (
            TENANT,
            form(CLIENT, SECRET, GRAPH_SCOPE, "password"),
            400,
            "unsupported_grant_type",
            70003,
        ),
    ];
    for (tenant, fields, status, error, aadsts) in cases {
        let response = sim.token_request(tenant, &fields).await;
        assert_eq!(response.status().as_u16(), status, "{error}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], error);
        assert_eq!(body["error_codes"][0], aadsts);
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(
            description.starts_with(&format!("AADSTS{aadsts}: ")),
            "{description}"
        );
        assert!(description.contains("\r\nTrace ID: "), "{description}");
        for field in ["timestamp", "trace_id", "correlation_id"] {
            assert!(body[field].is_string(), "{field} missing in {body}");
        }
        assert!(body.get("access_token").is_none());
    }
}

#[tokio::test]
async fn graph_routes_require_a_valid_unexpired_token() {
    let sim = Sim::start("token_lifetime: 0s\n").await;
    let target = format!("{}/v1.0/identityProtection/riskyUsers", sim.url);

    let response = sim.http.get(&target).send().await.expect("GET");
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), "InvalidAuthenticationToken");
    assert!(body["error"]["innerError"]["request-id"].is_string());

    let (status, body) = sim
        .get("/v1.0/identityProtection/riskyUsers", "not-a-token")
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (401, "InvalidAuthenticationToken")
    );

    // token_lifetime 0s: the token is expired as soon as it is issued.
    let expired = sim.token().await;
    let (status, body) = sim
        .get("/v1.0/identityProtection/riskyUsers", &expired)
        .await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired")
    );

    let record = sim.record().await;
    assert_eq!(
        record.requests.iter().filter(|r| r.status == 401).count(),
        3
    );
}
