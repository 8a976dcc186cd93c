//! Documents of a collection: bulk upsert, reads, deletes, counts, scrolls.

use pgvector::Vector;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row, Transaction};
use tracing::Instrument;

use super::commit_tokens::Committed;
use super::filter_sql::push_filter;
use super::sql_identifiers::table;
use super::sql_spans::sql;
use super::{Store, StoreError};
use crate::domain::{
    Collection, Deadline, DocumentBatch, DocumentFields, DocumentUpdate, Filter, MetadataChange, StoredDocument, Tenant,
};

/// Bytes of requested fields a read fetches at once for a stream (a
/// scroll page, the fields of search hits): a page ends once it holds this
/// many, and holds at least one document. What a stream holds in memory, and
/// what a client that stops reading pins, is one such page.
pub(super) const PAGE_BYTES: i64 = 512 * 1024;

/// Documents per Scroll page at most: one statement each.
const SCROLL_PAGE_DOCUMENTS: u64 = 256;

/// A scroll in progress: documents in id order, read a page at a time as the
/// caller asks for them. No connection is held between pages, so a client
/// that stops reading pins only the page in hand.
pub struct ScrollCursor {
    store: Store,
    collection: std::sync::Arc<Collection>,
    tenant: Tenant,
    filter: Option<Filter>,
    fields: DocumentFields,
    after_id: String,
    remaining: u64,
    page: std::vec::IntoIter<StoredDocument>,
    exhausted: bool,
}

impl ScrollCursor {
    /// The next document; `None` at the end, or after an error.
    pub async fn next(&mut self) -> Option<Result<StoredDocument, StoreError>> {
        loop {
            if let Some(document) = self.page.next() {
                return Some(Ok(document));
            }
            if self.exhausted || self.remaining == 0 {
                return None;
            }
            if let Err(error) = self.fetch_page().await {
                self.exhausted = true;
                return Some(Err(error));
            }
        }
    }

    async fn fetch_page(&mut self) -> Result<(), StoreError> {
        let page_size = self.remaining.min(SCROLL_PAGE_DOCUMENTS) as i64;
        let fields = self.fields;
        let mut qb = QueryBuilder::new(
            "SELECT w.* FROM (SELECT s.*, sum(s.size) OVER (ORDER BY s.id ROWS UNBOUNDED PRECEDING) - s.size \
             AS before, count(*) OVER () AS page_rows FROM (",
        );
        qb.push(format_args!(
            "SELECT d.id, d.tenant, {}, {} AS size FROM {} d",
            document_columns(fields),
            size_of_fields(fields),
            table(&self.collection.spec.name)
        ));
        push_scope(&mut qb, &self.tenant, self.filter.as_ref());
        qb.push(" AND d.id > ").push_bind(self.after_id.clone());
        qb.push(" ORDER BY d.id LIMIT ").push_bind(page_size);
        qb.push(") s) w WHERE w.before < ")
            .push_bind(PAGE_BYTES)
            .push(" ORDER BY w.id");
        let rows = qb
            .build()
            .fetch_all(self.store.reachable_pool()?)
            .instrument(sql("SELECT", "scroll page"))
            .await
            .map_err(|e| self.store.missing_table_is_not_found(&self.collection.spec.name, e))?;
        let page_rows: i64 = rows.first().map_or(0, |row| row.get("page_rows"));
        // The page ends early either at the byte budget (more may follow) or
        // at the end of the matching documents.
        self.exhausted = page_rows < page_size && rows.len() as i64 == page_rows;
        let documents: Vec<StoredDocument> = rows.iter().map(|row| read_document(row, fields)).collect();
        if let Some(last) = documents.last() {
            self.after_id.clone_from(&last.id);
        } else {
            self.exhausted = true;
        }
        self.remaining -= documents.len() as u64;
        self.page = documents.into_iter();
        Ok(())
    }
}

