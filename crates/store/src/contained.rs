//! When a user's containment took effect: the reference point for spotting a successful
//! sign-in after it, which means the attacker holds another credential or token.

use chrono::{DateTime, Utc};

use crate::error::QueryContext;
use crate::{Store, StoreError};

impl Store {
    /// The latest moment a revoke of `user_id`'s sessions in `tenant_id` took effect: the
    /// `signInSessionsValidFromDateTime` read back after it where one was confirmed, else when
    /// the revoke call was sent, else when the action completed. `None` if revokd never
    /// revoked the user's sessions successfully.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn contained_since(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT v.sessions_valid_from, v.revoked_at, a.completed_at
             FROM actions AS a
             JOIN decisions AS d ON d.id = a.decision_id
             LEFT JOIN verifications AS v ON v.action_id = a.id
             WHERE d.tenant_id = ? AND d.user_id = ?
               AND a.kind = 'revoke_sessions' AND a.status = 'succeeded'",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .context(&self.path, || {
            format!("look up when user {user_id} of tenant {tenant_id} was contained")
        })?;
        let parse = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        Ok(rows
            .iter()
            .filter_map(|(valid_from, revoked_at, completed_at)| {
                parse(valid_from)
                    .or_else(|| parse(revoked_at))
                    .or_else(|| parse(completed_at))
            })
            .max())
    }
}
