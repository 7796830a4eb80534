//! The three feeds: shapes, paging, filters, limits, and records that evolve over time.

use crate::harness::{Sim, error_code};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const TENANT_USERS: &str = "page_size: 2
users:
  - {id: 00000000-0000-4000-8000-000000000001, userPrincipalName: a@contoso.com, displayName: Alice A, risk: {level: high, state: atRisk}}
  - {id: 00000000-0000-4000-8000-000000000002, userPrincipalName: b@contoso.com, risk: {level: high, state: atRisk}}
  - {id: 00000000-0000-4000-8000-000000000003, userPrincipalName: c@contoso.com, risk: {level: medium, state: atRisk}}
  - {id: 00000000-0000-4000-8000-000000000004, userPrincipalName: d@contoso.com, risk: {level: high, state: dismissed}}
  - {id: 00000000-0000-4000-8000-000000000005, userPrincipalName: e@contoso.com, risk: {level: high, state: atRisk}}
  - {id: 00000000-0000-4000-8000-000000000006, userPrincipalName: f@contoso.com}
";

fn keys(record: &Value) -> BTreeSet<String> {
    record
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_string()).collect()
}

#[tokio::test]
async fn risky_users_page_through_absolute_next_links() {
    let sim = Sim::start(TENANT_USERS).await;
    let token = sim.token().await;
    let filter = "riskLevel eq 'high' and riskState eq 'atRisk'";
    let first = format!("/v1.0/identityProtection/riskyUsers?$filter={filter}&$top=500");
    let (records, links) = sim.all_pages(&first, &token).await;
    let ids: Vec<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "00000000-0000-4000-8000-000000000001",
            "00000000-0000-4000-8000-000000000002",
            "00000000-0000-4000-8000-000000000005"
        ]
    );
    assert_eq!(links.len(), 1, "page_size 2 caps $top=500");
    let link = &links[0];
    assert!(
        link.starts_with(&format!("{}/v1.0/identityProtection/riskyUsers?", sim.url)),
        "{link}"
    );
    assert!(
        link.contains("$filter=riskLevel%20eq%20%27high%27%20and%20riskState%20eq%20%27atRisk%27"),
        "{link}"
    );
    assert!(
        link.contains("$top=500") && link.contains("$skiptoken="),
        "{link}"
    );

    // Every property of the documented riskyUser example, with real types.
    let alice = &records[0];
    assert_eq!(
        keys(alice),
        set(&[
            "@odata.type",
            "id",
            "isDeleted",
            "isProcessing",
            "riskLastUpdatedDateTime",
            "riskLevel",
            "riskState",
            "riskDetail",
            "userDisplayName",
            "userPrincipalName"
        ])
    );
    assert_eq!(alice["userDisplayName"], "Alice A");
    assert_eq!(alice["isDeleted"], false);
    assert!(
        chrono::DateTime::parse_from_rfc3339(
            alice["riskLastUpdatedDateTime"]
                .as_str()
                .unwrap_or_default()
        )
        .is_ok()
    );

    let (status, page) = sim.get("/v1.0/identityProtection/riskyUsers", &token).await;
    assert_eq!(status, 200);
    assert_eq!(
        page["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#identityProtection/riskyUsers"
    );
}

#[tokio::test]
async fn top_limits_skip_and_bad_filters_are_400_like_graph() {
    let sim = Sim::start(TENANT_USERS).await;
    let token = sim.token().await;
    let rejected = [
        "/v1.0/identityProtection/riskyUsers?$top=501",
        "/v1.0/identityProtection/riskDetections?$top=501",
        "/v1.0/auditLogs/signIns?$top=1001",
        "/v1.0/identityProtection/riskDetections?$skip=2",
        "/v1.0/identityProtection/riskyUsers?$filter=riskLevel eq high",
        "/v1.0/identityProtection/riskyUsers?$filter=userId eq 'x'",
        "/v1.0/auditLogs/signIns?$filter=createdDateTime ge '2026-11-24T10:00:00Z'",
        "/v1.0/auditLogs/signIns?$filter=(userId eq 'x'",
        "/v1.0/identityProtection/riskyUsers?$skiptoken=forged",
    ];
    for target in rejected {
        let (status, body) = sim.get(target, &token).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, "BadRequest"),
            "{target}: {body}"
        );
    }
    let (_, body) = sim.get(rejected[4], &token).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Invalid filter clause")
    );
    for accepted in [
        "/v1.0/auditLogs/signIns?$top=1000",
        "/v1.0/identityProtection/riskyUsers?$top=500",
    ] {
        assert_eq!(sim.get(accepted, &token).await.0, 200, "{accepted}");
    }
}