impl Store {
    /// Writes a batch on `conn` (inside the caller's transaction) as one
    /// statement over binary arrays: an insert of the new ids and an update
    /// of the existing ones. Returns the number of documents written. The
    /// vectors are moved into the bind, not copied; the rest of the batch
    /// stays with the caller, which needs the texts to name one PostgreSQL
    /// cannot index ([`Store::locate_text_too_long`]).
    pub(super) async fn insert_documents(
        &self,
        conn: &mut PgConnection,
        collection: &Collection,
        tenant: &Tenant,
        batch: &mut DocumentBatch,
    ) -> Result<u64, StoreError> {
        let name = &collection.spec.name;
        let statement = format!(
            "INSERT INTO {} (tenant, id, embedding, body, metadata) \
             SELECT $1, u.id, u.embedding, u.body, u.metadata::jsonb \
             FROM UNNEST($2::text[], $3::vector[], $4::text[], $5::text[]) AS u (id, embedding, body, metadata) \
             ON CONFLICT (tenant, id) DO UPDATE \
             SET embedding = EXCLUDED.embedding, body = EXCLUDED.body, metadata = EXCLUDED.metadata",
            table(name)
        );
        let vectors: Vec<Vector> = std::mem::take(&mut batch.vectors)
            .into_iter()
            .map(Vector::from)
            .collect();
        let written = sqlx::query(&statement)
            .bind(tenant.as_str())
            .bind(&batch.ids)
            .bind(vectors)
            .bind(&batch.texts)
            .bind(&batch.metadata)
            .execute(conn)
            .instrument(sql("INSERT", "upsert documents"))
            .await
            .map_err(|e| self.missing_table_is_not_found(name, e))?
            .rows_affected();
        Ok(written)
    }

    /// The refusal of a batch whose keyword index entries PostgreSQL
    /// refused (`cause`), naming the document: the batch is written by one
    /// statement, whose error names no row. `texts` are the batch's texts
    /// as written, the first at position `offset` of the request. Halves
    /// them until one is left, asking PostgreSQL to index each first half,
    /// so no more text is sent again than the batch holds; runs only after
    /// that refusal, outside the batch's (rolled back) transaction.
    pub(super) async fn locate_text_too_long(
        &self,
        collection: &Collection,
        texts: &[String],
        offset: usize,
        cause: String,
    ) -> StoreError {
        // The first text PostgreSQL refuses lies in texts[first..end].
        let (mut first, mut end) = (0, texts.len());
        while end - first > 1 {
            let middle = first + (end - first) / 2;
            match self.indexes_every_text(collection, &texts[first..middle]).await {
                Ok(true) => first = middle,
                Ok(false) => end = middle,
                Err(error) => return error,
            }
        }
        let found = match texts.get(first) {
            Some(text) => self.indexes_every_text(collection, std::slice::from_ref(text)).await,
            None => Ok(true),
        };
        match found {
            Ok(false) => StoreError::TextTooLongForIndex {
                index: Some(offset + first),
                cause,
            },
            Ok(true) => StoreError::TextTooLongForIndex { index: None, cause },
            Err(error) => error,
        }
    }

