//! Progress of resumable UpsertStreams, kept in `fathom.upsert_streams` and
//! advanced in the same transaction as each batch it records.

use sqlx::PgConnection;

use super::{Store, StoreError};
use crate::domain::{Collection, StreamId, Tenant};

/// Where a stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamProgress {
    /// The highest committed sequence number (0 before the first batch).
    pub last_sequence: u64,
}

impl Store {
    /// Opens (or re-opens) a resumable stream and says where it stands. A
    /// stream id belongs to the tenant that first used it.
    pub async fn open_upsert_stream(
        &self,
        collection: &Collection,
        stream_id: &StreamId,
        tenant: &Tenant,
    ) -> Result<StreamProgress, StoreError> {
        let (owner, last_sequence): (String, i64) = sqlx::query_as(
            "WITH inserted AS ( \
               INSERT INTO fathom.upsert_streams (collection, stream_id, tenant) VALUES ($1, $2, $3) \
               ON CONFLICT (collection, stream_id) DO NOTHING \
               RETURNING tenant, last_sequence) \
             SELECT tenant, last_sequence FROM inserted \
             UNION ALL \
             SELECT tenant, last_sequence FROM fathom.upsert_streams WHERE collection = $1 AND stream_id = $2 \
             LIMIT 1",
        )
        .bind(collection.spec.name.as_str())
        .bind(stream_id.as_str())
        .bind(tenant.as_str())
        .fetch_one(&self.pool)
        .await?;
        if owner != tenant.as_str() {
            return Err(StoreError::StreamTenantMismatch {
                stream_id: stream_id.as_str().to_owned(),
                owner,
            });
        }
        Ok(StreamProgress {
            last_sequence: last_sequence as u64,
        })
    }

    /// Records `sequence` as committed, on `conn` inside the batch's
    /// transaction. Returns false if it (or a later one) was committed
    /// already, by this stream or a concurrent one with the same id: then the
    /// caller must not write the batch. The row lock taken here serialises
    /// concurrent writers of one stream id.
    pub async fn advance_upsert_stream(
        &self,
        conn: &mut PgConnection,
        collection: &Collection,
        stream_id: &StreamId,
        sequence: u64,
    ) -> Result<bool, StoreError> {
        let advanced = sqlx::query(
            "UPDATE fathom.upsert_streams SET last_sequence = $3, updated_at = now() \
             WHERE collection = $1 AND stream_id = $2 AND last_sequence < $3",
        )
        .bind(collection.spec.name.as_str())
        .bind(stream_id.as_str())
        .bind(sequence as i64)
        .execute(conn)
        .await?
        .rows_affected();
        Ok(advanced == 1)
    }

    /// Begins a transaction for one batch. Its COMMIT waits for the WAL
    /// flush whatever the database's default, because an acknowledged batch
    /// must survive a crash of PostgreSQL.
    pub async fn begin_batch(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        Ok(self.pool.begin_with("BEGIN; SET LOCAL synchronous_commit = on").await?)
    }
}
