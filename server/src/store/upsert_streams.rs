//! Writing batches, and the progress of resumable UpsertStreams, kept in
//! `fathom.upsert_streams` and advanced in the same transaction as each
//! batch it records.
//!
//! Every batch transaction first locks what it writes against: the stream's
//! progress row (resumable streams) or the collection's catalog row (all
//! others). Dropping a collection deletes that row, so a drop waits for a
//! batch in flight, and a batch after a drop finds the row gone and writes
//! nothing, even if a collection of the same name exists again.

use sqlx::{PgConnection, Postgres, Transaction};
use tracing::Instrument;

use super::commit_tokens::Committed;
use super::sql_spans::sql;
use super::{Store, StoreError};
use crate::domain::{BatchPosition, Collection, Deadline, DocumentBatch, IdsDigest, StreamId, StreamProgress, Tenant};

/// What writing one batch of a resumable stream came to. Only `Written`
/// changed anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Committed.
    Written {
        /// Documents written: the whole batch, or its part past the committed prefix.
        written: u64,
        /// The stream's committed documents after this batch.
        committed: u64,
    },
    /// Every document of the batch was committed before.
    AlreadyCommitted {
        /// The stream's committed documents.
        committed: u64,
    },
    /// The batch starts past the committed prefix: documents are missing.
    Gap {
        /// The stream's committed documents, where the batch should start.
        committed: u64,
    },
    /// The batch straddles the committed prefix, but its document at the
    /// last committed position has another id: it is other data.
    Mismatch {
        /// The stream's committed documents.
        committed: u64,
        /// The id committed at `committed - 1`.
        last_id: String,
    },
}

impl BatchOutcome {
    /// The stream's committed documents after the batch.
    pub fn committed(&self) -> u64 {
        match self {
            Self::Written { committed, .. }
            | Self::AlreadyCommitted { committed }
            | Self::Gap { committed }
            | Self::Mismatch { committed, .. } => *committed,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ProgressRow {
    tenant: String,
    committed_documents: Option<i64>,
    last_id: String,
    ids_digest: Vec<u8>,
}

impl ProgressRow {
    fn into_progress(self, stream_id: &StreamId) -> Result<StreamProgress, StoreError> {
        let legacy = || StoreError::LegacyStream(stream_id.as_str().to_owned());
        Ok(StreamProgress {
            committed: self.committed_documents.ok_or_else(legacy)? as u64,
            last_id: self.last_id,
            digest: IdsDigest::from_bytes(&self.ids_digest).ok_or_else(legacy)?,
        })
    }
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
        // Two clients opening one new stream id at once: the later INSERT
        // waits for the earlier one's commit, then conflicts, and the SELECT
        // of the same statement, whose snapshot predates that commit, cannot
        // see the row it conflicted with. A second statement can; only when
        // it finds nothing either is the collection gone.
        let mut row = None;
        for _ in 0..2 {
            row = self.insert_or_read_stream(collection, stream_id, tenant).await?;
            if row.is_some() {
                break;
            }
        }
        let Some(row) = row else {
            return Err(self.collection_gone(collection).await);
        };
        if row.tenant != tenant.as_str() {
            return Err(StoreError::StreamTenantMismatch {
                stream_id: stream_id.as_str().to_owned(),
                owner: row.tenant,
            });
        }
        row.into_progress(stream_id)
    }

    /// Records a new stream (if its collection is still there) or reads
    /// the one recorded; None if neither statement part returned a row.
    async fn insert_or_read_stream(
        &self,
        collection: &Collection,
        stream_id: &StreamId,
        tenant: &Tenant,
    ) -> Result<Option<ProgressRow>, StoreError> {
        sqlx::query_as(
            "WITH inserted AS ( \
               INSERT INTO fathom.upsert_streams (collection, collection_id, stream_id, tenant) \
               SELECT name, id, $2, $3 FROM fathom.collections WHERE id = $1 \
               ON CONFLICT (collection, stream_id) DO NOTHING \
               RETURNING tenant, committed_documents, last_id, ids_digest) \
             SELECT * FROM inserted \
             UNION ALL \
             SELECT tenant, committed_documents, last_id, ids_digest FROM fathom.upsert_streams \
             WHERE collection_id = $1 AND stream_id = $2 \
             LIMIT 1",
        )
        .bind(collection.id)
        .bind(stream_id.as_str())
        .bind(tenant.as_str())
        .fetch_optional(self.reachable_pool()?)
        .instrument(sql("INSERT", "open upsert stream"))
        .await
        .map_err(|e| self.error(e))
    }

    /// Writes a batch that no stream position places (a unary Upsert or a
    /// stream without id) in its own transaction, within `deadline`; the
    /// documents written.
    pub async fn upsert(
        &self,
        collection: &Collection,
        tenant: &Tenant,
        mut batch: DocumentBatch,
        deadline: Deadline,
    ) -> Result<Committed<u64>, StoreError> {
        let written = self
            .write_within(deadline, async |mut tx: Transaction<'_, Postgres>| {
                if !lock_collection(&mut tx, collection).await? {
                    return Ok(None);
                }
                let written = self.insert_documents(&mut tx, collection, tenant, &mut batch).await?;
                tx.commit().instrument(sql("COMMIT", "upsert batch")).await?;
                Ok(Some(written))
            })
            .await;
        // Told apart once the write's connection is back in the pool.
        match written {
            Ok(Committed {
                value: Some(written),
                token,
            }) => Ok(Committed { value: written, token }),
            Ok(Committed { value: None, .. }) => Err(self.collection_gone(collection).await),
            Err(StoreError::TextTooLongForIndex { cause, .. }) => {
                Err(self.locate_text_too_long(collection, &batch.texts, 0, cause).await)
            }
            Err(error) => Err(error),
        }
    }

    /// Writes the part of a resumable stream's batch past its committed
    /// prefix, and the stream's new progress, in one transaction, within
    /// `deadline`.
    pub async fn write_stream_batch(
        &self,
        collection: &Collection,
        tenant: &Tenant,
        stream_id: &StreamId,
        position: BatchPosition,
        mut batch: DocumentBatch,
        deadline: Deadline,
    ) -> Result<Committed<BatchOutcome>, StoreError> {
        let outcome = self
            .write_within(deadline, async |tx: Transaction<'_, Postgres>| {
                write_stream_batch_in(self, tx, collection, stream_id, tenant, position, &mut batch).await
            })
            .await;
        // Told apart once the write's connection is back in the pool.
        match outcome {
            Ok(Committed {
                value: Some(outcome),
                token,
            }) => Ok(Committed { value: outcome, token }),
            Ok(Committed { value: None, .. }) => Err(self.collection_gone(collection).await),
            Err(StoreError::TextTooLongForIndex { cause, .. }) => {
                // The batch lost its committed prefix before it was written.
                let skipped = (position.end() - position.first()) as usize - batch.ids.len();
                Err(self
                    .locate_text_too_long(collection, &batch.texts, skipped, cause)
                    .await)
            }
            Err(error) => Err(error),
        }
    }

