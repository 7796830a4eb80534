//! The values Microsoft Graph defines for the enumerated fields rules can match on.
//!
//! Rule values are checked against these lists when a rule is loaded, so a typo is an error
//! that names the valid members instead of a rule that silently never fires. Records are not
//! checked against them: Graph enums evolve, and a value unknown here simply matches nothing.
//!
//! Source: the v1.0 CSDL (`msgraph-metadata`, `schemas/v1.0-Prod.csdl`), members in declaration
//! order. `riskDetection.riskEventType` is an open `Edm.String`, so its list adds the values the
//! riskDetection resource page documents to the members of the CSDL `riskEventType` enum.

/// `riskLevel`.
pub(crate) const RISK_LEVEL: &[&str] = &[
    "low",
    "medium",
    "high",
    "hidden",
    "none",
    "unknownFutureValue",
];

/// The levels `min_risk_level` accepts: those [`graph::models::RiskLevel::rank`] orders,
/// lowest first.
pub(crate) const RANKED_RISK_LEVEL: &[&str] = &["low", "medium", "high"];

/// `riskState`.
pub(crate) const RISK_STATE: &[&str] = &[
    "none",
    "confirmedSafe",
    "remediated",
    "dismissed",
    "atRisk",
    "confirmedCompromised",
    "unknownFutureValue",
];

/// `riskDetail`.
pub(crate) const RISK_DETAIL: &[&str] = &[
    "none",
    "adminGeneratedTemporaryPassword",
    "userPerformedSecuredPasswordChange",
    "userPerformedSecuredPasswordReset",
    "adminConfirmedSigninSafe",
    "aiConfirmedSigninSafe",
    "userPassedMFADrivenByRiskBasedPolicy",
    "adminDismissedAllRiskForUser",
    "adminConfirmedSigninCompromised",
    "hidden",
    "adminConfirmedUserCompromised",
    "unknownFutureValue",
    "m365DAdminDismissedDetection",
    "adminConfirmedServicePrincipalCompromised",
    "adminDismissedAllRiskForServicePrincipal",
    "userChangedPasswordOnPremises",
    "adminDismissedRiskForSignIn",
    "adminConfirmedAccountSafe",
    "microsoftRevokedSessions",
];

/// `riskEventType`: the CSDL enum, then the further values documented for riskDetection.
pub(crate) const RISK_EVENT_TYPE: &[&str] = &[
    "unlikelyTravel",
    "anonymizedIPAddress",
    "maliciousIPAddress",
    "unfamiliarFeatures",
    "malwareInfectedIPAddress",
    "suspiciousIPAddress",
    "leakedCredentials",
    "investigationsThreatIntelligence",
    "generic",
    "adminConfirmedUserCompromised",
    "mcasImpossibleTravel",
    "mcasSuspiciousInboxManipulationRules",
    "investigationsThreatIntelligenceSigninLinked",
    "maliciousIPAddressValidCredentialsBlockedIP",
    "unknownFutureValue",
    "anomalousToken",
    "anomalousUserActivity",
    "impossibleTravel",
    "newCountry",
    "passwordSpray",
    "riskyIPAddress",
    "suspiciousAPITraffic",
    "suspiciousBrowser",
    "suspiciousInboxForwarding",
    "tokenIssuerAnomaly",
];

/// `riskDetectionTimingType`.
pub(crate) const DETECTION_TIMING_TYPE: &[&str] = &[
    "notDefined",
    "realtime",
    "nearRealtime",
    "offline",
    "unknownFutureValue",
];

#[cfg(test)]
mod tests {
    use graph::models::RiskLevel;

    use super::*;

    #[test]
    fn ranked_levels_are_exactly_the_levels_graph_ranks_lowest_first() {
        let mut ranked: Vec<&str> = RISK_LEVEL
            .iter()
            .copied()
            .filter(|l| RiskLevel::from(*l).rank().is_some())
            .collect();
        ranked.sort_by_key(|l| RiskLevel::from(*l).rank());
        assert_eq!(ranked, RANKED_RISK_LEVEL);
    }

    #[test]
    fn every_listed_member_is_one_graph_knows() {
        for level in RISK_LEVEL {
            assert!(
                !matches!(RiskLevel::from(*level), RiskLevel::Other(_)),
                "{level}"
            );
        }
    }
}
