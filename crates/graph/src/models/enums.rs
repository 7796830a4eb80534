//! Graph's evolvable enumerations as open Rust enums.
//!
//! Microsoft adds members without notice (`unknownFutureValue` marks the point after which new
//! members are only sent on request), so every enum here accepts any string: a member this
//! version does not know becomes `Other(String)` and is written back unchanged. A new risk
//! level must never fail a whole page of risky users.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares an open wire enum: known members, an `Other(String)` catch-all, `as_str`,
/// `Display`, `FromStr`, `From<&str>`/`From<String>` and serde as the bare wire string.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($variant:ident = $wire:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("The wire value `", $wire, "`.")]
                $variant,
            )+
            /// A value this version does not know; kept verbatim so it can be stored and shown.
            Other(String),
        }

        impl $name {
            /// The string Graph uses for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(value) => value,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)+
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $($wire => Self::$variant,)+
                    _ => Self::Other(value),
                }
            }
        }

        impl FromStr for $name {
            type Err = Infallible;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }
    };
}

wire_enum! {
    /// How risky Identity Protection judges a user or a sign-in (`riskLevel`).
    RiskLevel {
        Low = "low",
        Medium = "medium",
        High = "high",
        Hidden = "hidden",
        None = "none",
        UnknownFutureValue = "unknownFutureValue",
    }
}

impl RiskLevel {
    /// Orders the levels that carry a judgement (low 1, medium 2, high 3), so rules can say
    /// "medium or above"; `none`, `hidden` and unknown values have no rank and match no threshold.
    pub fn rank(&self) -> Option<u8> {
        match self {
            Self::Low => Some(1),
            Self::Medium => Some(2),
            Self::High => Some(3),
            _ => None,
        }
    }
}

wire_enum! {
    /// Where a risky user or detection stands in its lifecycle (`riskState`).
    RiskState {
        None = "none",
        ConfirmedSafe = "confirmedSafe",
        Remediated = "remediated",
        Dismissed = "dismissed",
        AtRisk = "atRisk",
        ConfirmedCompromised = "confirmedCompromised",
        UnknownFutureValue = "unknownFutureValue",
    }
}

wire_enum! {
    /// Why the risk state last changed (`riskDetail`): tells an admin action from a user's
    /// own remediation.
    RiskDetail {
        None = "none",
        AdminGeneratedTemporaryPassword = "adminGeneratedTemporaryPassword",
        UserPerformedSecuredPasswordChange = "userPerformedSecuredPasswordChange",
        UserPerformedSecuredPasswordReset = "userPerformedSecuredPasswordReset",
        AdminConfirmedSigninSafe = "adminConfirmedSigninSafe",
        AiConfirmedSigninSafe = "aiConfirmedSigninSafe",
        UserPassedMfaDrivenByRiskBasedPolicy = "userPassedMFADrivenByRiskBasedPolicy",
        AdminDismissedAllRiskForUser = "adminDismissedAllRiskForUser",
        AdminConfirmedSigninCompromised = "adminConfirmedSigninCompromised",
        Hidden = "hidden",
        AdminConfirmedUserCompromised = "adminConfirmedUserCompromised",
        UnknownFutureValue = "unknownFutureValue",
        M365DAdminDismissedDetection = "m365DAdminDismissedDetection",
        AdminConfirmedServicePrincipalCompromised = "adminConfirmedServicePrincipalCompromised",
        AdminDismissedAllRiskForServicePrincipal = "adminDismissedAllRiskForServicePrincipal",
        UserChangedPasswordOnPremises = "userChangedPasswordOnPremises",
        AdminDismissedRiskForSignIn = "adminDismissedRiskForSignIn",
        AdminConfirmedAccountSafe = "adminConfirmedAccountSafe",
        MicrosoftRevokedSessions = "microsoftRevokedSessions",
    }
}

wire_enum! {
    /// The kind of risk detected on a sign-in (`signIn.riskEventTypes`); riskDetection carries
    /// the same names as a plain string.
    RiskEventType {
        UnlikelyTravel = "unlikelyTravel",
        AnonymizedIpAddress = "anonymizedIPAddress",
        MaliciousIpAddress = "maliciousIPAddress",
        UnfamiliarFeatures = "unfamiliarFeatures",
        MalwareInfectedIpAddress = "malwareInfectedIPAddress",
        SuspiciousIpAddress = "suspiciousIPAddress",
        LeakedCredentials = "leakedCredentials",
        InvestigationsThreatIntelligence = "investigationsThreatIntelligence",
        Generic = "generic",
        AdminConfirmedUserCompromised = "adminConfirmedUserCompromised",
        McasImpossibleTravel = "mcasImpossibleTravel",
        McasSuspiciousInboxManipulationRules = "mcasSuspiciousInboxManipulationRules",
        InvestigationsThreatIntelligenceSigninLinked = "investigationsThreatIntelligenceSigninLinked",
        MaliciousIpAddressValidCredentialsBlockedIp = "maliciousIPAddressValidCredentialsBlockedIP",
        UnknownFutureValue = "unknownFutureValue",
    }
}

