//! Each quota class throttles like Graph: identity protection without Retry-After, the others
//! with it; refused requests are recorded with 429.

use crate::harness::{Sim, error_code};
use reqwest::Method;

const QUOTAS: &str = "quotas:
  identity_protection: {limit: 1, window: 5s}
  reports: {limit: 2, window: 10s}
  directory_write: {limit: 1, window: 30s}
  directory_read: {limit: 1, window: 5s}
users:
  - {id: 00000000-0000-4000-8000-000000000001, userPrincipalName: a@contoso.com, risk: {level: high, state: atRisk}}
";

/// Sends `count` requests and returns the status and Retry-After of each.
async fn burst(
    sim: &Sim,
    token: &str,
    method: Method,
    target: &str,
    count: usize,
) -> Vec<(u16, Option<u64>, String)> {
    let mut out = Vec::new();
    for _ in 0..count {
        let response = sim
            .request(method.clone(), target, token)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        out.push((status, retry_after, error_code(&body).to_string()));
    }
    out
}

#[tokio::test]
async fn identity_protection_429_has_no_retry_after() {
    let sim = Sim::start(QUOTAS).await;
    let token = sim.token().await;
    let results = burst(
        &sim,
        &token,
        Method::GET,
        "/v1.0/identityProtection/riskDetections",
        2,
    )
    .await;
    assert_eq!(results[0].0, 200);
    assert_eq!(results[1], (429, None, "TooManyRequests".to_string()));
    // riskyUsers shares the bucket.
    assert_eq!(
        burst(
            &sim,
            &token,
            Method::GET,
            "/v1.0/identityProtection/riskyUsers",
            1
        )
        .await[0]
            .0,
        429
    );
    let throttled: Vec<_> = sim
        .sim
        .record()
        .requests
        .into_iter()
        .filter(|r| r.status == 429)
        .collect();
    assert_eq!(throttled.len(), 2);
    assert!(throttled.iter().all(
        |r| r.quota_class.as_deref() == Some("identity_protection") && r.retry_after.is_none()
    ));
}

#[tokio::test]
async fn reports_429_has_retry_after_until_a_slot_frees() {
    let sim = Sim::start(QUOTAS).await;
    let token = sim.token().await;
    let results = burst(&sim, &token, Method::GET, "/v1.0/auditLogs/signIns", 3).await;
    assert_eq!((results[0].0, results[1].0), (200, 200));
    let (status, retry_after, code) = &results[2];
    assert_eq!((*status, code.as_str()), (429, "TooManyRequests"));
    assert!(
        retry_after.is_some_and(|s| (9..=10).contains(&s)),
        "{retry_after:?}"
    );
    let recorded = sim.sim.record().requests.pop().expect("recorded");
    assert_eq!((recorded.status, recorded.retry_after), (429, *retry_after));
    assert_eq!(recorded.quota_class.as_deref(), Some("reports"));
}

#[tokio::test]
async fn directory_write_and_read_429_have_retry_after() {
    let sim = Sim::start(QUOTAS).await;
    let token = sim.token().await;
    let writes = burst(
        &sim,
        &token,
        Method::POST,
        "/v1.0/users/a@contoso.com/revokeSignInSessions",
        2,
    )
    .await;
    assert_eq!(writes[0].0, 200);
    assert_eq!(writes[1].0, 429);
    assert!(
        writes[1].1.is_some_and(|s| (29..=30).contains(&s)),
        "{:?}",
        writes[1]
    );
    let reads = burst(&sim, &token, Method::GET, "/v1.0/users/a@contoso.com", 2).await;
    assert_eq!(reads[0].0, 200);
    assert_eq!(reads[1].0, 429);
    assert!(
        reads[1].1.is_some_and(|s| (4..=5).contains(&s)),
        "{:?}",
        reads[1]
    );
    // The refused revoke is an action attempt too.
    let statuses: Vec<u16> = sim.sim.record().actions.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 429]);
}

#[tokio::test]
async fn window_slides() {
    let sim = Sim::start("quotas:\n  identity_protection: {limit: 1, window: 800ms}\n").await;
    let token = sim.token().await;
    let target = "/v1.0/identityProtection/riskyUsers";
    assert_eq!(
        burst(&sim, &token, Method::GET, target, 2)
            .await
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        [200, 429]
    );
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    assert_eq!(burst(&sim, &token, Method::GET, target, 1).await[0].0, 200);
}
