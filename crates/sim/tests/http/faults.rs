//! Every fault kind, declared in the scenario or injected at run time.

use crate::harness::{Sim, error_code};
use reqwest::Method;
use serde_json::{Value, json};
use sim::{FaultKind, FaultRoute, FaultSpec};
use std::time::{Duration, Instant};

const USERS: &str = "users:
  - {id: 00000000-0000-4000-8000-000000000001, userPrincipalName: a@contoso.com, risk: {level: high, state: atRisk}}
  - {id: 00000000-0000-4000-8000-000000000002, userPrincipalName: b@contoso.com, risk: {level: high, state: atRisk}}
";

fn revoke(user: &str) -> String {
    format!("/v1.0/users/{user}/revokeSignInSessions")
}

#[tokio::test]
async fn status_fault_from_the_scenario_honours_skip_and_times() {
    let body = format!(
        "{USERS}faults:\n  - {{route: revoke, kind: {{type: status, code: 503}}, skip: 1, times: 2}}\n"
    );
    let sim = Sim::start(&body).await;
    let token = sim.token().await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, body) = sim.post(&revoke("a@contoso.com"), &token, None).await;
        if status == 503 {
            assert_eq!(error_code(&body), "serviceNotAvailable");
            assert!(body["error"]["innerError"]["request-id"].is_string());
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 503, 503, 200]);
    let actions: Vec<u16> = sim.sim.record().actions.iter().map(|a| a.status).collect();
    assert_eq!(actions, [200, 503, 503, 200]);
}

#[tokio::test]
async fn throttle_fault_with_and_without_retry_after() {
    let sim = Sim::start(USERS).await;
    let token = sim.token().await;
    sim.sim.inject(FaultSpec {
        route: FaultRoute::SignIns,
        kind: FaultKind::Throttle {
            retry_after: Some(2),
        },
        times: 1,
        skip: 0,
        user: None,
    });
    sim.sim.inject(FaultSpec {
        route: FaultRoute::SignIns,
        kind: FaultKind::Throttle { retry_after: None },
        times: 1,
        skip: 0,
        user: None,
    });
    let mut seen = Vec::new();
    for _ in 0..3 {
        let response = sim
            .request(Method::GET, "/v1.0/auditLogs/signIns", &token)
            .send()
            .await
            .expect("GET");
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        seen.push((response.status().as_u16(), retry_after));
    }
    assert_eq!(
        seen,
        [(429, Some("2".to_string())), (429, None), (200, None)]
    );
}

#[tokio::test]
async fn slow_fault_delays_the_answer_but_the_call_takes_effect() {
    let sim = Sim::start(USERS).await;
    let token = sim.token().await;
    sim.sim.inject(FaultSpec {
        route: FaultRoute::Revoke,
        kind: FaultKind::Slow {
            delay: Duration::from_millis(400),
        },
        times: 1,
        skip: 0,
        user: None,
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .expect("client");
    let timed_out = client
        .post(format!("{}{}", sim.url, revoke("a@contoso.com")))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));
    let record = sim.sim.record();
    assert_eq!(
        record.actions.len(),
        1,
        "recorded although the client gave up"
    );
    assert_eq!(record.actions[0].status, 200);

    sim.sim.inject(FaultSpec {
        route: FaultRoute::Any,
        kind: FaultKind::Slow {
            delay: Duration::from_millis(300),
        },
        times: 1,
        skip: 0,
        user: None,
    });
    let started = Instant::now();
    assert_eq!(
        sim.get("/v1.0/identityProtection/riskyUsers", &token)
            .await
            .0,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn malformed_fault_serves_200_with_truncated_json() {
    let sim = Sim::start(USERS).await;
    let token = sim.token().await;
    sim.sim.inject(FaultSpec {
        route: FaultRoute::RiskyUsers,
        kind: FaultKind::Malformed {},
        times: 1,
        skip: 0,
        user: None,
    });
    let response = sim
        .request(Method::GET, "/v1.0/identityProtection/riskyUsers", &token)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert!(text.starts_with("{\"@odata.context\""), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(
        sim.get("/v1.0/identityProtection/riskyUsers", &token)
            .await
            .0,
        200,
        "used up"
    );
}

#[tokio::test]
async fn drop_fault_closes_the_connection_without_a_response() {
    let sim = Sim::start(USERS).await;
    let token = sim.token().await;
    sim.sim.inject(FaultSpec {
        route: FaultRoute::Revoke,
        kind: FaultKind::Drop {},
        times: 1,
        skip: 0,
        user: Some("B@contoso.com".into()),
    });
    // The user filter: a's revoke passes, b's (addressed by id) is dropped.
    assert_eq!(
        sim.post(&revoke("a@contoso.com"), &token, None).await.0,
        200
    );
    let dropped = sim
        .request(
            Method::POST,
            &revoke("00000000-0000-4000-8000-000000000002"),
            &token,
        )
        .send()
        .await;
    let error = dropped.expect_err("no response");
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
    let actions: Vec<(String, u16)> = sim
        .sim
        .record()
        .actions
        .into_iter()
        .map(|a| (a.user, a.status))
        .collect();
    assert_eq!(
        actions[1],
        ("00000000-0000-4000-8000-000000000002".to_string(), 0)
    );
    // The next connection is served normally.
    assert_eq!(
        sim.post(&revoke("b@contoso.com"), &token, None).await.0,
        200
    );
}

#[tokio::test]
async fn faults_injected_over_http_including_the_token_route() {
    let sim = Sim::start(USERS).await;
    let inject = |fault: Value| {
        sim.http
            .post(format!("{}/_sim/faults", sim.url))
            .json(&fault)
            .send()
    };
    let response = inject(json!({"route": "token", "kind": {"type": "status", "code": 503}}))
        .await
        .expect("inject");
    assert_eq!(response.status(), 204);
    let bad = inject(json!({"route": "token", "kind": {"type": "status", "code": 200}}))
        .await
        .expect("inject");
    assert_eq!(bad.status(), 400);
    let bad = inject(json!({"route": "nowhere", "kind": {"type": "drop"}}))
        .await
        .expect("inject");
    assert_eq!(bad.status(), 400);

    let refused = sim
        .token_request(
            crate::harness::TENANT,
            &[
                ("client_id", crate::harness::CLIENT),
                ("client_secret", crate::harness::SECRET),
                ("scope", "api://x/.default"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.expect("oauth json");
    assert_eq!(
        body["error"], "temporarily_unavailable",
        "token faults use the OAuth error shape"
    );
    sim.token().await;
}
