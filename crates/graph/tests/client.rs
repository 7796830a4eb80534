//! The client against a stand-in Graph and token endpoint (wiremock): token caching and
//! renewal, retries, paging, request ids and error extraction.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use graph::auth::{Credential, Secret};
use graph::client::{Feed, GraphClient, GraphEndpoints, ListQuery};
use graph::error::{GraphError, RetryHint};
use graph::models::{RiskLevel, RiskyUser};
use graph::quota::{QuotaLimit, QuotaLimits};
use graph::retry::RetryPolicy;
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TENANT: &str = "contoso-tenant";
const TOKEN_PATH: &str = "/login/contoso-tenant/oauth2/v2.0/token";
const RISKY_USERS: &str = "/v1.0/identityProtection/riskyUsers";
const CLIENT_SECRET: &str = "very-secret-value";

/// Issues `tok-1`, `tok-2`, ... so tests can tell which token a request carried.
struct Tokens {
    issued: AtomicUsize,
    expires_in: u64,
    delay: Duration,
}

impl Respond for Tokens {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200)
            .set_body_json(json!({
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "ext_expires_in": self.expires_in,
                "access_token": format!("tok-{n}"),
            }))
            .set_delay(self.delay)
    }
}

async fn mount_tokens(server: &MockServer, expires_in: u64, delay: Duration) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(Tokens {
            issued: AtomicUsize::new(0),
            expires_in,
            delay,
        })
        .mount(server)
        .await;
}

fn fast_limits() -> QuotaLimits {
    let limit = QuotaLimit {
        requests: 1000,
        per: Duration::from_secs(1),
    };
    QuotaLimits {
        identity_protection: limit,
        reports: limit,
        directory_write: limit,
        directory_read: limit,
    }
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn client_with(server: &MockServer, retry: RetryPolicy) -> GraphClient {
    let root = Url::parse(&server.uri()).expect("server uri");
    GraphClient::new(
        GraphEndpoints {
            tenant_id: TENANT.to_string(),
            authority_url: root.join("login").expect("authority"),
            graph_url: root,
        },
        Credential::ClientSecret {
            client_id: "app-id".to_string(),
            client_secret: Secret::new(CLIENT_SECRET),
        },
        &fast_limits(),
        retry,
        Duration::from_secs(5),
    )
    .expect("valid client")
}

fn client(server: &MockServer) -> GraphClient {
    client_with(server, fast_retry(3))
}

fn risky_users_page(next_link: Option<&str>) -> Value {
    let mut page = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#riskyUsers",
        "value": [{"id": "u1", "riskLevel": "high", "riskState": "atRisk"}],
    });
    if let Some(link) = next_link {
        page["@odata.nextLink"] = json!(link);
    }
    page
}

async fn requests_to(server: &MockServer, wanted: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .expect("recording is on")
        .into_iter()
        .filter(|r| r.url.path() == wanted)
        .collect()
}

fn header_of<'a>(request: &'a Request, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn first_page_url(client: &GraphClient) -> String {
    client
        .list_url(Feed::RiskyUsers, &ListQuery::default())
        .to_string()
}

const CRID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

#[tokio::test]
async fn one_token_request_serves_many_calls() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(risky_users_page(None)))
        .mount(&server)
        .await;
    let client = client(&server);
    let url = first_page_url(&client);
    for _ in 0..5 {
        let (page, meta) = client
            .get_page::<RiskyUser>(Feed::RiskyUsers, &url)
            .await
            .expect("page");
        assert_eq!(page.value[0].risk_level, Some(RiskLevel::High));
        assert_eq!(meta.status, 200);
        assert_eq!(meta.endpoint, "GET /v1.0/identityProtection/riskyUsers");
    }

    let token_requests = requests_to(&server, TOKEN_PATH).await;
    assert_eq!(token_requests.len(), 1);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&token_requests[0].body)
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("grant_type"), "client_credentials");
    assert_eq!(field("client_id"), "app-id");
    assert_eq!(field("client_secret"), CLIENT_SECRET);
    assert_eq!(field("scope"), format!("{}/.default", server.uri()));
}

