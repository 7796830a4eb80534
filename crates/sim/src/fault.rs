//! Fault injection: declared in the scenario's `faults:` list or posted at run time to
//! `POST /_sim/faults`, each fault hits a bounded number of matching requests.
//!
//! Faults apply after authentication (an unauthenticated request never consumes one) and before
//! quotas (a faulted request does not draw from a quota bucket). `status`, `throttle` and `drop`
//! replace the call, so it has no effect; `slow` delays the response of a call that did take
//! effect (like a Graph call whose answer arrives late); `malformed` truncates the body of a call
//! that did take effect.

use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

/// One fault: which requests it hits, what it does to them, and how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// The operation whose requests this fault hits.
    pub route: FaultRoute,
    /// What happens to a hit request.
    pub kind: FaultKind,
    /// How many matching requests it hits before it is used up (at least 1).
    #[serde(default = "one", deserialize_with = "at_least_one")]
    pub times: u32,
    /// How many matching requests pass unharmed before it starts hitting.
    #[serde(default)]
    pub skip: u32,
    /// Only requests for this user (object id or UPN, case-insensitive) match; for
    /// confirm/dismiss, a request matches when any of its `userIds` is this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

fn one() -> u32 {
    1
}

fn at_least_one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let times = u32::deserialize(deserializer)?;
    if times == 0 {
        return Err(serde::de::Error::custom(
            "times must be at least 1 (a fault that never hits is not a fault)",
        ));
    }
    Ok(times)
}

/// The operations a fault can target, named like the scenario file spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultRoute {
    /// `POST /{tenant}/oauth2/v2.0/token`.
    Token,
    /// `GET /v1.0/identityProtection/riskyUsers`.
    RiskyUsers,
    /// `GET /v1.0/identityProtection/riskDetections`.
    RiskDetections,
    /// `GET /{v1.0,beta}/auditLogs/signIns`.
    SignIns,
    /// `POST /v1.0/users/{id}/revokeSignInSessions`.
    Revoke,
    /// `POST /v1.0/identityProtection/riskyUsers/confirmCompromised`.
    ConfirmCompromised,
    /// `POST /v1.0/identityProtection/riskyUsers/dismiss`.
    Dismiss,
    /// `PATCH /v1.0/users/{id}`.
    UpdateUser,
    /// `GET /v1.0/users/{id}`.
    GetUser,
    /// `GET /v1.0/users/{id}/transitiveMemberOf`.
    MemberOf,
    /// Every route above.
    Any,
}

/// What a fault does to a request it hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Answer with this HTTP status (400..=599) and a Graph (or OAuth) error body.
    Status {
        /// The status code to serve.
        #[serde(deserialize_with = "error_status")]
        code: u16,
    },
    /// Answer 429 `TooManyRequests`, with `Retry-After` only when `retry_after` is given.
    Throttle {
        /// Seconds for the `Retry-After` header; omitted means no header, like identity protection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Serve the normal answer after this delay (the call itself takes effect at once).
    Slow {
        /// How long to hold the response, as a humantime duration (`3s`, `250ms`).
        #[serde(with = "humantime_serde")]
        delay: Duration,
    },
    /// Serve 200 with the normal JSON body cut in half. (Written `{}` so unknown keys next
    /// to `type` are rejected like everywhere else.)
    Malformed {},
    /// Close the connection without sending any response.
    Drop {},
}

fn error_status<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let code = u16::deserialize(deserializer)?;
    if !(400..=599).contains(&code) {
        return Err(serde::de::Error::custom(format!(
            "status code {code} is not an error status (expected 400..=599)"
        )));
    }
    Ok(code)
}

/// A fault with its remaining budget.
#[derive(Debug)]
struct ActiveFault {
    spec: FaultSpec,
    skip_left: u32,
    times_left: u32,
}

/// The faults still armed, in declaration/injection order.
#[derive(Debug, Default)]
pub(crate) struct Faults(Vec<ActiveFault>);

impl Faults {
    /// Arms a fault behind those already armed.
    pub(crate) fn arm(&mut self, spec: FaultSpec) {
        self.0.push(ActiveFault {
            skip_left: spec.skip,
            times_left: spec.times,
            spec,
        });
    }

    /// The fault that hits this request, if any, consuming one use of it. Every matching fault
    /// still skipping counts the request as one it let pass. `is_user` tells whether a fault's
    /// user filter names a user this request is about.
    pub(crate) fn hit(
        &mut self,
        route: crate::route::Route,
        is_user: &dyn Fn(&str) -> bool,
    ) -> Option<FaultKind> {
        let mut hit = None;
        for fault in &mut self.0 {
            let matches = route.is_targeted_by(fault.spec.route)
                && fault.spec.user.as_deref().is_none_or(is_user);
            if !matches {
                continue;
            }
            if fault.skip_left > 0 {
                fault.skip_left -= 1;
            } else if hit.is_none() && fault.times_left > 0 {
                fault.times_left -= 1;
                hit = Some(fault.spec.kind.clone());
            }
        }
        self.0.retain(|f| f.times_left > 0);
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Route;

    fn spec(json: &str) -> FaultSpec {
        serde_json::from_str(json).expect("valid fault")
    }

    #[test]
    fn skip_then_times_then_exhausted() {
        let mut faults = Faults::default();
        faults.arm(spec(
            r#"{"route":"revoke","kind":{"type":"status","code":503},"times":2,"skip":1}"#,
        ));
        let any_user = |_: &str| true;
        let hits: Vec<_> = (0..4)
            .map(|_| faults.hit(Route::Revoke, &any_user))
            .collect();
        let status = Some(FaultKind::Status { code: 503 });
        assert_eq!(hits, vec![None, status.clone(), status, None]);
    }

    #[test]
    fn route_and_user_filters() {
        let mut faults = Faults::default();
        faults.arm(spec(
            r#"{"route":"any","kind":{"type":"drop"},"user":"a@x"}"#,
        ));
        assert_eq!(faults.hit(Route::Revoke, &|u| u == "b@x"), None);
        assert_eq!(
            faults.hit(Route::GetUser, &|u| u == "a@x"),
            Some(FaultKind::Drop {})
        );
        assert_eq!(faults.hit(Route::GetUser, &|u| u == "a@x"), None);
        faults.arm(spec(r#"{"route":"sign_ins","kind":{"type":"malformed"}}"#));
        assert_eq!(faults.hit(Route::RiskyUsers, &|_| true), None);
        assert_eq!(
            faults.hit(Route::SignIns, &|_| true),
            Some(FaultKind::Malformed {})
        );
    }

    #[test]
    fn json_round_trip_and_validation() {
        let slow = spec(r#"{"route":"token","kind":{"type":"slow","delay":"1s 500ms"}}"#);
        assert_eq!(
            slow.kind,
            FaultKind::Slow {
                delay: Duration::from_millis(1500)
            }
        );
        let text = serde_json::to_string(&slow).expect("serializes");
        assert_eq!(
            serde_json::from_str::<FaultSpec>(&text).expect("parses"),
            slow
        );
        for bad in [
            r#"{"route":"token","kind":{"type":"status","code":200}}"#,
            r#"{"route":"token","kind":{"type":"drop"},"times":0}"#,
            r#"{"route":"nowhere","kind":{"type":"drop"}}"#,
            r#"{"route":"token","kind":{"type":"drop","code":5}}"#,
        ] {
            assert!(serde_json::from_str::<FaultSpec>(bad).is_err(), "{bad}");
        }
    }
}
