//! Containment actions and user reads: effects on the tenant, and what is recorded.

use crate::harness::{Sim, error_code};
use reqwest::Method;
use serde_json::{Value, json};

const USERS: &str = "page_size: 1
groups:
  - {id: 11111111-0000-4000-8000-00000000aaaa, displayName: Emergency Access}
users:
  - id: 00000000-0000-4000-8000-000000000001
    userPrincipalName: alex@contoso.com
    displayName: Alex Wilber
    department: Marketing
    jobTitle: Analyst
    groups: [Emergency Access, Tier 0]
    risk: {level: high, state: atRisk}
  - {id: 00000000-0000-4000-8000-000000000002, userPrincipalName: bea@contoso.com, risk: {level: medium, state: atRisk}}
";

const ALEX: &str = "00000000-0000-4000-8000-000000000001";
const BEA: &str = "00000000-0000-4000-8000-000000000002";

async fn risky(sim: &Sim, token: &str, id: &str) -> Value {
    let (records, _) = sim
        .all_pages("/v1.0/identityProtection/riskyUsers", token)
        .await;
    records
        .into_iter()
        .find(|r| r["id"] == id)
        .expect("risky user listed")
}

#[tokio::test]
async fn revoke_by_upn_sets_sessions_valid_from_and_is_recorded() {
    let sim = Sim::start(USERS).await;
    let token = sim.token().await;
    let select = "/v1.0/users/alex@contoso.com?$select=signInSessionsValidFromDateTime";
    let before = sim.get(select, &token).await.1["signInSessionsValidFromDateTime"].clone();

    let response = sim
        .request(
            Method::POST,
            "/v1.0/users/alex@contoso.com/revokeSignInSessions",
            &token,
        )
        .header("client-request-id", "c0ffee00-0000-4000-8000-000000000001")
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(
        response.headers()["client-request-id"],
        "c0ffee00-0000-4000-8000-000000000001"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": true})
    );

    let after = sim.get(select, &token).await.1["signInSessionsValidFromDateTime"].clone();
    assert!(after.as_str() > before.as_str(), "{before} -> {after}");

    let actions = sim.sim.record().actions;
    assert_eq!(actions.len(), 1);
    let action = &actions[0];
    assert_eq!(
        (action.kind.as_str(), action.user.as_str(), action.status),
        ("revokeSignInSessions", "alex@contoso.com", 200)
    );
    assert_eq!(action.user_id.as_deref(), Some(ALEX));
    assert_eq!(action.request_id, request_id);
    assert_eq!(
        action.client_request_id.as_deref(),
        Some("c0ffee00-0000-4000-8000-000000000001")
    );
    let request = sim
        .sim
        .record()
        .requests
        .into_iter()
        .find(|r| r.request_id == request_id)
        .expect("recorded");
    assert_eq!(request.quota_class.as_deref(), Some("directory_write"));
    assert_eq!(
        request.path_and_query,
        "/v1.0/users/alex@contoso.com/revokeSignInSessions"
    );
}