#[tokio::test]
async fn concurrent_callers_share_one_token_request() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::from_millis(150)).await;
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .respond_with(ResponseTemplate::new(200).set_body_json(risky_users_page(None)))
        .mount(&server)
        .await;
    let client = client(&server);
    let url = first_page_url(&client);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move { client.get_page::<Value>(Feed::RiskyUsers, &url).await })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("page");
    }
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 1);
}

#[tokio::test]
async fn tokens_are_renewed_before_they_expire() {
    let server = MockServer::start().await;
    // 61 s of life with a 60 s margin: good for one second, then renewed.
    mount_tokens(&server, 61, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .respond_with(ResponseTemplate::new(200).set_body_json(risky_users_page(None)))
        .mount(&server)
        .await;
    let client = client(&server);
    let url = first_page_url(&client);
    client
        .get_page::<Value>(Feed::RiskyUsers, &url)
        .await
        .expect("page");
    client
        .get_page::<Value>(Feed::RiskyUsers, &url)
        .await
        .expect("page");
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    client
        .get_page::<Value>(Feed::RiskyUsers, &url)
        .await
        .expect("page");
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 2);
    let pages = requests_to(&server, RISKY_USERS).await;
    assert_eq!(header_of(&pages[2], "authorization"), "Bearer tok-2");
}

#[tokio::test]
async fn a_401_renews_the_token_once() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired."}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .and(header("authorization", "Bearer tok-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(risky_users_page(None)))
        .mount(&server)
        .await;
    let client = client_with(&server, fast_retry(6));
    let (page, _) = client
        .get_page::<RiskyUser>(Feed::RiskyUsers, &first_page_url(&client))
        .await
        .expect("the second token works");
    assert_eq!(page.value.len(), 1);
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 2);
}

#[tokio::test]
async fn a_persistent_401_is_returned_after_one_renewal() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"code": "InvalidAuthenticationToken", "message": "no"}
        })))
        .mount(&server)
        .await;
    let client = client_with(&server, fast_retry(6));
    let error = client
        .get_page::<Value>(Feed::RiskyUsers, &first_page_url(&client))
        .await
        .expect_err("still unauthorised");
    assert_eq!(error.status(), Some(401));
    assert_eq!(error.retry_hint(), RetryHint::RenewToken);
    assert_eq!(requests_to(&server, RISKY_USERS).await.len(), 2);
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 2);
}

#[tokio::test]
async fn get_page_waits_as_long_as_retry_after_says() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/auditLogs/signIns"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .insert_header("request-id", "throttled-1")
                .set_body_json(json!({"error": {"code": "TooManyRequests", "message": "slow"}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/auditLogs/signIns"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .with_priority(2)
        .mount(&server)
        .await;
    let client = client(&server);
    let url = client.list_url(Feed::SignIns, &ListQuery::default());
    let started = Instant::now();
    let (page, meta) = client
        .get_page::<Value>(Feed::SignIns, url.as_str())
        .await
        .expect("second attempt succeeds");
    // Backoff alone would have waited a few milliseconds.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(page.value.is_empty());
    assert_eq!(meta.status, 200);
    assert_eq!(
        requests_to(&server, "/v1.0/auditLogs/signIns").await.len(),
        2
    );
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off_and_retries() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .respond_with(ResponseTemplate::new(200).set_body_json(risky_users_page(None)))
        .with_priority(2)
        .mount(&server)
        .await;
    let client = client(&server);
    client
        .get_page::<RiskyUser>(Feed::RiskyUsers, &first_page_url(&client))
        .await
        .expect("third attempt succeeds");
    let attempts = requests_to(&server, RISKY_USERS).await;
    assert_eq!(attempts.len(), 3);
    // Every attempt is a new request with its own id.
    let ids: Vec<_> = attempts
        .iter()
        .map(|r| header_of(r, "client-request-id"))
        .collect();
    assert!(
        ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok()),
        "{ids:?}"
    );
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ids:?}");
}

