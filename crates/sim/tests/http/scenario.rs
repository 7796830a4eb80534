//! Scenario files and the control plane.

use crate::harness::Sim;
use sim::{Scenario, SimError};

#[tokio::test]
async fn demo_scenario_serves_every_feed_with_paging() {
    let (tenant, client, secret) = Scenario::demo().demo_credentials();
    // The demo keeps Graph's 1 request/s for identity protection; lift it so paging through
    // every feed does not take seconds.
    let text = include_str!("../../../../config/scenarios/demo.yaml");
    let real_limit = "identity_protection: {limit: 1, window: 1s}";
    assert!(text.contains(real_limit));
    let text = text.replace(real_limit, "identity_protection: {limit: 100, window: 1s}");
    let demo = Scenario::from_yaml(&text, "demo.yaml").unwrap_or_else(|e| panic!("{e}"));
    let sim = Sim::serve(demo).await;
    let response = sim
        .token_request(
            &tenant,
            &[
                ("client_id", &client),
                ("client_secret", &secret),
                ("scope", "https://graph.microsoft.com/.default"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    let token = body["access_token"].as_str().expect("token").to_string();

    let (risky, links) = sim
        .all_pages("/v1.0/identityProtection/riskyUsers", &token)
        .await;
    assert!(!links.is_empty(), "page_size 3 makes paging visible");
    let high_at_risk: Vec<&str> = risky
        .iter()
        .filter(|u| u["riskLevel"] == "high" && u["riskState"] == "atRisk")
        .filter_map(|u| u["userPrincipalName"].as_str())
        .collect();
    assert_eq!(high_at_risk.len(), 6, "{high_at_risk:?}");
    assert!(high_at_risk.contains(&"breakglass@contoso.com"));

    let (detections, _) = sim
        .all_pages("/v1.0/identityProtection/riskDetections", &token)
        .await;
    assert!(!detections.is_empty());
    let (sign_ins, _) = sim.all_pages("/v1.0/auditLogs/signIns", &token).await;
    assert!(sign_ins.iter().any(|s| s["ipAddress"] == "203.0.113.50"));
}

#[test]
fn scenario_errors_carry_file_line_and_column() {
    let path = std::env::temp_dir().join(format!("sim-scenario-{}.yaml", std::process::id()));
    let text = "tenant_id: t\nclients:\n  - {client_id: c, client_secret: s}\nusers:\n  - userPrincipalName: a@x\n    risk: {level: high, state: atRisk, colour: red}\n";
    std::fs::write(&path, text).expect("write temp scenario");
    let error = Scenario::load(&path).expect_err("unknown key");
    let _ = std::fs::remove_file(&path);
    let SimError::Scenario { line, column, .. } = &error else {
        panic!("expected a located error, got {error}");
    };
    assert_eq!((*line, *column), (6, 40));
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:6:40: unknown field `colour`", path.display())),
        "{error}"
    );

    let missing =
        Scenario::load(std::path::Path::new("/nonexistent/scenario.yaml")).expect_err("no file");
    assert!(matches!(missing, SimError::Read { .. }));
}

#[tokio::test]
async fn control_plane_health_record_and_unknown_paths() {
    let sim = Sim::start("").await;
    let health = sim
        .http
        .get(format!("{}/_sim/healthz", sim.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let token = sim.token().await;
    let (status, body) = sim
        .get("/v1.0/identityProtection/riskyNobodies", &token)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "Resource not found for the segment 'riskyNobodies'."
    );
    let response = sim
        .request(
            reqwest::Method::DELETE,
            "/v1.0/identityProtection/riskyUsers",
            &token,
        )
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status(), 405);
    assert!(response.headers().contains_key("request-id"));

    let record = sim.record().await;
    let paths: Vec<(&str, &str, u16)> = record
        .requests
        .iter()
        .map(|r| (r.method.as_str(), r.path_and_query.as_str(), r.status))
        .collect();
    assert_eq!(
        paths.len(),
        3,
        "token, unknown segment, wrong method; the control plane is not recorded: {paths:?}"
    );
    assert!(paths[0].1.ends_with("/oauth2/v2.0/token") && paths[0].2 == 200);
    assert_eq!(record.requests[0].quota_class, None);
    sim.stop().await;
}