const SIGN_INS: &str = "users:
  - {id: 00000000-0000-4000-8000-000000000001, userPrincipalName: a@contoso.com}
  - {id: 00000000-0000-4000-8000-000000000002, userPrincipalName: b@contoso.com}
sign_ins:
  - {id: s-old, user: a@contoso.com, created_ago: 30m, ip: 198.51.100.1}
  - {id: s-new, user: b@contoso.com, created_ago: 1m, ip: 203.0.113.50, status_code: 50126, country: NG, city: Lagos}
  - {id: s-mid, user: a@contoso.com, created_ago: 10m, ip: 203.0.113.50, republish: {after: 800ms, risk_level_during_sign_in: high, risk_state: atRisk}}
  - {id: s-late, user: b@contoso.com, created_ago: 20m, appears_after: 800ms}
  - {id: s-app, user: a@contoso.com, created_ago: 2m, interactive: false}
";

/// The v1.0 signIn properties in the CSDL (plus id).
const SIGN_IN_PROPERTIES: &[&str] = &[
    "id",
    "appDisplayName",
    "appId",
    "appliedConditionalAccessPolicies",
    "authenticationAppDeviceDetails",
    "clientAppUsed",
    "conditionalAccessStatus",
    "correlationId",
    "createdDateTime",
    "deviceDetail",
    "homeTenantId",
    "ipAddress",
    "isInteractive",
    "location",
    "resourceDisplayName",
    "resourceId",
    "resourceTenantId",
    "riskDetail",
    "riskEventTypes",
    "riskEventTypes_v2",
    "riskLevelAggregated",
    "riskLevelDuringSignIn",
    "riskState",
    "servicePrincipalId",
    "servicePrincipalName",
    "status",
    "userAgent",
    "userDisplayName",
    "userId",
    "userPrincipalName",
];

fn ids(records: &[Value]) -> Vec<&str> {
    records.iter().filter_map(|r| r["id"].as_str()).collect()
}

#[tokio::test]
async fn sign_ins_newest_first_filtered_and_evolving() {
    let sim = Sim::start(SIGN_INS).await;
    let token = sim.token().await;
    let (all, _) = sim.all_pages("/v1.0/auditLogs/signIns", &token).await;
    assert_eq!(
        ids(&all),
        ["s-new", "s-mid", "s-old"],
        "newest first, interactive only, s-late not yet in the log"
    );
    assert_eq!(keys(&all[0]), set(SIGN_IN_PROPERTIES));
    assert_eq!(all[0]["status"]["errorCode"], 50126);
    assert_eq!(all[0]["location"]["countryOrRegion"], "NG");
    assert_eq!(all[0]["userId"], "00000000-0000-4000-8000-000000000002");
    assert_eq!(all[1]["riskLevelDuringSignIn"], "none");

    let since = all[1]["createdDateTime"]
        .as_str()
        .expect("createdDateTime")
        .to_string();
    let query = format!(
        "/v1.0/auditLogs/signIns?$filter=createdDateTime ge {since} and ipAddress eq '203.0.113.50'"
    );
    let (recent, _) = sim.all_pages(&query, &token).await;
    assert_eq!(ids(&recent), ["s-new", "s-mid"]);
    let failed = "/v1.0/auditLogs/signIns?$filter=status/errorCode ne 0 or userPrincipalName eq 'nobody@contoso.com'";
    assert_eq!(ids(&sim.all_pages(failed, &token).await.0), ["s-new"]);

    tokio::time::sleep(Duration::from_millis(900)).await;
    let (later, _) = sim.all_pages("/v1.0/auditLogs/signIns", &token).await;
    assert_eq!(
        ids(&later),
        ["s-new", "s-mid", "s-late", "s-old"],
        "late entry arrives with its old timestamp"
    );
    let republished = &later[1];
    assert_eq!(republished["riskLevelDuringSignIn"], "high");
    assert_eq!(
        republished["createdDateTime"], all[1]["createdDateTime"],
        "same sign-in, same time"
    );
}