#[tokio::test]
async fn retries_stop_at_max_attempts_and_fatal_errors_are_not_retried() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/auditLogs/signIns"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges."}
        })))
        .mount(&server)
        .await;
    let client = client_with(&server, fast_retry(3));
    let error = client
        .get_page::<Value>(Feed::RiskyUsers, &first_page_url(&client))
        .await
        .expect_err("always 503");
    assert_eq!(error.status(), Some(503));
    assert_eq!(error.code(), None);
    assert!(error.to_string().contains("Service Unavailable"), "{error}");
    assert_eq!(requests_to(&server, RISKY_USERS).await.len(), 3);

    let url = client.list_url(Feed::SignIns, &ListQuery::default());
    let error = client
        .get_page::<Value>(Feed::SignIns, url.as_str())
        .await
        .expect_err("forbidden");
    assert_eq!(error.code(), Some("Authorization_RequestDenied"));
    assert_eq!(error.retry_hint(), RetryHint::Fatal);
    assert_eq!(
        requests_to(&server, "/v1.0/auditLogs/signIns").await.len(),
        1
    );
}

#[tokio::test]
async fn malformed_success_bodies_are_decode_errors_with_a_position() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("request-id", "rid-7")
                .set_body_string("{\"value\": [{\"id\": \"u1\"},]}"),
        )
        .mount(&server)
        .await;
    let client = client_with(&server, fast_retry(2));
    let error = client
        .get_page::<RiskyUser>(Feed::RiskyUsers, &first_page_url(&client))
        .await
        .expect_err("not JSON");
    assert!(matches!(error, GraphError::Decode { .. }), "{error:?}");
    assert_eq!(error.request_id(), Some("rid-7"));
    assert!(error.to_string().contains("line 1 column"), "{error}");
    assert_eq!(
        requests_to(&server, RISKY_USERS).await.len(),
        2,
        "retried once"
    );
}

