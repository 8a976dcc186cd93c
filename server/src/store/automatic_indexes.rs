//! Automatic vector indexes: a collection whose index is built
//! [`IndexBuild::Automatic`]ally starts without its HNSW graph, is searched
//! exactly while small, and gets the graph, built once and in bulk, when its
//! vectors pass the indexing threshold.
//!
//! Two kinds of write can pass it. An UpsertStream is how bulk loads
//! arrive: its batches never start a build, and when it ends
//! [`Store::build_index_if_due`] builds the index before the call ends, so
//! a load goes in without the graph (many times faster than inserting every
//! row into it) and is searchable when its call returns. After an Upsert,
//! [`Store::note_write`] checks in the background, one check at a time per
//! collection (a write during a check makes it check once more), and the
//! Upsert's reply does not wait.
//!
//! Whether a build is due is read from the database every time (the index's
//! catalog row, then at most the threshold's number of rows), so it holds
//! for every fathom on the database and after a crash; collections seen
//! indexed are remembered, so their writes cost nothing more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::Instrument;

use super::sql_identifiers::table;
use super::sql_spans::sql;
use super::{Store, StoreError};
use crate::domain::{Collection, IndexBuild, IndexState, VectorIndex};

/// The indexing threshold unless configured: 16 MiB of vectors (5,462
/// documents of 768 dimensions), where an exact search of one query takes
/// about 17 ms on one core (docs/benchmarks.md).
pub const DEFAULT_INDEXING_THRESHOLD_BYTES: u64 = 16 << 20;

/// The threshold, and what the store knows of each automatic collection.
#[derive(Debug)]
pub(super) struct AutomaticIndexes {
    /// Bytes of single-precision vectors past which a collection is indexed.
    threshold_bytes: u64,
    /// By collection id: a check under way, or an index seen built.
    watched: Mutex<HashMap<i64, Watch>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// A background check runs; `again` if a write came after it started.
    Checking { again: bool },
    /// The index was seen valid: it stays so until the collection is dropped.
    Indexed,
}

impl AutomaticIndexes {
    pub(super) fn new(threshold_bytes: u64) -> Self {
        Self {
            threshold_bytes,
            watched: Mutex::default(),
        }
    }

    /// How many documents of `dimension` components pass the threshold (at least one).
    fn threshold_documents(&self, dimension: u32) -> i64 {
        let per_document = u64::from(dimension.max(1)) * 4;
        self.threshold_bytes.div_ceil(per_document).clamp(1, i64::MAX as u64) as i64
    }

    fn is_indexed(&self, id: i64) -> bool {
        self.watched.lock().expect("watch lock").get(&id) == Some(&Watch::Indexed)
    }

    fn mark_indexed(&self, id: i64) {
        self.watched.lock().expect("watch lock").insert(id, Watch::Indexed);
    }

    /// Whether the caller should start a check: not if the index is known,
    /// nor if a check runs (which is told to check again).
    fn start_check(&self, id: i64) -> bool {
        let mut watched = self.watched.lock().expect("watch lock");
        match watched.get_mut(&id) {
            Some(Watch::Indexed) => false,
            Some(Watch::Checking { again }) => {
                *again = true;
                false
            }
            None => {
                watched.insert(id, Watch::Checking { again: false });
                true
            }
        }
    }

    /// Ends a check; true if a write came during it, so it must run again.
    fn finish_check(&self, id: i64) -> bool {
        let mut watched = self.watched.lock().expect("watch lock");
        match watched.get_mut(&id) {
            Some(Watch::Checking { again }) if *again => {
                *again = false;
                true
            }
            Some(Watch::Checking { .. }) => {
                watched.remove(&id);
                false
            }
            _ => false,
        }
    }
}

impl Store {
    /// Indexes automatic collections once their vectors take `bytes`.
    pub fn with_indexing_threshold(mut self, bytes: u64) -> Self {
        self.automatic_indexes = Arc::new(AutomaticIndexes::new(bytes));
        self
    }

