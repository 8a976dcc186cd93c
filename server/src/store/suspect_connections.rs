//! Pooled connections that go back to the pool only in a known state.

use sqlx::Postgres;
use sqlx::pool::PoolConnection;

/// A pooled connection that is closed when dropped, not pooled again,
/// unless `vouched` says its session is in a known state.
/// A write needs it twice over: while its transaction is being begun
/// (sqlx 0.8.6 counts one only once BEGIN's reply is read, so a caller
/// dropped before it would leave the next borrower inside a transaction
/// nobody owns, sqlx issue 4385), and when it is abandoned mid-statement
/// (its backend is then cancelled, which must never reach the statement of
/// whoever borrowed the connection next).
pub(super) struct SuspectConnection {
    /// The connection.
    pub(super) conn: PoolConnection<Postgres>,
    /// Set once the session is in a known state: the connection may be
    /// pooled again. A field, not a method, so it can be set while a
    /// transaction borrows `conn`.
    pub(super) vouched: bool,
}

impl SuspectConnection {
    /// `conn`, closed on drop until vouched for.
    pub(super) fn new(conn: PoolConnection<Postgres>) -> Self {
        Self { conn, vouched: false }
    }
}

impl Drop for SuspectConnection {
    fn drop(&mut self) {
        if !self.vouched {
            self.conn.close_on_drop();
        }
    }
}
