//! Reads that change a session setting for themselves alone.
//!
//! Every pooled session starts with the settings most reads want (see
//! [`Store::connect_with`]). A read that wants another value sets it with
//! `SET LOCAL` in a transaction of its own, so it ends with that
//! transaction and no later borrower of the connection inherits it; a
//! read that wants none takes a pooled connection and no transaction.

use sqlx::{Connection, PgConnection};

use super::suspect_connections::SuspectConnection;
use super::{Store, StoreError};
use crate::domain::EfSearch;

/// Session settings a read sets for itself alone. The `SET LOCAL` text is
/// formatted from these typed values only, never from request text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ReadSettings {
    /// `hnsw.ef_search`, if it differs from the sessions' own.
    pub(super) ef_search: Option<EfSearch>,
}

impl ReadSettings {
    /// A read as the pooled session is: no transaction of its own.
    pub(super) const NONE: ReadSettings = ReadSettings { ef_search: None };

    /// The settings of a read that scans an HNSW graph `ef_search` wide:
    /// none at [`EfSearch::DEFAULT`], which every pooled session has.
    pub(super) fn hnsw_scan(ef_search: EfSearch) -> Self {
        Self {
            ef_search: (ef_search != EfSearch::DEFAULT).then_some(ef_search),
        }
    }

    /// BEGIN and the `SET LOCAL`s, as one simple query (one round trip);
    /// `None` when there is nothing to set.
    fn begin_statement(self) -> Option<String> {
        let ef_search = self.ef_search?;
        Some(format!("BEGIN; SET LOCAL hnsw.ef_search = {}", ef_search.get()))
    }
}

impl Store {
    /// Runs the read-only `work` on a pooled connection with `settings`:
    /// with none, outside any transaction; otherwise in a transaction begun
    /// with them in BEGIN's round trip, and rolled back, not committed,
    /// once `work` ends or is dropped. The rollback is sent as the
    /// connection goes back to the pool, off the caller's path.
    pub(super) async fn read_with<T>(
        &self,
        settings: ReadSettings,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.reachable_pool()?.acquire().await.map_err(|e| self.error(e))?;
        let Some(begin) = settings.begin_statement() else {
            return work(&mut *conn).await;
        };
        // Closed if BEGIN or a SET LOCAL fails, or the caller goes away first.
        let mut beginning = SuspectConnection::new(conn);
        let mut tx = beginning.conn.begin_with(begin).await.map_err(|e| self.error(e))?;
        // From here sqlx knows the transaction: dropping it queues its ROLLBACK.
        beginning.vouched = true;
        work(&mut *tx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `make test` runs every test with a database (scripts/test.sh).
    fn database_url() -> String {
        std::env::var("FATHOM_TEST_DATABASE_URL").expect("FATHOM_TEST_DATABASE_URL (make test sets it)")
    }

    #[tokio::test]
    async fn a_set_local_that_fails_leaves_the_next_borrower_of_its_connection_working() {
        // One connection, so the next read borrows the one the failure was on.
        let store = Store::connect(&database_url(), 1).await.unwrap();
        // pgvector checks hnsw.ef_search once its library is loaded in the
        // session; before, the setting is a placeholder that takes anything.
        store
            .read_with(ReadSettings::NONE, async |conn| {
                sqlx::query("LOAD 'vector'").execute(conn).await?;
                Ok(())
            })
            .await
            .unwrap();

        let refused = ReadSettings {
            ef_search: Some(EfSearch::unchecked(5000)),
        };
        let error = store.read_with(refused, async |_| Ok(())).await.unwrap_err();
        assert!(format!("{error:?}").contains("hnsw.ef_search"), "{error:?}");

        // Outside any transaction block: SAVEPOINT is refused as such
        // (25P01), not as a statement in an aborted transaction (25P02), and
        // with the sessions' own breadth.
        let (savepoint, ef_search): (Option<String>, String) = store
            .read_with(ReadSettings::NONE, async |conn| {
                let savepoint = match sqlx::query("SAVEPOINT probe").execute(&mut *conn).await {
                    Err(sqlx::Error::Database(error)) => error.code().map(|code| code.into_owned()),
                    other => panic!("SAVEPOINT outside a transaction block: {other:?}"),
                };
                let ef_search = sqlx::query_scalar("SELECT current_setting('hnsw.ef_search')")
                    .fetch_one(conn)
                    .await?;
                Ok((savepoint, ef_search))
            })
            .await
            .unwrap();
        assert_eq!(savepoint.as_deref(), Some("25P01"));
        assert_eq!(ef_search, EfSearch::DEFAULT.get().to_string());
    }
}