#[tokio::test]
async fn next_links_are_followed_exactly_as_received() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    let next = format!(
        "{}{RISKY_USERS}?$top=1&$skiptoken=X%2Bab%3D%3D&$filter=riskLevel%20eq%20%27high%27",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .and(query_param("$skiptoken", "X+ab=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(risky_users_page(None)))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(RISKY_USERS))
        .respond_with(ResponseTemplate::new(200).set_body_json(risky_users_page(Some(&next))))
        .with_priority(2)
        .mount(&server)
        .await;
    let client = client(&server);
    let query = ListQuery {
        filter: Some("riskLastUpdatedDateTime ge 2024-05-01T00:00:00Z".into()),
        top: Some(500),
        select: vec!["id".into(), "riskLevel".into()],
    };
    let first = client.list_url(Feed::RiskyUsers, &query);
    let (page, _) = client
        .get_page::<RiskyUser>(Feed::RiskyUsers, first.as_str())
        .await
        .expect("first page");
    let link = page.next_link.expect("a next link");
    assert_eq!(link, next);
    let (page, meta) = client
        .get_page::<RiskyUser>(Feed::RiskyUsers, &link)
        .await
        .expect("second page");
    assert_eq!(page.next_link, None);
    assert_eq!(meta.url, next);

    let sent = requests_to(&server, RISKY_USERS).await;
    assert_eq!(
        sent[0].url.query(),
        Some(
            "$filter=riskLastUpdatedDateTime%20ge%202024-05-01T00:00:00Z&$top=500&$select=id,riskLevel"
        )
    );
    let received: String = sent[1].url[url::Position::BeforePath..].to_string();
    assert_eq!(received, next.trim_start_matches(&server.uri()));
}

#[tokio::test]
async fn foreign_next_links_are_refused_before_any_request() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    let client = client(&server);
    let other_port = {
        let mut url = Url::parse(&server.uri()).expect("uri");
        let port = url.port().expect("port");
        url.set_port(Some(if port == 65535 { 1 } else { port + 1 }))
            .expect("port");
        url.join(RISKY_USERS).expect("url").to_string()
    };
    for link in [
        "https://graph.evil.example/v1.0/identityProtection/riskyUsers?$skiptoken=1",
        other_port.as_str(),
        "not a url",
    ] {
        let error = client
            .get_page::<Value>(Feed::RiskyUsers, link)
            .await
            .expect_err("foreign");
        assert!(
            matches!(&error, GraphError::ForeignNextLink { link: l } if l == link),
            "{error:?}"
        );
        assert_eq!(error.retry_hint(), RetryHint::Fatal);
    }
    let received = server.received_requests().await.expect("recording");
    assert!(received.is_empty(), "no token was requested or sent");
}

#[tokio::test]
async fn revoke_sends_the_ids_and_encodes_guest_upns() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    Mock::given(method("POST"))
        .and(path(
            "/v1.0/users/alice_contoso.com%23EXT%23@fabrikam.com/revokeSignInSessions",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("request-id", "graph-rid-1")
                .set_body_json(json!({
                    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
                    "value": true
                })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let meta = client
        .revoke_sign_in_sessions_once("alice_contoso.com#EXT#@fabrikam.com", CRID)
        .await
        .expect("accepted");
    assert_eq!(meta.status, 200);
    assert_eq!(meta.endpoint, "POST /v1.0/users/{id}/revokeSignInSessions");
    assert_eq!(meta.request_id.as_deref(), Some("graph-rid-1"));
    assert_eq!(meta.client_request_id, CRID);

    let sent = &requests_to(
        &server,
        "/v1.0/users/alice_contoso.com%23EXT%23@fabrikam.com/revokeSignInSessions",
    )
    .await[0];
    assert_eq!(header_of(sent, "client-request-id"), CRID);
    assert_eq!(header_of(sent, "return-client-request-id"), "true");
    assert_eq!(header_of(sent, "authorization"), "Bearer tok-1");
    assert_eq!(header_of(sent, "content-length"), "0");
    assert!(sent.body.is_empty());

    let error = client
        .revoke_sign_in_sessions_once("u1", "not-a-guid")
        .await
        .expect_err("ids must be GUIDs");
    assert!(matches!(error, GraphError::Config(_)), "{error:?}");
}

#[tokio::test]
async fn any_2xx_counts_as_accepted() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    Mock::given(method("POST"))
        .and(path("/v1.0/users/u1/revokeSignInSessions"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let meta = client(&server)
        .revoke_sign_in_sessions_once("u1", CRID)
        .await
        .expect("accepted");
    assert_eq!(meta.status, 204);
}

#[tokio::test]
async fn error_fields_come_from_the_documented_error_body() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    // No request-id header: the body's innerError supplies it.
    Mock::given(method("POST"))
        .and(path("/v1.0/users/ghost/revokeSignInSessions"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": {
                "code": "Request_ResourceNotFound",
                "message": "Resource 'ghost' does not exist or one of its queried reference-property objects are not present.",
                "innerError": {
                    "date": "2024-05-01T10:00:00",
                    "request-id": "body-rid",
                    "client-request-id": CRID
                }
            }
        })))
        .mount(&server)
        .await;
    // Both present: the header wins.
    Mock::given(method("PATCH"))
        .and(path("/v1.0/users/u2"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("request-id", "header-rid")
                .set_body_json(json!({
                    "error": {"code": "Request_BadRequest", "message": "bad",
                              "innerError": {"request-id": "body-rid"}}
                })),
        )
        .mount(&server)
        .await;
    let client = client(&server);
    let error = client
        .revoke_sign_in_sessions_once("ghost", CRID)
        .await
        .expect_err("not found");
    assert_eq!(error.status(), Some(404));
    assert_eq!(error.code(), Some("Request_ResourceNotFound"));
    assert_eq!(error.request_id(), Some("body-rid"));
    assert_eq!(error.client_request_id(), Some(CRID));
    assert_eq!(error.retry_hint(), RetryHint::Fatal);
    let text = error.to_string();
    for part in [
        "POST /v1.0/users/{id}/revokeSignInSessions",
        "404",
        "Request_ResourceNotFound",
        "does not exist",
        "body-rid",
        CRID,
    ] {
        assert!(text.contains(part), "{part} missing from {text}");
    }

    let error = client
        .disable_account_once("u2", CRID)
        .await
        .expect_err("bad request");
    assert_eq!(error.request_id(), Some("header-rid"));
    assert_eq!(error.code(), Some("Request_BadRequest"));
}

#[tokio::test]
async fn a_refused_token_is_an_auth_error_without_the_secret() {
    let server = MockServer::start().await;
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/graph-reference-examples/oauth2-token.client-credentials.error.response.json"
    ))
    .expect("fixture");
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains("client_secret=very-secret-value"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(body, "application/json"))
        .mount(&server)
        .await;
    let client = client(&server);
    let error = client
        .revoke_sign_in_sessions_once("u1", CRID)
        .await
        .expect_err("no token");
    match &error {
        GraphError::Auth {
            tenant_id,
            status,
            error,
            description,
            trace_id,
            correlation_id,
        } => {
            assert_eq!(tenant_id, TENANT);
            assert_eq!(*status, Some(400));
            assert_eq!(error, "invalid_scope");
            assert_eq!(
                description,
                "AADSTS70011: The provided value for the input parameter 'scope' is not valid. \
                 The scope https://foo.microsoft.com/.default is not valid."
            );
            assert_eq!(
                trace_id.as_deref(),
                Some("255d1aef-8c98-452f-ac51-23d051240864")
            );
            assert_eq!(
                correlation_id.as_deref(),
                Some("fb3d2015-bc17-4bb9-bb85-30c5cf1aaaa7")
            );
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert_eq!(error.retry_hint(), RetryHint::Fatal);
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        format!("{client:?}"),
    ] {
        assert!(!shown.contains(CLIENT_SECRET), "secret leaked: {shown}");
    }
    assert!(
        requests_to(&server, "/v1.0/users/u1/revokeSignInSessions")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn risky_user_actions_send_user_ids() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    for action in ["confirmCompromised", "dismiss"] {
        Mock::given(method("POST"))
            .and(path(format!("{RISKY_USERS}/{action}")))
            .respond_with(ResponseTemplate::new(204))
            .mount(&server)
            .await;
    }
    let client = client(&server);
    let ids = vec!["u1".to_string(), "u2".to_string()];
    let meta = client
        .confirm_compromised_once(&ids, CRID)
        .await
        .expect("confirmed");
    assert_eq!(meta.status, 204);
    client.dismiss_once(&ids, CRID).await.expect("dismissed");
    for action in ["confirmCompromised", "dismiss"] {
        let sent = requests_to(&server, &format!("{RISKY_USERS}/{action}")).await;
        let body: Value = sent[0].body_json().expect("json body");
        assert_eq!(body, json!({"userIds": ["u1", "u2"]}));
        assert_eq!(header_of(&sent[0], "content-type"), "application/json");
    }

    let too_many: Vec<String> = (0..61).map(|i| format!("u{i}")).collect();
    let error = client
        .dismiss_once(&too_many, CRID)
        .await
        .expect_err("61 ids");
    assert!(error.to_string().contains("at most 60"), "{error}");
    let error = client
        .confirm_compromised_once(&[], CRID)
        .await
        .expect_err("none");
    assert!(matches!(error, GraphError::Config(_)), "{error:?}");
    assert_eq!(
        requests_to(&server, &format!("{RISKY_USERS}/dismiss"))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn disable_patches_account_enabled_false() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    Mock::given(method("PATCH"))
        .and(path("/v1.0/users/u1"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let meta = client(&server)
        .disable_account_once("u1", CRID)
        .await
        .expect("disabled");
    assert_eq!(meta.endpoint, "PATCH /v1.0/users/{id}");
    let sent = requests_to(&server, "/v1.0/users/u1").await;
    let body: Value = sent[0].body_json().expect("json body");
    assert_eq!(body, json!({"accountEnabled": false}));
}

#[tokio::test]
async fn get_user_selects_and_parses() {
    let server = MockServer::start().await;
    mount_tokens(&server, 3600, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/u1"))
        .and(query_param(
            "$select",
            "id,accountEnabled,signInSessionsValidFromDateTime",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "u1",
            "accountEnabled": false,
            "signInSessionsValidFromDateTime": "2024-05-01T10:00:00Z",
            "userType": "Member"
        })))
        .mount(&server)
        .await;
    let (user, meta) = client(&server)
        .get_user_once(
            "u1",
            &["id", "accountEnabled", "signInSessionsValidFromDateTime"],
            CRID,
        )
        .await
        .expect("user");
    assert_eq!(user.account_enabled, Some(false));
    assert_eq!(user.user_type.as_deref(), Some("Member"));
    assert!(user.sign_in_sessions_valid_from_date_time.is_some());
    assert_eq!(meta.endpoint, "GET /v1.0/users/{id}");
}

#[tokio::test]
async fn unreachable_graph_is_a_transport_error_that_backs_off() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let root = Url::parse(&format!("http://{address}")).expect("url");
    let client = GraphClient::new(
        GraphEndpoints {
            tenant_id: TENANT.to_string(),
            authority_url: root.clone(),
            graph_url: root,
        },
        Credential::ClientSecret {
            client_id: "app-id".to_string(),
            client_secret: Secret::new(CLIENT_SECRET),
        },
        &fast_limits(),
        fast_retry(1),
        Duration::from_secs(2),
    )
    .expect("client");
    let error = client
        .revoke_sign_in_sessions_once("u1", CRID)
        .await
        .expect_err("nothing listens");
    assert!(
        matches!(error, GraphError::Transport { timeout: false, .. }),
        "{error:?}"
    );
    assert_eq!(error.retry_hint(), RetryHint::Backoff);
}

#[test]
fn bad_endpoints_and_limits_are_config_errors() {
    let root = Url::parse("https://graph.microsoft.com").expect("url");
    let build = |graph_url: Url, limits: QuotaLimits, tenant: &str| {
        GraphClient::new(
            GraphEndpoints {
                tenant_id: tenant.to_string(),
                authority_url: Url::parse("https://login.microsoftonline.com").expect("url"),
                graph_url,
            },
            Credential::ClientSecret {
                client_id: "app".into(),
                client_secret: Secret::new("s"),
            },
            &limits,
            RetryPolicy::default(),
            Duration::from_secs(5),
        )
        .err()
    };
    assert!(build(root.clone(), QuotaLimits::default(), "t").is_none());
    let cases = [
        build(
            Url::parse("ftp://graph.example").expect("url"),
            QuotaLimits::default(),
            "t",
        ),
        build(
            Url::parse("https://g.example/?x=1").expect("url"),
            QuotaLimits::default(),
            "t",
        ),
        build(root.clone(), QuotaLimits::default(), " "),
        build(
            root,
            QuotaLimits {
                reports: QuotaLimit {
                    requests: 5,
                    per: Duration::ZERO,
                },
                ..QuotaLimits::default()
            },
            "t",
        ),
    ];
    for case in cases {
        assert!(matches!(case, Some(GraphError::Config(_))), "{case:?}");
    }
}

#[test]
fn list_urls_carry_the_odata_options() {
    let client = GraphClient::new(
        GraphEndpoints {
            tenant_id: "t".into(),
            authority_url: Url::parse("https://login.microsoftonline.us").expect("url"),
            graph_url: Url::parse("https://graph.microsoft.us/").expect("url"),
        },
        Credential::ClientSecret {
            client_id: "app".into(),
            client_secret: Secret::new("s"),
        },
        &QuotaLimits::default(),
        RetryPolicy::default(),
        Duration::from_secs(5),
    )
    .expect("client");
    assert_eq!(
        client
            .list_url(Feed::RiskDetections, &ListQuery::default())
            .as_str(),
        "https://graph.microsoft.us/v1.0/identityProtection/riskDetections"
    );
    let query = ListQuery {
        filter: Some("createdDateTime ge 2024-05-01T00:00:00Z".into()),
        top: Some(1000),
        select: Vec::new(),
    };
    assert_eq!(
        client.list_url(Feed::SignIns, &query).as_str(),
        "https://graph.microsoft.us/v1.0/auditLogs/signIns?$filter=createdDateTime%20ge%202024-05-01T00:00:00Z&$top=1000"
    );
}
