//! Feed cursors: how far each feed of each tenant has been evaluated. The engine moves a cursor
//! only after the decisions of the window it covers are committed, as a separate write.

use chrono::{DateTime, Utc};

use crate::error::QueryContext;
use crate::rows::timestamp;
use crate::{Store, StoreError};

impl Store {
    /// The watermark of `feed` for `tenant_id`, or `None` before its first full pass.
    ///
    /// # Errors
    /// When the database cannot be read or the stored watermark is not a timestamp.
    pub async fn cursor(
        &self,
        tenant_id: &str,
        feed: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        sqlx::query_scalar("SELECT watermark FROM cursors WHERE tenant_id = ? AND feed = ?")
            .bind(tenant_id)
            .bind(feed)
            .fetch_optional(&self.pool)
            .await
            .context(&self.path, || {
                format!("read the {feed} cursor of tenant {tenant_id}")
            })
    }

    /// Sets the watermark of `feed` for `tenant_id`. It may move back: re-reading a window only
    /// finds triggers that are already decided.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn set_cursor(
        &self,
        tenant_id: &str,
        feed: &str,
        watermark: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cursors (tenant_id, feed, watermark, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (tenant_id, feed)
             DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at",
        )
        .bind(tenant_id)
        .bind(feed)
        .bind(timestamp(watermark))
        .bind(timestamp(Utc::now()))
        .execute(&self.pool)
        .await
        .map(drop)
        .context(&self.path, || {
            format!("move the {feed} cursor of tenant {tenant_id}")
        })
    }
}
