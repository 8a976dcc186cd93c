//! Documents of a collection: bulk upsert, reads, deletes, counts, scrolls.

use pgvector::Vector;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};

use super::filter_sql::push_filter;
use super::sql_identifiers::table;
use super::{Store, StoreError};
use crate::domain::{Collection, DocumentBatch, DocumentFields, Filter, StoredDocument, Tenant};

/// One page of a scroll, in id order.
#[derive(Debug, Default)]
pub struct ScrollPage {
    /// The documents.
    pub documents: Vec<StoredDocument>,
}

impl Store {
    /// Writes a batch on `conn` (inside the caller's transaction) as one
    /// statement over binary arrays: an insert of the new ids and an update
    /// of the existing ones. Returns the number of documents written.
    pub(super) async fn insert_documents(
        &self,
        conn: &mut PgConnection,
        collection: &Collection,
        tenant: &Tenant,
        batch: DocumentBatch,
    ) -> Result<u64, StoreError> {
        let name = &collection.spec.name;
        let sql = format!(
            "INSERT INTO {} (tenant, id, embedding, body, metadata) \
             SELECT $1, u.id, u.embedding, u.body, u.metadata::jsonb \
             FROM UNNEST($2::text[], $3::vector[], $4::text[], $5::text[]) AS u (id, embedding, body, metadata) \
             ON CONFLICT (tenant, id) DO UPDATE \
             SET embedding = EXCLUDED.embedding, body = EXCLUDED.body, metadata = EXCLUDED.metadata",
            table(name)
        );
        let vectors: Vec<Vector> = batch.vectors.into_iter().map(Vector::from).collect();
        let written = sqlx::query(&sql)
            .bind(tenant.as_str())
            .bind(batch.ids)
            .bind(vectors)
            .bind(batch.texts)
            .bind(batch.metadata)
            .execute(conn)
            .await
            .map_err(|e| self.missing_table_is_not_found(name, e))?
            .rows_affected();
        Ok(written)
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
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))?;
        let mut found: std::collections::HashMap<String, StoredDocument> = rows
            .iter()
            .map(|row| read_document(row, fields))
            .map(|d| (d.id.clone(), d))
            .collect();
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// Deletes the documents with these ids or matching this filter.
    pub async fn delete(&self, collection: &Collection, tenant: &Tenant, filter: &Filter) -> Result<u64, StoreError> {
        let mut qb = QueryBuilder::new(format!("DELETE FROM {} d", table(&collection.spec.name)));
        push_scope(&mut qb, tenant, Some(filter));
        let deleted = qb
            .build()
            .execute(&self.pool)
            .await
            .map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))?
            .rows_affected();
        Ok(deleted)
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
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))?;
        Ok(count as u64)
    }

    /// Up to `page_size` documents with ids after `after_id`, in id order:
    /// one keyset page of a scroll. Each page is its own statement, so a long
    /// export holds no transaction open.
    pub async fn scroll_page(
        &self,
        collection: &Collection,
        tenant: &Tenant,
        filter: Option<&Filter>,
        after_id: &str,
        fields: DocumentFields,
        page_size: u32,
    ) -> Result<ScrollPage, StoreError> {
        let mut qb = select_documents(collection, fields);
        push_scope(&mut qb, tenant, filter);
        qb.push(" AND d.id > ").push_bind(after_id.to_owned());
        qb.push(" ORDER BY d.id LIMIT ").push_bind(i64::from(page_size));
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))?;
        Ok(ScrollPage {
            documents: rows.iter().map(|row| read_document(row, fields)).collect(),
        })
    }
}

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
        "SELECT d.id, d.tenant, {}, {}, {} FROM {} d",
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
        table(&collection.spec.name)
    ))
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