    /// Whether PostgreSQL makes a keyword index entry of every text, as the
    /// collection's table would.
    async fn indexes_every_text(&self, collection: &Collection, texts: &[String]) -> Result<bool, StoreError> {
        let indexed = sqlx::query("SELECT count(to_tsvector($1::regconfig, t)) FROM unnest($2::text[]) AS t")
            .bind(collection.spec.language.as_str())
            .bind(texts)
            .execute(self.reachable_pool()?)
            .instrument(sql("SELECT", "find the text too long to index"))
            .await;
        match indexed.map_err(StoreError::from) {
            Ok(_) => Ok(true),
            Err(StoreError::TextTooLongForIndex { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The documents with these ids, in the order of `ids`; missing ids are skipped.
    pub async fn get(
        &self,
        collection: &Collection,
        tenant: &Tenant,
        ids: &[String],
        fields: DocumentFields,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let mut qb = select_documents(collection, fields);
        qb.push(" WHERE d.tenant = ").push_bind(tenant.as_str().to_owned());
        qb.push(" AND d.id = ANY(").push_bind(ids.to_vec()).push("::text[])");
        let rows = qb
            .build()
            .fetch_all(self.reachable_pool()?)
            .instrument(sql("SELECT", "get documents"))
            .await
            .map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))?;
        let mut found: std::collections::HashMap<String, StoredDocument> = rows
            .iter()
            .map(|row| read_document(row, fields))
            .map(|d| (d.id.clone(), d))
            .collect();
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// Deletes the documents with these ids or matching this filter, in a
    /// transaction bounded by `deadline`; how many, and the commit's token.
    pub async fn delete(
        &self,
        collection: &Collection,
        tenant: &Tenant,
        filter: &Filter,
        deadline: Deadline,
    ) -> Result<Committed<u64>, StoreError> {
        let mut qb = QueryBuilder::new(format!("DELETE FROM {} d", table(&collection.spec.name)));
        push_scope(&mut qb, tenant, Some(filter));
        self.write_within(deadline, async |mut tx: Transaction<'_, Postgres>| {
            let deleted = qb
                .build()
                .execute(&mut *tx)
                .instrument(sql("DELETE", "delete documents"))
                .await
                .map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))?
                .rows_affected();
            tx.commit().instrument(sql("COMMIT", "delete documents")).await?;
            Ok(deleted)
        })
        .await
    }

    /// Applies `update` to the documents with these ids or matching this
    /// filter, in a transaction bounded by `deadline`, and returns how many
    /// it changed (with the commit's token). If a merge would make a document's metadata larger than
    /// `max_metadata_bytes` as JSON, nothing is changed.
    pub async fn update(
        &self,
        collection: &Collection,
        tenant: &Tenant,
        filter: &Filter,
        update: &DocumentUpdate,
        max_metadata_bytes: usize,
        deadline: Deadline,
    ) -> Result<Committed<u64>, StoreError> {
        let mut qb = QueryBuilder::new(format!(
            "WITH changed AS (UPDATE {} d SET ",
            table(&collection.spec.name)
        ));
        let mut assignments = qb.separated(", ");
        if let Some(text) = &update.text {
            assignments.push("body = ").push_bind_unseparated(text.clone());
        }
        // Only a merge that sets keys can grow an object; its size is read
        // back (as PostgreSQL prints it, then exactly) only past the limit.
        let mut may_grow = false;
        match &update.metadata {
            MetadataChange::Unchanged => {}
            MetadataChange::Replace(json) => {
                assignments
                    .push("metadata = ")
                    .push_bind_unseparated(json.clone())
                    .push_unseparated("::jsonb");
            }
            MetadataChange::Merge { set, delete } => {
                assignments
                    .push("metadata = (d.metadata - ")
                    .push_bind_unseparated(delete.clone())
                    .push_unseparated("::text[]) || ")
                    .push_bind_unseparated(set.clone())
                    .push_unseparated("::jsonb");
                may_grow = set != "{}";
            }
        }
        push_scope(&mut qb, tenant, Some(filter));
        qb.push(" RETURNING d.id, ");
        if may_grow {
            qb.push("CASE WHEN octet_length(d.metadata::text) > ")
                .push_bind(max_metadata_bytes as i64)
                .push(" THEN d.metadata END AS large");
        } else {
            qb.push("NULL::jsonb AS large");
        }
        qb.push(
            ") SELECT (SELECT count(*) FROM changed) AS updated, \
             (SELECT jsonb_agg(jsonb_build_array(l.id, l.large)) FROM \
             (SELECT id, large FROM changed WHERE large IS NOT NULL ORDER BY id LIMIT 16) l) AS large",
        );
        self.write_within(deadline, async |mut tx: Transaction<'_, Postgres>| {
            let (updated, large): (i64, Option<Json<Vec<LargeMetadata>>>) = qb
                .build_query_as()
                .fetch_one(&mut *tx)
                .instrument(sql("UPDATE", "update documents"))
                .await
                .map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))?;
            for (id, metadata) in large.map(|l| l.0).unwrap_or_default() {
                let bytes = serde_json::to_string(&metadata).map_or(usize::MAX, |json| json.len());
                if bytes > max_metadata_bytes {
                    // Dropping the transaction rolls the update back.
                    return Err(StoreError::UpdatedMetadataTooLarge {
                        id,
                        bytes,
                        limit: max_metadata_bytes,
                    });
                }
            }
            tx.commit().instrument(sql("COMMIT", "update documents")).await?;
            Ok(updated as u64)
        })
        .await
    }

    /// Counts the documents matching a filter (all, without one).
    pub async fn count(
        &self,
        collection: &Collection,
        tenant: &Tenant,
        filter: Option<&Filter>,
    ) -> Result<u64, StoreError> {
        let mut qb = QueryBuilder::new(format!("SELECT count(*) FROM {} d", table(&collection.spec.name)));
        push_scope(&mut qb, tenant, filter);
        let count: i64 = qb
            .build_query_scalar()
            .fetch_one(self.reachable_pool()?)
            .instrument(sql("SELECT", "count documents"))
            .await
            .map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))?;
        Ok(count as u64)
    }

    /// The documents matching `filter` with ids after `after_id`, in id
    /// order, at most `limit` of them (0: all), read page by page. Each page
    /// is its own statement, so a long export holds no transaction open.
    pub fn scroll(
        &self,
        collection: std::sync::Arc<Collection>,
        tenant: Tenant,
        filter: Option<Filter>,
        after_id: String,
        fields: DocumentFields,
        limit: u64,
    ) -> ScrollCursor {
        ScrollCursor {
            store: self.clone(),
            collection,
            tenant,
            filter,
            fields,
            after_id,
            remaining: if limit == 0 { u64::MAX } else { limit },
            page: Vec::new().into_iter(),
            exhausted: false,
        }
    }
}