#[tokio::test]
async fn non_interactive_sign_ins_only_on_beta_with_the_lambda_filter() {
    let sim = Sim::start(SIGN_INS).await;
    let token = sim.token().await;
    let (beta, _) = sim.all_pages("/beta/auditLogs/signIns", &token).await;
    assert_eq!(ids(&beta), ["s-new", "s-mid", "s-old"]);
    assert_eq!(beta[0]["signInEventTypes"][0], "interactiveUser");
    assert!(
        beta[0].get("riskEventTypes").is_none(),
        "beta has only riskEventTypes_v2"
    );
    let lambda =
        "/beta/auditLogs/signIns?$filter=signInEventTypes/any(t: t eq 'nonInteractiveUser')";
    let (non_interactive, links) = sim.all_pages(lambda, &token).await;
    assert_eq!(ids(&non_interactive), ["s-app"]);
    assert!(links.is_empty());
    let (status, _) = sim.get(&lambda.replace("/beta/", "/v1.0/"), &token).await;
    assert_eq!(status, 400, "v1.0 has no signInEventTypes");
}

#[tokio::test]
async fn risk_detections_and_user_appearance_over_time() {
    let body = "page_size: 1
users:
  - {id: 00000000-0000-4000-8000-000000000001, userPrincipalName: a@contoso.com, risk: {level: high, state: atRisk}, appears_after: 800ms}
risk_detections:
  - {id: d-1, user: a@contoso.com, risk_event_type: anonymizedIPAddress, risk_level: high, detected_ago: 5m}
  - {id: d-2, user: a@contoso.com, detected_ago: 1m, republish: {after: 800ms, risk_level: high}}
  - {id: d-3, user: a@contoso.com, appears_after: 800ms}
";
    let sim = Sim::start(body).await;
    let token = sim.token().await;
    let (risky, _) = sim
        .all_pages("/v1.0/identityProtection/riskyUsers", &token)
        .await;
    assert!(risky.is_empty(), "the user's risk is not visible yet");
    let (detections, links) = sim
        .all_pages("/v1.0/identityProtection/riskDetections", &token)
        .await;
    assert_eq!(ids(&detections), ["d-2", "d-1"]);
    assert_eq!(links.len(), 1);
    assert_eq!(detections[1]["riskEventType"], "anonymizedIPAddress");
    assert_eq!(detections[1]["userPrincipalName"], "a@contoso.com");
    assert_eq!(
        detections[1]["@odata.type"],
        "#microsoft.graph.riskDetection"
    );

    tokio::time::sleep(Duration::from_millis(900)).await;
    let (risky, _) = sim
        .all_pages("/v1.0/identityProtection/riskyUsers", &token)
        .await;
    assert_eq!(ids(&risky), ["00000000-0000-4000-8000-000000000001"]);
    let high = "/v1.0/identityProtection/riskDetections?$filter=riskLevel eq 'high'";
    let (detections, _) = sim.all_pages(high, &token).await;
    assert_eq!(ids(&detections), ["d-2", "d-1"], "d-3 is medium");
    let (all, _) = sim
        .all_pages("/v1.0/identityProtection/riskDetections", &token)
        .await;
    assert_eq!(ids(&all), ["d-3", "d-2", "d-1"], "d-3 appeared, newest");
    assert_ne!(
        detections[0]["lastUpdatedDateTime"], detections[0]["detectedDateTime"],
        "the update moved lastUpdatedDateTime"
    );
}

#[tokio::test]
async fn generators_fill_feeds_for_benchmarks() {
    let body = "generate:
  risky_users: {count: 700, upn_pattern: 'bench{n}@contoso.com'}
  sign_ins: {count: 1500, upn_pattern: 'bench{n}@contoso.com', users: 700, spread: 10m}
  risk_detections: {count: 20, upn_pattern: 'other{n}@contoso.com', users: 5}
";
    let sim = Sim::start(body).await;
    let token = sim.token().await;
    let (risky, links) = sim
        .all_pages("/v1.0/identityProtection/riskyUsers?$top=500", &token)
        .await;
    assert_eq!((risky.len(), links.len()), (700, 1));
    assert!(
        risky
            .iter()
            .all(|r| r["riskLevel"] == "high" && r["riskState"] == "atRisk")
    );
    let (sign_ins, links) = sim.all_pages("/v1.0/auditLogs/signIns", &token).await;
    assert_eq!(
        (sign_ins.len(), links.len()),
        (1500, 1),
        "1000 per page without $top"
    );
    let unique: BTreeSet<&str> = sign_ins.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(unique.len(), 1500);
    let (detections, _) = sim
        .all_pages("/v1.0/identityProtection/riskDetections", &token)
        .await;
    assert_eq!(detections.len(), 20);
    // Users named only by generated detections exist in the directory.
    assert_eq!(
        sim.get("/v1.0/users/other5@contoso.com", &token).await.0,
        200
    );
}
