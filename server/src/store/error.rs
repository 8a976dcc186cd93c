//! Errors of the store layer.

use crate::domain::{AccessDenied, CollectionName, InvalidKind, InvalidRequest};

/// The most bytes of lexemes and positions one tsvector may hold:
/// PostgreSQL's `MAXSTRPOS` (2²⁰ - 1). `to_tsvector` refuses a text whose
/// entry would be larger.
pub const MAX_TSVECTOR_BYTES: usize = (1 << 20) - 1;

/// What can go wrong below the handlers.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No collection of that name.
    #[error("collection {0:?} does not exist")]
    CollectionNotFound(CollectionName),
    /// A collection of that name exists already.
    #[error("collection {0:?} already exists")]
    CollectionExists(CollectionName),
    /// A name a request would give an alias or a collection is taken by
    /// an alias or a collection (they share one namespace).
    #[error("{field}: {by} named {:?} exists already", name.as_str())]
    NameTaken {
        /// The request field holding the name.
        field: String,
        /// The name.
        name: CollectionName,
        /// What has it.
        by: NameHolder,
    },
    /// An alias an action switches or deletes does not exist.
    #[error("{field}: alias {:?} does not exist", alias.as_str())]
    AliasNotFound {
        /// The request field naming the alias.
        field: String,
        /// The alias.
        alias: CollectionName,
    },
    /// The collection an alias action points an alias at does not exist
    /// (or is an alias itself: aliases point at collections).
    #[error("{field}: collection {:?} does not exist{}", collection.as_str(),
        if *is_alias { " (it is an alias; point aliases at collections)" } else { "" })]
    AliasTargetNotFound {
        /// The request field naming the collection.
        field: String,
        /// The name.
        collection: CollectionName,
        /// Whether the name is an alias's.
        is_alias: bool,
    },
    /// The key may not touch a collection an alias action names or moves
    /// an alias away from.
    #[error("{field}: {denied}")]
    AliasDenied {
        /// The request field whose collection the key may not touch.
        field: String,
        /// The refusal.
        denied: AccessDenied,
    },
    /// The text-search configuration does not exist in the database.
    #[error("text language {0:?} is not a text-search configuration of this database")]
    UnknownLanguage(String),
    /// A resumable stream id is in use by another tenant.
    #[error("stream id {stream_id:?} belongs to tenant {owner:?}")]
    StreamTenantMismatch {
        /// The stream id.
        stream_id: String,
        /// The tenant that opened it first.
        owner: String,
    },
    /// The collection was dropped after the request found it.
    #[error("collection {0:?} was dropped")]
    CollectionDropped(CollectionName),
    /// The collection was dropped and created again after the request found it.
    #[error("collection {0:?} was dropped and created again")]
    CollectionRecreated(CollectionName),
    /// A document's text yields a tsvector above PostgreSQL's limit,
    /// [`MAX_TSVECTOR_BYTES`] (with many distinct words, below the text size
    /// limit). Nothing of the batch was written.
    #[error(
        "text makes a keyword index entry larger than PostgreSQL allows ({cause}): its distinct words and \
         their positions must fit in {MAX_TSVECTOR_BYTES} bytes, which a text of many distinct words reaches \
         below the 1 MiB text limit (about 100,000 distinct words); shorten or split the text"
    )]
    TextTooLongForIndex {
        /// The document's position in the request, once found.
        index: Option<usize>,
        /// PostgreSQL's words, with the entry's size.
        cause: String,
    },
    /// An update would make a document's metadata larger than the limit.
    /// Nothing was changed.
    #[error(
        "the update would make document {id:?}'s metadata {bytes} bytes as JSON; the limit is {limit}: set fewer \
         or smaller keys, or delete some"
    )]
    UpdatedMetadataTooLarge {
        /// The first such document, in id order.
        id: String,
        /// Its metadata's size after the update.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A stream id recorded by a Fathom that counted batches, not documents.
    #[error("stream id {0:?} was recorded by an older Fathom by batch number; its position is unknown")]
    LegacyStream(String),
    /// The database named by the URL could not be connected to at startup.
    #[error("cannot connect to PostgreSQL at {address}: {cause}")]
    CannotConnect {
        /// host:port from the URL.
        address: String,
        /// Why, in PostgreSQL's or the operating system's words.
        cause: String,
    },
    /// Every pooled connection stayed busy for as long as a request may
    /// wait for one: the server is overloaded, the database is not down.
    #[error("every pooled database connection stayed busy for {waited:?}")]
    PoolExhausted {
        /// How long the request waited.
        waited: std::time::Duration,
    },
    /// PostgreSQL cancelled a statement that ran past the statement timeout.
    #[error("a statement ran longer than the server's statement timeout")]
    StatementTimeout,
    /// The database cannot be reached or went away.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The health probe lost the database and has not reached it since.
    #[error("the database is down: the health probe cannot reach it")]
    DatabaseDown,
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A background task (an index build, a BEGIN) panicked or was cancelled.
    #[error("a background task failed: {0}")]
    TaskFailed(String),
    /// A stored row breaks a rule its table's constraints should have kept.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

/// What holds a name: a collection or an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameHolder {
    /// A collection.
    Collection,
    /// An alias.
    Alias,
}

impl std::fmt::Display for NameHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameHolder::Collection => "a collection",
            NameHolder::Alias => "an alias",
        })
    }
}

impl StoreError {
    /// The refusal of the request's data this error amounts to, if it is
    /// one: the request can never succeed as it is, and nothing was written.
    pub fn as_refusal(&self) -> Option<InvalidRequest> {
        match self {
            StoreError::TextTooLongForIndex { index, .. } => Some(InvalidRequest::with_kind(
                InvalidKind::InvalidArgument,
                index.map_or_else(|| "documents".to_owned(), |i| format!("documents[{i}].text")),
                self.to_string(),
            )),
            StoreError::UpdatedMetadataTooLarge { .. } => Some(InvalidRequest::with_kind(
                InvalidKind::ResourceExhausted,
                "set_metadata",
                self.to_string(),
            )),
            _ => None,
        }
    }

    /// Whether the error means the database is unreachable, so a retry later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::CannotConnect { .. } | StoreError::DatabaseDown
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error
            && db.code().as_deref() == Some("54000")
            && db.message().contains("tsvector")
        {
            return StoreError::TextTooLongForIndex {
                index: None,
                cause: db.message().to_owned(),
            };
        }
        if let sqlx::Error::Database(db) = &error
            && db.code().as_deref() == Some("57014")
            && db.message().contains("statement timeout")
        {
            return StoreError::StatementTimeout;
        }
        let unavailable = match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            // Told apart from an exhausted pool by `Store::error`, where the pool is known.
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // Class 08: connection exceptions; 57P0x: shutdown and
                // cannot-connect-now; 53300: too many connections.
                code.starts_with("08") || code.starts_with("57P0") || code == "53300"
            }),
            _ => false,
        };
        if unavailable {
            StoreError::Unavailable(error)
        } else {
            StoreError::Database(error)
        }
    }
}

/// Whether a database error says a table is missing (a collection dropped
/// behind this server's back).
pub fn is_undefined_table(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01"))
}
