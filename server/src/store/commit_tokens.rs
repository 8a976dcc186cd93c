//! The consistency token of a write: where in the write-ahead log its
//! commit reached, read on the write's own connection right after COMMIT.
//!
//! `pg_current_wal_insert_lsn()` is the end of the WAL inserted so far; the
//! commit record was inserted before COMMIT returned, so the position read
//! after it is at or past the commit's end. (`pg_current_wal_lsn()`, the
//! position written out, may still be short of it where commits do not
//! wait for the flush.) It may be past it too, by other sessions' WAL: a
//! replica then has to replay a little more before it serves a read with
//! the token, never less.

use sqlx::PgConnection;
use tracing::Instrument;

use super::sql_spans::sql;
use crate::domain::ConsistencyToken;

/// What a write transaction returned, and the consistency token of its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<T> {
    /// What the write returned.
    pub value: T,
    /// A WAL position at or past the commit: a read that must see the
    /// write waits for a replica to replay this far.
    pub token: ConsistencyToken,
}

impl<T> Committed<T> {
    /// The same token, with `f` applied to the value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Committed<U> {
        Committed {
            value: f(self.value),
            token: self.token,
        }
    }
}

/// The WAL position `conn`'s server has inserted up to: after a COMMIT on
/// `conn`, at or past that commit.
pub(super) async fn inserted_position(conn: &mut PgConnection) -> Result<ConsistencyToken, sqlx::Error> {
    let lsn: i64 = sqlx::query_scalar("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::int8")
        .fetch_one(conn)
        .instrument(sql("SELECT", "commit position"))
        .await?;
    Ok(ConsistencyToken::from_lsn(lsn as u64))
}
