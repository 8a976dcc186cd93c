//! Read your writes across read replicas: the newest consistency token a
//! client's writes were acknowledged with, sent with its reads.
//!
//! A server with read replicas (`fathom serve --replica-url`) acknowledges
//! every write with a consistency token, and serves a read that carries one
//! from a replica that has replayed that write, or else from the primary.
//! A [`Client`](crate::Client) and its clones keep the newest token they
//! saw and send it with every Get, Count, Scroll and Search that does not
//! choose its consistency itself, as a causally consistent session does.
//! [`Client::without_read_your_writes`](crate::Client::without_read_your_writes)
//! opts out: reads are then eventual (any replica in rotation).

use std::sync::Mutex;

use fathom_api::v1 as pb;

/// The newest token a client's writes were acknowledged with.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// The token, and its WAL position to compare by.
    newest: Mutex<Option<(u64, String)>>,
}

impl Session {
    /// Keeps `token` if it is newer than the one held. Acknowledgements of
    /// concurrent writes arrive in any order, so they are compared; a
    /// token this client cannot read (a server newer than it) replaces
    /// none but an empty session.
    pub(crate) fn observe(&self, token: &str) {
        if token.is_empty() {
            return;
        }
        let position = lsn(token);
        let mut newest = self.newest.lock().expect("not poisoned");
        let newer = match (&*newest, position) {
            (None, _) => true,
            (Some((held, _)), Some(position)) => position > *held,
            (Some(_), None) => false,
        };
        if newer {
            *newest = Some((position.unwrap_or(0), token.to_owned()));
        }
    }

    /// The newest token, if a write was acknowledged with one.
    pub(crate) fn token(&self) -> Option<String> {
        self.newest
            .lock()
            .expect("not poisoned")
            .as_ref()
            .map(|(_, token)| token.clone())
    }

    /// The consistency a read sends: after the newest token, or none (the
    /// server's default, eventual) before any write.
    pub(crate) fn read_consistency(&self) -> Option<pb::ReadConsistency> {
        self.token().map(|token| pb::ReadConsistency {
            choice: Some(pb::read_consistency::Choice::AfterToken(token)),
        })
    }
}

/// The WAL position of a token as fathom writes it (`16/B374D848`).
fn lsn(token: &str) -> Option<u64> {
    let (high, low) = token.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_token_is_kept_whatever_order_acknowledgements_come_in() {
        let session = Session::default();
        assert_eq!(session.read_consistency(), None);
        session.observe("0/2000");
        session.observe("1/0");
        session.observe("0/FFFFFFFF");
        session.observe("");
        assert_eq!(session.token().as_deref(), Some("1/0"));
        assert_eq!(
            session.read_consistency(),
            Some(pb::ReadConsistency {
                choice: Some(pb::read_consistency::Choice::AfterToken("1/0".into()))
            })
        );
    }
}
