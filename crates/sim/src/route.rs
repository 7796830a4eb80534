//! The Graph and token operations the simulator serves, and what each one is subject to.

use crate::fault::FaultRoute;

/// One simulated operation; decides quota class, action recording and fault matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Token,
    RiskyUsers,
    RiskDetections,
    SignIns,
    Revoke,
    ConfirmCompromised,
    Dismiss,
    UpdateUser,
    GetUser,
    MemberOf,
}

/// Graph's published throttling buckets (DESIGN.md "Quota classes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum QuotaClass {
    IdentityProtection,
    Reports,
    DirectoryWrite,
    DirectoryRead,
}

impl QuotaClass {
    /// The name used in the scenario's `quotas:` section and in the record.
    pub(crate) fn name(self) -> &'static str {
        match self {
            QuotaClass::IdentityProtection => "identity_protection",
            QuotaClass::Reports => "reports",
            QuotaClass::DirectoryWrite => "directory_write",
            QuotaClass::DirectoryRead => "directory_read",
        }
    }

    /// Whether Graph sends `Retry-After` on this class's 429s (identity protection does not).
    pub(crate) fn sends_retry_after(self) -> bool {
        self != QuotaClass::IdentityProtection
    }
}

impl Route {
    /// The quota bucket the call draws from; the token endpoint has none.
    pub(crate) fn quota_class(self) -> Option<QuotaClass> {
        Some(match self {
            Route::Token => return None,
            Route::RiskyUsers
            | Route::RiskDetections
            | Route::ConfirmCompromised
            | Route::Dismiss => QuotaClass::IdentityProtection,
            Route::SignIns => QuotaClass::Reports,
            Route::Revoke | Route::UpdateUser => QuotaClass::DirectoryWrite,
            Route::GetUser | Route::MemberOf => QuotaClass::DirectoryRead,
        })
    }

    /// The action kind recorded for state-changing calls, named after the Graph action.
    pub(crate) fn action_kind(self) -> Option<&'static str> {
        Some(match self {
            Route::Revoke => "revokeSignInSessions",
            Route::ConfirmCompromised => "confirmCompromised",
            Route::Dismiss => "dismiss",
            Route::UpdateUser => "updateUser",
            _ => return None,
        })
    }

    /// Whether a fault declared for `target` applies to this operation.
    pub(crate) fn is_targeted_by(self, target: FaultRoute) -> bool {
        target
            == match self {
                Route::Token => FaultRoute::Token,
                Route::RiskyUsers => FaultRoute::RiskyUsers,
                Route::RiskDetections => FaultRoute::RiskDetections,
                Route::SignIns => FaultRoute::SignIns,
                Route::Revoke => FaultRoute::Revoke,
                Route::ConfirmCompromised => FaultRoute::ConfirmCompromised,
                Route::Dismiss => FaultRoute::Dismiss,
                Route::UpdateUser => FaultRoute::UpdateUser,
                Route::GetUser => FaultRoute::GetUser,
                Route::MemberOf => FaultRoute::MemberOf,
            }
            || target == FaultRoute::Any
    }
}
