//! The safety gate between a rule match and the outbox.
//!
//! Every match is recorded; the gate only decides the mode it is recorded with. Protected
//! principals win over everything, then dry-run (global or per rule), then the per-rule cooldown.

use chrono::{DateTime, Utc};
use store::{DecisionMode, Store, StoreError};

/// The decision the gate reached for one match, with the reason an operator reads in the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// How the decision is recorded.
    pub mode: DecisionMode,
    /// Why it is not enforced, when it is not.
    pub reason: Option<String>,
}

/// Protected principals and the global dry-run switch, from the config's `safety:` section.
#[derive(Debug, Clone)]
pub struct SafetyGate {
    dry_run: bool,
    /// Lower-cased UPNs and object ids.
    protected: Vec<String>,
}

/// The user a match is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub user_principal_name: Option<&'a str>,
}

impl SafetyGate {
    pub fn new(config: &crate::config::SafetyConfig) -> Self {
        Self {
            dry_run: config.dry_run,
            protected: config
                .protected_users
                .iter()
                .map(|p| p.trim().to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether this user is on the protected list (by object id or UPN, case-insensitive).
    pub fn protected_entry(&self, subject: Subject<'_>) -> Option<&str> {
        let id = subject.user_id.to_ascii_lowercase();
        let upn = subject.user_principal_name.map(str::to_ascii_lowercase);
        self.protected
            .iter()
            .find(|p| **p == id || Some(p.as_str()) == upn.as_deref())
            .map(String::as_str)
    }

    /// Decides how a match of `rule` on `subject` is recorded.
    ///
    /// # Errors
    /// When the cooldown cannot be looked up in the store.
    pub async fn judge(
        &self,
        store: &Store,
        tenant_id: &str,
        rule: &rules::Rule,
        subject: Subject<'_>,
        now: DateTime<Utc>,
    ) -> Result<Verdict, StoreError> {
        if let Some(entry) = self.protected_entry(subject) {
            return Ok(Verdict {
                mode: DecisionMode::Protected,
                reason: Some(format!("protected principal {entry}")),
            });
        }
        if self.dry_run {
            return Ok(dry_run("global dry-run (safety.dry_run)"));
        }
        if rule.mode == rules::Mode::DryRun {
            return Ok(dry_run("rule mode dry_run"));
        }
        let since = crate::feeds::earlier(now, rule.cooldown);
        if store
            .enforced_since(tenant_id, &rule.id, subject.user_id, since)
            .await?
        {
            return Ok(Verdict {
                mode: DecisionMode::Cooldown,
                reason: Some(format!(
                    "already actioned by {} within its cooldown of {}",
                    rule.id,
                    humantime::format_duration(rule.cooldown)
                )),
            });
        }
        Ok(Verdict {
            mode: DecisionMode::Enforce,
            reason: None,
        })
    }
}

fn dry_run(reason: &str) -> Verdict {
    Verdict {
        mode: DecisionMode::DryRun,
        reason: Some(reason.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SafetyConfig;

    fn gate(protected: &[&str]) -> SafetyGate {
        SafetyGate::new(&SafetyConfig {
            dry_run: false,
            protected_users: protected.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn protected_by_upn_is_case_insensitive() {
        let g = gate(&["BreakGlass@Contoso.com"]);
        let s = Subject {
            user_id: "1",
            user_principal_name: Some("breakglass@contoso.COM"),
        };
        assert_eq!(g.protected_entry(s), Some("breakglass@contoso.com"));
    }

    #[test]
    fn protected_by_object_id() {
        let g = gate(&["6E1C7B5A-0000-4000-8000-000000000001"]);
        let s = Subject {
            user_id: "6e1c7b5a-0000-4000-8000-000000000001",
            user_principal_name: None,
        };
        assert!(g.protected_entry(s).is_some());
        let other = Subject {
            user_id: "someone-else",
            user_principal_name: Some("alice@contoso.com"),
        };
        assert!(g.protected_entry(other).is_none());
    }
}