wire_enum! {
    /// When a detection was computed (`detectionTimingType`): realtime ones arrive within
    /// minutes, offline ones up to 48 hours later.
    RiskDetectionTimingType {
        NotDefined = "notDefined",
        Realtime = "realtime",
        NearRealtime = "nearRealtime",
        Offline = "offline",
        UnknownFutureValue = "unknownFutureValue",
    }
}

wire_enum! {
    /// What a detection is about (`activity`): a sign-in or the user as a whole.
    ActivityType {
        Signin = "signin",
        User = "user",
        UnknownFutureValue = "unknownFutureValue",
        ServicePrincipal = "servicePrincipal",
    }
}

wire_enum! {
    /// Who issued the token of the detected sign-in (`tokenIssuerType`). Note the CSDL spells
    /// `UnknownFutureValue` with a capital U here.
    TokenIssuerType {
        AzureAd = "AzureAD",
        AdFederationServices = "ADFederationServices",
        UnknownFutureValue = "UnknownFutureValue",
        AzureAdBackupAuth = "AzureADBackupAuth",
        AdFederationServicesMfaAdapter = "ADFederationServicesMFAAdapter",
        NpsExtension = "NPSExtension",
    }
}

wire_enum! {
    /// Whether Conditional Access applied to a sign-in (`conditionalAccessStatus`).
    ConditionalAccessStatus {
        Success = "success",
        Failure = "failure",
        NotApplied = "notApplied",
        UnknownFutureValue = "unknownFutureValue",
    }
}

wire_enum! {
    /// What one Conditional Access policy did to a sign-in (`appliedConditionalAccessPolicy.result`).
    AppliedConditionalAccessPolicyResult {
        Success = "success",
        Failure = "failure",
        NotApplied = "notApplied",
        NotEnabled = "notEnabled",
        Unknown = "unknown",
        UnknownFutureValue = "unknownFutureValue",
        ReportOnlySuccess = "reportOnlySuccess",
        ReportOnlyFailure = "reportOnlyFailure",
        ReportOnlyNotApplied = "reportOnlyNotApplied",
        ReportOnlyInterrupted = "reportOnlyInterrupted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_round_trip() {
        for wire in [
            "low",
            "medium",
            "high",
            "hidden",
            "none",
            "unknownFutureValue",
        ] {
            let level: RiskLevel = serde_json::from_str(&format!("\"{wire}\"")).expect("a string");
            assert!(!matches!(level, RiskLevel::Other(_)), "{wire} is a member");
            assert_eq!(level.as_str(), wire);
            assert_eq!(
                serde_json::to_string(&level).expect("serialises"),
                format!("\"{wire}\"")
            );
        }
    }

    #[test]
    fn unknown_values_are_kept_verbatim() {
        let state: RiskState = serde_json::from_str("\"quarantined\"").expect("any string parses");
        assert_eq!(state, RiskState::Other("quarantined".to_string()));
        assert_eq!(state.to_string(), "quarantined");
        assert_eq!(
            serde_json::to_string(&state).expect("serialises"),
            "\"quarantined\""
        );
    }

    #[test]
    fn matching_is_exact_so_the_wire_string_survives() {
        // Graph's enums are case-sensitive; a differently cased value is a different value.
        assert_eq!(
            RiskLevel::from("High"),
            RiskLevel::Other("High".to_string())
        );
        assert_eq!(TokenIssuerType::from("AzureAD"), TokenIssuerType::AzureAd);
        assert_eq!(
            TokenIssuerType::from("Azure Active Directory").as_str(),
            "Azure Active Directory"
        );
    }

    #[test]
    fn non_strings_are_a_type_error() {
        assert!(serde_json::from_str::<RiskLevel>("3").is_err());
        assert!(serde_json::from_str::<RiskLevel>("null").is_err());
    }

    #[test]
    fn rank_orders_only_judged_levels() {
        assert_eq!(RiskLevel::Low.rank(), Some(1));
        assert_eq!(RiskLevel::Medium.rank(), Some(2));
        assert_eq!(RiskLevel::High.rank(), Some(3));
        assert_eq!(RiskLevel::None.rank(), None);
        assert_eq!(RiskLevel::Hidden.rank(), None);
        assert_eq!(RiskLevel::Other("severe".into()).rank(), None);
    }
}
