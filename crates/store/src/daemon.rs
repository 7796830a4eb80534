//! Daemon lifecycle events (start, stop, reload, breaker trips, resumes), audited like every
//! other write so an investigator can see when revokd was and was not watching.

use chrono::Utc;

use crate::audit::{self, AuditKind, Context};
use crate::error::QueryContext;
use crate::rows::{self, timestamp};
use crate::{Store, StoreError};

impl Store {
    /// Records a lifecycle event of the daemon with a JSON detail (stored in canonical form).
    /// The detail must not contain secrets: it is kept for good.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn record_daemon_event(
        &self,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let op = || format!("record the daemon event {kind}");
        let mut tx = self.begin_write().await.context(&self.path, op)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO daemon_events (at, kind, detail_json) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(timestamp(Utc::now()))
        .bind(kind)
        .bind(audit::canonical_json(detail))
        .fetch_one(&mut *tx)
        .await
        .context(&self.path, op)?;
        let row = rows::daemon_event(&mut tx, id)
            .await
            .context(&self.path, op)?;
        audit::append(&mut tx, AuditKind::DaemonEvent, Context::default(), &row)
            .await
            .context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)
    }
}