    /// Whether the collection builds its index automatically, has none
    /// (nor one being built), and holds enough documents for it.
    async fn index_due(&self, collection: &Collection) -> Result<bool, StoreError> {
        if collection.spec.index_build != IndexBuild::Automatic
            || collection.spec.index == VectorIndex::None
            || self.automatic_indexes.is_indexed(collection.id)
        {
            return Ok(false);
        }
        match self.index_state(collection).await? {
            IndexState::Ready => {
                self.automatic_indexes.mark_indexed(collection.id);
                return Ok(false);
            }
            IndexState::Building => return Ok(false),
            IndexState::Deferred => {}
        }
        let threshold = self.automatic_indexes.threshold_documents(collection.spec.dimension);
        sqlx::query_scalar(&format!(
            "SELECT count(*) >= $1 FROM (SELECT FROM {} LIMIT $1) AS enough",
            table(&collection.spec.name)
        ))
        .bind(threshold)
        .fetch_one(self.reachable_pool()?)
        .instrument(sql("SELECT", "documents past the indexing threshold"))
        .await
        .map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))
    }

    /// Builds the collection's index if it is built automatically and now
    /// due (see [`IndexBuild::Automatic`]), as an UpsertStream ends; returns
    /// how long the build took, `None` if none was due.
    pub async fn build_index_if_due(&self, collection: &Collection) -> Result<Option<Duration>, StoreError> {
        if !self.index_due(collection).await? {
            return Ok(None);
        }
        let took = self.build_index(collection).await?;
        self.automatic_indexes.mark_indexed(collection.id);
        Ok(Some(took))
    }

    /// After a write outside an UpsertStream: builds the collection's index
    /// in the background if it is due. Returns at once.
    pub fn note_write(&self, collection: &Arc<Collection>) {
        if collection.spec.index_build != IndexBuild::Automatic
            || collection.spec.index == VectorIndex::None
            || !self.automatic_indexes.start_check(collection.id)
        {
            return;
        }
        let store = self.clone();
        let collection = collection.clone();
        tokio::spawn(
            async move {
                loop {
                    match store.build_index_if_due(&collection).await {
                        Ok(Some(took)) => tracing::info!(
                            collection = %collection.spec.name,
                            seconds = took.as_secs_f64(),
                            "built the vector index: the collection passed the indexing threshold"
                        ),
                        Ok(None) => {}
                        Err(error) => tracing::warn!(
                            collection = %collection.spec.name,
                            %error,
                            "could not build the vector index automatically; the next write tries again"
                        ),
                    }
                    if !store.automatic_indexes.finish_check(collection.id) {
                        break;
                    }
                }
            }
            .in_current_span(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_in_documents_rounds_up_and_is_at_least_one() {
        let indexes = AutomaticIndexes::new(DEFAULT_INDEXING_THRESHOLD_BYTES);
        assert_eq!(indexes.threshold_documents(768), 5462);
        assert_eq!(indexes.threshold_documents(1024), 4096);
        assert_eq!(AutomaticIndexes::new(0).threshold_documents(768), 1);
        assert_eq!(AutomaticIndexes::new(100).threshold_documents(4), 7);
    }

    #[test]
    fn a_write_during_a_check_makes_it_check_once_more() {
        let indexes = AutomaticIndexes::new(1);
        assert!(indexes.start_check(7));
        assert!(!indexes.start_check(7), "one check at a time");
        assert!(!indexes.start_check(7));
        assert!(indexes.finish_check(7), "writes came during the check");
        assert!(!indexes.finish_check(7));
        assert!(indexes.start_check(7), "the check ended, so the next write starts one");
    }

    #[test]
    fn an_indexed_collection_is_never_checked_again() {
        let indexes = AutomaticIndexes::new(1);
        assert!(indexes.start_check(3));
        indexes.mark_indexed(3);
        assert!(!indexes.finish_check(3));
        assert!(!indexes.start_check(3));
        assert!(indexes.is_indexed(3));
    }
}
