//! Microsoft's published example payloads parse with our models, defects and all.
//!
//! Every `*.json` under `tests/fixtures/graph-reference-examples/` is parsed with the model its
//! file name names; a new fixture without a known prefix fails the test, so it cannot be
//! silently skipped. The known defects (see that folder's SOURCES.md) are asserted on purpose.

use std::fs;
use std::path::{Path, PathBuf};

use graph::models::{
    AppliedConditionalAccessPolicyResult, BooleanValue, ConditionalAccessStatus, GraphErrorBody,
    Page, RiskDetail, RiskDetection, RiskDetectionTimingType, RiskLevel, RiskState, RiskyUser,
    SignIn, TokenErrorResponse, TokenIssuerType, TokenResponse, UserIdsRequest,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph-reference-examples")
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = fs::read_to_string(path).expect("fixture is readable");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_published_example_parses_with_its_model() {
    let mut checked = Vec::new();
    for entry in fs::read_dir(fixtures()).expect("fixtures dir exists") {
        let path = entry.expect("dir entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".json") {
            continue;
        }
        match name {
            n if n.starts_with("riskyusers-list.") => check_risky_users(n, parse(&path)),
            n if n.starts_with("riskdetections-list.") => check_risk_detections(parse(&path)),
            n if n.starts_with("signins-list.") => check_sign_ins(parse(&path)),
            n if n.starts_with("riskyusers-confirmcompromised.")
                || n.starts_with("riskyusers-dismiss.") =>
            {
                let body: UserIdsRequest = parse(&path);
                assert_eq!(body.user_ids.len(), 2, "{n}");
            }
            n if n.starts_with("user-revokesigninsessions.") => {
                assert!(parse::<BooleanValue>(&path).value);
            }
            n if n.starts_with("graph-error.") => check_graph_error(parse(&path)),
            n if n.starts_with("oauth2-token.") && n.contains(".success.") => {
                let token: TokenResponse = parse(&path);
                assert_eq!(token.token_type, "Bearer");
                assert_eq!(token.expires_in, 3599);
                assert!(token.access_token.expose().starts_with("eyJ0eX"));
            }
            n if n.starts_with("oauth2-token.") && n.contains(".error.") => {
                check_token_error(parse(&path));
            }
            other => panic!("no model is mapped to fixture {other}: add it to this test"),
        }
        checked.push(name.to_string());
    }
    assert_eq!(checked.len(), 10, "fixtures checked: {checked:?}");
}

fn check_risky_users(name: &str, page: Page<RiskyUser>) {
    assert_eq!(page.value.len(), 1, "{name}");
    let user = &page.value[0];
    if name.contains(".v1.0.") {
        // Published with type placeholders: the record survives, the bad values do not.
        assert_eq!(user.id, "d1d4a5d4-a5d4-d1d4-d4a5-d4d1d4a5d4d1");
        assert_eq!(user.is_deleted, None);
        assert_eq!(user.risk_last_updated_date_time, None);
        assert_eq!(user.risk_level, Some(RiskLevel::Other("String".into())));
        assert_eq!(user.user_principal_name.as_deref(), Some("String"));
    } else {
        assert_eq!(user.id, "c2b6c2b9-dddc-acd0-2b39-d519d803dbc3");
        assert_eq!(user.is_deleted, Some(true));
        assert_eq!(user.risk_level, Some(RiskLevel::High));
        assert_eq!(user.risk_state, Some(RiskState::AtRisk));
        assert_eq!(
            user.risk_detail,
            Some(RiskDetail::AdminConfirmedSigninCompromised)
        );
        assert_eq!(
            user.risk_last_updated_date_time.map(|t| t.to_rfc3339()),
            Some("2016-01-29T20:03:57.787242600+00:00".into())
        );
        assert_eq!(
            user.user_principal_name.as_deref(),
            Some("alexw@contoso.com")
        );
    }
}

fn check_risk_detections(page: Page<RiskDetection>) {
    let detection = &page.value[0];
    assert_eq!(detection.id, "6a5874ca-abcd-9d82-5ad39bd71600");
    assert_eq!(
        detection.risk_event_type.as_deref(),
        Some("unfamiliarFeatures")
    );
    assert_eq!(detection.risk_level, Some(RiskLevel::Medium));
    assert_eq!(detection.risk_state, Some(RiskState::Remediated));
    assert_eq!(
        detection.detection_timing_type,
        Some(RiskDetectionTimingType::Realtime)
    );
    // Not a CSDL member, kept verbatim.
    assert_eq!(
        detection.token_issuer_type,
        Some(TokenIssuerType::Other("Azure Active Directory".into()))
    );
    // Not a valid IPv4 literal either, but a string is a string.
    assert_eq!(detection.ip_address.as_deref(), Some("123.456.7.89"));
    let location = detection.location.as_ref().expect("location");
    assert_eq!(location.city.as_deref(), Some("Seattle"));
    assert_eq!(location.geo_coordinates, None);
    assert_eq!(
        detection.user_id.as_deref(),
        Some("abcdefab-af90-4edf-ac4c-742ff06735d0")
    );
    assert!(detection.detected_date_time.is_some());
}

fn check_sign_ins(page: Page<SignIn>) {
    let sign_in = &page.value[0];
    assert_eq!(sign_in.id, "b01b1726-0147-425e-a7f7-21f252050400");
    assert_eq!(sign_in.user_id, "d7cc485d-2c1b-422c-98fd-5ce52859a4a3");
    assert_eq!(
        sign_in.created_date_time.to_rfc3339(),
        "2018-11-06T18:48:33.852714700+00:00"
    );
    // Doc typos: "applied" is no member, the misspelled key is ignored, "status" is empty.
    assert_eq!(
        sign_in.conditional_access_status,
        Some(ConditionalAccessStatus::Other("applied".into()))
    );
    assert_eq!(sign_in.risk_level_during_sign_in, None);
    assert_eq!(sign_in.risk_level_aggregated, Some(RiskLevel::None));
    assert_eq!(sign_in.status.as_ref().and_then(|s| s.error_code), None);
    let location = sign_in.location.as_ref().expect("location");
    assert_eq!(location.country_or_region.as_deref(), Some("US"));
    let coordinates = location.geo_coordinates.as_ref().expect("coordinates");
    assert_eq!(coordinates.altitude, None);
    assert_eq!(coordinates.latitude, Some(33.7930908203125));
    let policies = &sign_in.applied_conditional_access_policies;
    assert_eq!(policies.len(), 2);
    assert_eq!(
        policies[0].enforced_grant_controls,
        ["Mfa", "RequireCompliantDevice"]
    );
    assert_eq!(
        policies[1].result,
        Some(AppliedConditionalAccessPolicyResult::NotEnabled)
    );
    assert_eq!(
        sign_in
            .device_detail
            .as_ref()
            .and_then(|d| d.browser.as_deref()),
        Some("Chrome 63.0.3239")
    );
}

fn check_graph_error(body: GraphErrorBody) {
    assert_eq!(body.error.code, "invalidRange");
    assert_eq!(
        body.error.message,
        "Uploaded fragment overlaps with existing data."
    );
    let inner = body.error.inner_error.expect("innerError");
    assert_eq!(inner.request_id.as_deref(), Some("request-id"));
    assert_eq!(inner.date.as_deref(), Some("date-time"));
}

fn check_token_error(body: TokenErrorResponse) {
    assert_eq!(body.error, "invalid_scope");
    assert_eq!(body.error_codes, [70011]);
    assert_eq!(body.timestamp.as_deref(), Some("YYYY-MM-DD HH:MM:SSZ"));
    assert_eq!(
        body.trace_id.as_deref(),
        Some("255d1aef-8c98-452f-ac51-23d051240864")
    );
    assert_eq!(
        body.correlation_id.as_deref(),
        Some("fb3d2015-bc17-4bb9-bb85-30c5cf1aaaa7")
    );
    assert!(
        body.error_description
            .as_deref()
            .is_some_and(|d| d.starts_with("AADSTS70011:"))
    );
}

#[test]
fn the_invalid_example_fails_with_a_position_not_a_panic() {
    let path = fixtures().join("invalid-as-published/signins-list.v1.0.example1.response.json");
    let text = fs::read_to_string(&path).expect("fixture is readable");
    let error =
        serde_json::from_str::<Page<SignIn>>(&text).expect_err("a trailing comma is not JSON");
    // The comma after the last policy ends line 63; serde reports the `]` that follows it.
    assert!(error.is_syntax(), "{error}");
    assert_eq!((error.line(), error.column()), (64, 15), "{error}");
    assert_eq!(error.to_string(), "trailing comma at line 64 column 15");
}