/// A document whose metadata an update may have made too large: its id
/// and the metadata, to measure as the limit does.
type LargeMetadata = (String, serde_json::Value);

/// `WHERE d.tenant = $ AND (filter)`
pub(super) fn push_scope(qb: &mut QueryBuilder<'_, Postgres>, tenant: &Tenant, filter: Option<&Filter>) {
    qb.push(" WHERE d.tenant = ").push_bind(tenant.as_str().to_owned());
    if let Some(filter) = filter {
        qb.push(" AND ");
        push_filter(qb, filter, "d");
    }
}

/// `SELECT d.id, d.tenant, <requested fields> FROM table d`
fn select_documents(collection: &Collection, fields: DocumentFields) -> QueryBuilder<'static, Postgres> {
    QueryBuilder::new(format!(
        "SELECT d.id, d.tenant, {} FROM {} d",
        document_columns(fields),
        table(&collection.spec.name)
    ))
}

/// `body, metadata, embedding` of the document `d`: the requested ones, NULL for the rest.
pub(super) fn document_columns(fields: DocumentFields) -> String {
    format!(
        "{}, {}, {}",
        if fields.text { "d.body" } else { "NULL::text AS body" },
        if fields.metadata {
            "d.metadata"
        } else {
            "NULL::jsonb AS metadata"
        },
        if fields.vector {
            "d.embedding"
        } else {
            "NULL::vector AS embedding"
        },
    )
}

/// Bytes the requested fields of the document `d` take, read without
/// detoasting them: what a page of them costs to hold.
pub(super) fn size_of_fields(fields: DocumentFields) -> String {
    let mut size = String::from("(64 + octet_length(d.id)");
    if fields.text {
        size.push_str(" + octet_length(d.body)");
    }
    if fields.metadata {
        size.push_str(" + coalesce(pg_column_size(d.metadata), 0)");
    }
    if fields.vector {
        size.push_str(" + pg_column_size(d.embedding)");
    }
    size.push_str(")::int8");
    size
}

fn read_document(row: &PgRow, fields: DocumentFields) -> StoredDocument {
    StoredDocument {
        id: row.get("id"),
        tenant: row.get("tenant"),
        text: fields.text.then(|| row.get("body")),
        metadata: fields
            .metadata
            .then(|| row.get::<Json<serde_json::Value>, _>("metadata").0),
        vector: fields.vector.then(|| row.get::<Vector, _>("embedding").to_vec()),
    }
}