    /// The error for a collection whose catalog row is gone: dropped, or
    /// dropped and created again under the same name.
    async fn collection_gone(&self, collection: &Collection) -> StoreError {
        let name = &collection.spec.name;
        self.forget(name);
        let pool = match self.reachable_pool() {
            Ok(pool) => pool,
            Err(error) => return error,
        };
        let current: Result<Option<i64>, _> = sqlx::query_scalar("SELECT id FROM fathom.collections WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(pool)
            .instrument(sql("SELECT", "collection id"))
            .await;
        match current {
            Ok(None) => StoreError::CollectionDropped(name.clone()),
            Ok(Some(_)) => StoreError::CollectionRecreated(name.clone()),
            Err(error) => StoreError::from(error),
        }
    }
}

/// The part of [`Store::write_stream_batch`] inside its transaction; None
/// if the stream's row is gone (its collection was dropped).
async fn write_stream_batch_in(
    store: &Store,
    mut tx: Transaction<'_, Postgres>,
    collection: &Collection,
    stream_id: &StreamId,
    tenant: &Tenant,
    position: BatchPosition,
    batch: &mut DocumentBatch,
) -> Result<Option<BatchOutcome>, StoreError> {
    let Some(progress) = lock_stream(&mut tx, collection, stream_id).await? else {
        return Ok(None);
    };
    let progress = progress.into_progress(stream_id)?;
    let committed = progress.committed;
    if position.end() <= committed {
        return Ok(Some(BatchOutcome::AlreadyCommitted { committed }));
    }
    if position.first() > committed {
        return Ok(Some(BatchOutcome::Gap { committed }));
    }
    let overlap = (committed - position.first()) as usize;
    if overlap > 0 && batch.ids[overlap - 1] != progress.last_id {
        return Ok(Some(BatchOutcome::Mismatch {
            committed,
            last_id: progress.last_id,
        }));
    }
    batch.drop_first(overlap);
    let mut digest = progress.digest;
    digest.extend(batch.ids.iter().map(String::as_str));
    let last_id = batch.ids.last().cloned().unwrap_or_default();
    let written = store.insert_documents(&mut tx, collection, tenant, batch).await?;
    let committed = position.end();
    sqlx::query(
        "UPDATE fathom.upsert_streams \
             SET committed_documents = $3, last_id = $4, ids_digest = $5, updated_at = now() \
             WHERE collection_id = $1 AND stream_id = $2",
    )
    .bind(collection.id)
    .bind(stream_id.as_str())
    .bind(committed as i64)
    .bind(last_id)
    .bind(digest.as_bytes().as_slice())
    .execute(&mut *tx)
    .instrument(sql("UPDATE", "record stream progress"))
    .await?;
    tx.commit().instrument(sql("COMMIT", "stream batch")).await?;
    Ok(Some(BatchOutcome::Written { written, committed }))
}

/// Locks the collection's catalog row against a drop until the transaction
/// ends; false if it is gone.
async fn lock_collection(conn: &mut PgConnection, collection: &Collection) -> Result<bool, StoreError> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM fathom.collections WHERE id = $1 FOR KEY SHARE")
        .bind(collection.id)
        .fetch_optional(conn)
        .instrument(sql("SELECT", "lock collection"))
        .await?;
    Ok(found.is_some())
}

/// Locks a stream's progress row, which serialises concurrent writers of one
/// stream id; None if it is gone (its collection was dropped).
async fn lock_stream(
    conn: &mut PgConnection,
    collection: &Collection,
    stream_id: &StreamId,
) -> Result<Option<ProgressRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant, committed_documents, last_id, ids_digest FROM fathom.upsert_streams \
         WHERE collection_id = $1 AND stream_id = $2 FOR UPDATE",
    )
    .bind(collection.id)
    .bind(stream_id.as_str())
    .fetch_optional(conn)
    .instrument(sql("SELECT", "lock stream"))
    .await?)
}
