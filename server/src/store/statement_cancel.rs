//! Write transactions bounded by the request's deadline, and cancelled in
//! the database when the request is abandoned.
//!
//! A request future dropped mid-statement (the client reset the call or
//! went away) leaves PostgreSQL running the statement, holding its pooled
//! connection and its locks, until it ends or times out. So each write
//! transaction records its backend's pid and start, and a guard that is
//! dropped before the work ends asks PostgreSQL, on a connection of its
//! own, to cancel that backend's statement. The abandoned connection is
//! closed rather than pooled: no other request's statement ever runs on
//! that backend, so the cancel cannot reach one, however late it lands.

use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use super::commit_tokens::{Committed, inserted_position};
use super::suspect_connections::SuspectConnection;
use super::{Store, StoreError};
use crate::domain::Deadline;

/// Cancels the transaction's running statement when dropped, unless
/// [`StatementCancel::disarm`] was called.
pub(super) struct StatementCancel {
    options: Arc<PgConnectOptions>,
    backend_pid: i32,
    transaction_start_micros: i64,
    armed: bool,
}

impl StatementCancel {
    /// The work ended (committed, failed or refused): nothing to cancel.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for StatementCancel {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let options = self.options.clone();
        let (pid, start) = (self.backend_pid, self.transaction_start_micros);
        runtime.spawn(async move {
            match cancel_statement(&options, pid, start).await {
                Ok(true) => tracing::info!(backend_pid = pid, "cancelled the statement of an abandoned request"),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, backend_pid = pid, "could not cancel an abandoned request's statement")
                }
            }
        });
    }
}

async fn cancel_statement(options: &PgConnectOptions, pid: i32, start: i64) -> Result<bool, sqlx::Error> {
    let mut conn = PgConnection::connect_with(options).await?;
    let cancelled: Option<bool> = sqlx::query_scalar(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
         WHERE pid = $1 AND (extract(epoch FROM xact_start) * 1000000)::int8 = $2",
    )
    .bind(pid)
    .bind(start)
    .fetch_optional(&mut conn)
    .await?;
    conn.close().await?;
    Ok(cancelled.unwrap_or(false))
}

impl Store {
    /// Runs `work` in a transaction bounded by `deadline`, whose statements
    /// may each run until the deadline (or the server's statement timeout,
    /// if sooner). If this future is dropped before `work` ends, the
    /// statement is cancelled in the database and the connection closed.
    /// `work` commits; what it returns comes back with the consistency
    /// token of its commit (a position past it, if it did not commit).
    pub(super) async fn write_within<T>(
        &self,
        deadline: Deadline,
        work: impl AsyncFnOnce(Transaction<'_, Postgres>) -> Result<T, StoreError>,
    ) -> Result<Committed<T>, StoreError> {
        let conn = self.reachable_pool()?.acquire().await.map_err(|e| self.error(e))?;
        // Closed if this future is dropped before the work ends.
        let mut write = SuspectConnection::new(conn);
        let mut tx = write.conn.begin().await.map_err(|e| self.error(e))?;
        let timeout = deadline.statement_timeout(self.statement_timeout);
        let (backend_pid, transaction_start_micros): (i32, i64) = sqlx::query_as(
            "SELECT pg_backend_pid(), (extract(epoch FROM now()) * 1000000)::int8, \
             set_config('statement_timeout', $1, true)",
        )
        .bind(format!("{}ms", timeout.as_millis().max(1)))
        .fetch_one(&mut *tx)
        .await
        .map(|(pid, start, _): (i32, i64, String)| (pid, start))?;
        let cancel = StatementCancel {
            options: self.cancel_options.clone(),
            backend_pid,
            transaction_start_micros,
            armed: true,
        };
        let outcome = work(tx).await;
        cancel.disarm();
        write.vouched = true;
        let value = outcome?;
        let token = inserted_position(&mut write.conn).await.map_err(|e| self.error(e))?;
        Ok(Committed { value, token })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::Deadline;

    /// `make test` runs every test with a database (scripts/test.sh).
    fn database_url() -> String {
        std::env::var("FATHOM_TEST_DATABASE_URL").expect("FATHOM_TEST_DATABASE_URL (make test sets it)")
    }

    /// Whether a backend of this pid is connected.
    async fn connected(observer: &mut PgConnection, pid: i32) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
            .bind(pid)
            .fetch_one(observer)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_write_dropped_between_its_statements_closes_its_connection_instead_of_pooling_it() {
        let store = Store::connect(&database_url(), 1).await.unwrap();
        let (pid_sender, pid) = tokio::sync::oneshot::channel();
        // The write runs a statement, then waits for ever: dropped there, its
        // statement has ended and nothing errs, so only the guard keeps the
        // connection out of the pool.
        let write = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .write_within(Deadline::NONE, async |mut tx: Transaction<'_, Postgres>| {
                        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                            .fetch_one(&mut *tx)
                            .await?;
                        pid_sender.send(pid).unwrap();
                        std::future::pending::<()>().await;
                        Ok(())
                    })
                    .await
            }
        });
        let pid = pid.await.unwrap();
        write.abort();
        let _ = write.await;

        let mut observer = PgConnection::connect(&database_url()).await.unwrap();
        let mut gone = false;
        for _ in 0..300 {
            if !connected(&mut observer, pid).await {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "the abandoned write's backend {pid} is still connected");
        // The pool opens a new connection for the next borrower.
        let next: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_ne!(next, pid);
    }
}