#[tokio::test]
async fn unknown_user_is_404_resource_not_found_and_recorded_as_failed() {
    let sim = Sim::start(USERS).await;
    let token = sim.token().await;
    let ghost = "99999999-0000-4000-8000-000000000000";
    for (method, target) in [
        (
            Method::POST,
            format!("/v1.0/users/{ghost}/revokeSignInSessions"),
        ),
        (Method::GET, format!("/v1.0/users/{ghost}")),
        (
            Method::GET,
            format!("/v1.0/users/{ghost}/transitiveMemberOf"),
        ),
    ] {
        let response = sim
            .request(method, &target, &token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404, "{target}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(error_code(&body), "Request_ResourceNotFound");
        assert_eq!(
            body["error"]["message"],
            format!(
                "Resource '{ghost}' does not exist or one of its queried reference-property objects are not present."
            )
        );
    }
    let actions = sim.sim.record().actions;
    assert_eq!(actions.len(), 1);
    assert_eq!(
        (actions[0].status, actions[0].user_id.as_deref()),
        (404, None)
    );
}

#[tokio::test]
async fn confirm_and_dismiss_change_risk_and_record_each_user() {
    let sim = Sim::start(USERS).await;
    let token = sim.token().await;
    let confirm = "/v1.0/identityProtection/riskyUsers/confirmCompromised";
    let (status, _) = sim
        .post(confirm, &token, Some(json!({"userIds": [ALEX, BEA]})))
        .await;
    assert_eq!(status, 204);
    let alex = risky(&sim, &token, ALEX).await;
    assert_eq!(
        (alex["riskState"].as_str(), alex["riskLevel"].as_str()),
        (Some("confirmedCompromised"), Some("high"))
    );

    let dismiss = "/v1.0/identityProtection/riskyUsers/dismiss";
    assert_eq!(
        sim.post(dismiss, &token, Some(json!({"userIds": [BEA]})))
            .await
            .0,
        204
    );
    let bea = risky(&sim, &token, BEA).await;
    assert_eq!(
        (bea["riskState"].as_str(), bea["riskLevel"].as_str()),
        (Some("dismissed"), Some("none"))
    );

    let too_many: Vec<String> = (0..61)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    let (status, body) = sim
        .post(dismiss, &token, Some(json!({"userIds": too_many})))
        .await;
    assert_eq!((status, error_code(&body)), (400, "BadRequest"));
    assert_eq!(
        sim.post(confirm, &token, Some(json!({"ids": []}))).await.0,
        400
    );

    let actions = sim.sim.record().actions;
    let summary: Vec<(&str, &str, u16)> = actions
        .iter()
        .take(3)
        .map(|a| (a.kind.as_str(), a.user.as_str(), a.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("confirmCompromised", ALEX, 204),
            ("confirmCompromised", BEA, 204),
            ("dismiss", BEA, 204)
        ]
    );
    assert_eq!(actions[0].body, Some(json!({"userIds": [ALEX, BEA]})));
    assert_eq!(
        actions.iter().filter(|a| a.status == 400).count(),
        61 + 1,
        "refused calls are recorded per user"
    );
}

#[tokio::test]
async fn patch_disables_and_get_selects() {
    let sim = Sim::start(USERS).await;
    let token = sim.token().await;
    let (status, user) = sim.get(&format!("/v1.0/users/{ALEX}"), &token).await;
    assert_eq!(status, 200);
    assert_eq!(
        user["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
    );
    assert_eq!(user["displayName"], "Alex Wilber");
    assert!(
        user.get("accountEnabled").is_none(),
        "not in Graph's default property set"
    );

    let patch = |body: Value| {
        sim.request(Method::PATCH, &format!("/v1.0/users/{ALEX}"), &token)
            .json(&body)
            .send()
    };
    assert_eq!(
        patch(json!({"accountEnabled": false}))
            .await
            .expect("patch")
            .status(),
        204
    );
    assert_eq!(
        patch(json!({"favouriteColour": "red"}))
            .await
            .expect("patch")
            .status(),
        400
    );
    assert_eq!(
        patch(json!({"accountEnabled": "no"}))
            .await
            .expect("patch")
            .status(),
        400
    );
    assert_eq!(
        patch(json!({"id": "x"})).await.expect("patch").status(),
        400
    );

    let (_, user) = sim
        .get(
            "/v1.0/users/ALEX@contoso.com?$select=accountEnabled,department,userType",
            &token,
        )
        .await;
    let expected = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(accountEnabled,department,userType)/$entity",
        "id": ALEX, "accountEnabled": false, "department": "Marketing", "userType": "Member",
    });
    assert_eq!(user, expected);
    assert_eq!(
        sim.get("/v1.0/users/alex@contoso.com?$select=nope", &token)
            .await
            .0,
        400
    );

    let kinds: Vec<(String, u16)> = sim
        .sim
        .record()
        .actions
        .into_iter()
        .map(|a| (a.kind, a.status))
        .collect();
    assert_eq!(kinds.first(), Some(&("updateUser".to_string(), 204)));
    assert_eq!(kinds.len(), 4);
}

#[tokio::test]
async fn transitive_member_of_pages_groups() {
    let sim = Sim::start(USERS).await;
    let token = sim.token().await;
    let (groups, links) = sim
        .all_pages(&format!("/v1.0/users/{ALEX}/transitiveMemberOf"), &token)
        .await;
    let names: Vec<&str> = groups
        .iter()
        .filter_map(|g| g["displayName"].as_str())
        .collect();
    assert_eq!(names, ["Emergency Access", "Tier 0"]);
    assert_eq!(
        groups[0]["id"], "11111111-0000-4000-8000-00000000aaaa",
        "pinned id"
    );
    assert_eq!(groups[0]["@odata.type"], "#microsoft.graph.group");
    assert_eq!(links.len(), 1, "page_size 1");
    assert!(links[0].starts_with(&format!(
        "{}/v1.0/users/{ALEX}/transitiveMemberOf?$skiptoken=",
        sim.url
    )));
}
