//! What the directory says about the user a record concerns: the `user.*` names of conditions.
//!
//! The engine looks the user up (`GET /users/{id}` and `transitiveMemberOf`) only when some
//! rule reads `user.*` ([`crate::RuleSet::reads_user`]) and passes what it got; whatever it does
//! not know stays `None` and reads as absent.

use graph::models::User;
use serde::{Deserialize, Serialize};

/// A user's directory attributes, as far as they are known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserFacts {
    /// `user.department`.
    #[serde(default)]
    pub department: Option<String>,
    /// `user.jobTitle`.
    #[serde(default)]
    pub job_title: Option<String>,
    /// `user.accountEnabled`: false for a disabled account.
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// `user.userType`: `Member` or `Guest`.
    #[serde(default)]
    pub user_type: Option<String>,
    /// `user.onPremisesSyncEnabled`: synced from on-premises Active Directory.
    #[serde(default)]
    pub on_premises_sync_enabled: Option<bool>,
    /// `user.groups`: display names and object ids of the groups the user is a transitive
    /// member of; `None` when membership was not looked up.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

impl UserFacts {
    /// The attributes of a looked-up user; `groups` as read from `transitiveMemberOf`, or
    /// `None` when membership was not fetched.
    pub fn from_user(user: &User, groups: Option<Vec<String>>) -> UserFacts {
        UserFacts {
            department: user.department.clone(),
            job_title: user.job_title.clone(),
            account_enabled: user.account_enabled,
            user_type: user.user_type.clone(),
            on_premises_sync_enabled: user.on_premises_sync_enabled,
            groups,
        }
    }
}
