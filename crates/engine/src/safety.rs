//! The safety gate between a rule match (or an operator's manual request) and the outbox.
//!
//! Every match is recorded; the gate only decides the mode it is recorded with. Protected
//! principals win over everything, then dry-run (global or per rule), then the per-rule
//! cooldown (per user), and last the blast-radius breaker, which the store applies in the same
//! transaction that records the decision: when more than `safety.breaker.max_actions` users of
//! a tenant would be actioned within `safety.breaker.window`, that decision and every later one
//! are recorded as `held`, a `breaker_tripped` daemon event is written, and an alert goes to
//! the notify sinks. Only `revokd resume` releases held actions and closes the breaker; the
//! state lives in the audit database, so a restart does not reset it.

use chrono::{DateTime, Utc};
use serde_json::json;
use store::{BreakerLimit, DecisionMode, GatedDecision, NewDecision, Store, StoreError};
use tracing::{error, warn};

use crate::notify::{Notification, Notifier, NotifyEvent};

/// The decision the gate reached for one match, with the reason an operator reads in the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// How the decision is recorded.
    pub mode: DecisionMode,
    /// Why it is not enforced, when it is not.
    pub reason: Option<String>,
}

/// Protected principals, the global dry-run switch and the breaker, from the config's
/// `safety:` section, with the notifier that carries breaker alerts.
#[derive(Debug, Clone)]
pub struct SafetyGate {
    dry_run: bool,
    /// Lower-cased UPNs and object ids.
    protected: Vec<String>,
    breaker: BreakerLimit,
    notifier: Notifier,
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
            breaker: BreakerLimit {
                max_actions: config.breaker.max_actions,
                window: config.breaker.window,
            },
            notifier: Notifier::disabled(),
        }
    }

    /// The same gate, sending breaker alerts through `notifier`.
    #[must_use]
    pub fn with_notifier(mut self, notifier: Notifier) -> Self {
        self.notifier = notifier;
        self
    }

    /// The same gate with the breaker's limit raised (or lowered) to `max_actions`, for one
    /// operator-run bulk containment (`revokd revoke --max-actions N`).
    #[must_use]
    pub fn with_max_actions(mut self, max_actions: u32) -> Self {
        self.breaker.max_actions = max_actions.max(1);
        self
    }

    /// The breaker's limit.
    pub fn breaker(&self) -> BreakerLimit {
        self.breaker
    }

    /// Whether global dry-run is on.
    pub fn dry_run(&self) -> bool {
        self.dry_run
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

    /// Decides how a match of `rule` on `subject` is recorded (before the breaker, which
    /// [`Self::record`] applies).
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
        if let Some(verdict) = self.judge_manual(subject) {
            return Ok(verdict);
        }
        if rule.mode == rules::Mode::DryRun {
            return Ok(dry_run("rule mode dry_run"));
        }
        let since = crate::feeds::earlier(now, rule.cooldown);
        if store
            .actioned_since(tenant_id, &rule.id, subject.user_id, since)
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
        Ok(enforce())
    }

    /// The checks that apply to an operator's manual request too: protected principals, then
    /// global dry-run. `None` means nothing stops it here.
    fn judge_manual(&self, subject: Subject<'_>) -> Option<Verdict> {
        if let Some(entry) = self.protected_entry(subject) {
            return Some(Verdict {
                mode: DecisionMode::Protected,
                reason: Some(format!("protected principal {entry}")),
            });
        }
        self.dry_run
            .then(|| dry_run("global dry-run (safety.dry_run)"))
    }

    /// Decides how an operator's manual request on `subject` is recorded: protected principals
    /// and global dry-run apply; a manual request has no rule, so no rule mode or cooldown.
    pub fn judge_operator(&self, subject: Subject<'_>) -> Verdict {
        self.judge_manual(subject).unwrap_or_else(enforce)
    }

    /// Records a judged decision through the blast-radius breaker. When this decision trips it,
    /// the trip is logged and an alert goes to the notify sinks (never waited for).
    ///
    /// # Errors
    /// When the store cannot record the decision.
    pub async fn record(
        &self,
        store: &Store,
        decision: &NewDecision,
    ) -> Result<GatedDecision, StoreError> {
        let gated = store.record_decision_gated(decision, &self.breaker).await?;
        if let Some(trip) = &gated.tripped {
            error!(
                tenant = %trip.tenant_id,
                max_actions = trip.max_actions,
                window_secs = trip.window_secs,
                users_in_window = trip.users_in_window,
                first_held_user = %trip.first_held_user,
                rule = %trip.rule_id,
                "blast-radius breaker tripped: enforcement paused until `revokd resume`"
            );
            self.notifier.send(Notification::new(
                NotifyEvent::BreakerTripped,
                &trip.tenant_id,
                format!(
                    "blast-radius breaker tripped: more than {} users would be actioned within {}s (rule {}); enforcement is paused and later decisions are held until an operator runs `revokd resume`",
                    trip.max_actions, trip.window_secs, trip.rule_id
                ),
                json!({
                    "max_actions": trip.max_actions,
                    "window_secs": trip.window_secs,
                    "users_in_window": trip.users_in_window,
                    "first_held_user": trip.first_held_user,
                    "rule_id": trip.rule_id,
                    "tripped_at": trip.tripped_at,
                }),
            ));
        } else if gated.mode == DecisionMode::Held && decision.mode == DecisionMode::Enforce {
            warn!(
                rule = %decision.rule_id,
                user = decision.user_principal_name.as_deref().unwrap_or(&decision.user_id),
                "decision held: the blast-radius breaker is open"
            );
        }
        Ok(gated)
    }
}

fn enforce() -> Verdict {
    Verdict {
        mode: DecisionMode::Enforce,
        reason: None,
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
            ..SafetyConfig::default()
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

    #[test]
    fn operator_requests_obey_protection_then_dry_run() {
        let subject = Subject {
            user_id: "1",
            user_principal_name: Some("breakglass@contoso.com"),
        };
        let g = gate(&["breakglass@contoso.com"]);
        assert_eq!(g.judge_operator(subject).mode, DecisionMode::Protected);
        let other = Subject {
            user_id: "2",
            user_principal_name: Some("ana@contoso.com"),
        };
        assert_eq!(g.judge_operator(other).mode, DecisionMode::Enforce);
        let dry = SafetyGate::new(&SafetyConfig {
            dry_run: true,
            protected_users: vec!["breakglass@contoso.com".into()],
            ..SafetyConfig::default()
        });
        assert_eq!(dry.judge_operator(other).mode, DecisionMode::DryRun);
        assert_eq!(dry.judge_operator(subject).mode, DecisionMode::Protected);
    }

    #[test]
    fn the_breaker_limit_defaults_conservatively_and_can_be_raised_for_a_run() {
        let g = gate(&[]);
        assert_eq!(g.breaker().max_actions, 50);
        assert_eq!(g.breaker().window, std::time::Duration::from_secs(600));
        assert_eq!(g.with_max_actions(5000).breaker().max_actions, 5000);
    }
}
