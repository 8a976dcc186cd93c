//! The collections catalog: `fathom.collections` rows and the per-collection
//! tables and indexes they describe.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use tracing::Instrument;

use super::bm25_indexes::{HAS_BM25_INDEX, bm25_index_ddl};
use super::collection_aliases::claim_name;
use super::commit_tokens::Committed;
use super::error::is_undefined_table;
use super::sql_identifiers::{index, quote_literal, table};
use super::sql_spans::sql;
use super::{Store, StoreError};
use crate::domain::{
    Collection, CollectionName, CollectionSpec, Deadline, IndexBuild, IndexPrecision, KeywordRanking, Metric,
    TextLanguage, VectorIndex,
};

/// Sizes and counts of one collection.
#[derive(Debug, Clone, Copy)]
pub struct CollectionStats {
    /// Documents over all tenants.
    pub document_count: u64,
    /// Bytes of the table, TOAST included.
    pub table_bytes: u64,
    /// Bytes of all its indexes.
    pub index_bytes: u64,
}

#[derive(sqlx::FromRow)]
struct CatalogRow {
    id: i64,
    name: String,
    dimension: i32,
    metric: String,
    index_kind: String,
    hnsw_m: Option<i32>,
    hnsw_ef_construction: Option<i32>,
    hnsw_precision: Option<String>,
    text_language: String,
    multi_tenant: bool,
    created_at: DateTime<Utc>,
    index_build: String,
    /// Whether the collection has a valid BM25 index ([`HAS_BM25_INDEX`]);
    /// false where the query does not ask (a row just inserted has none).
    #[sqlx(default)]
    bm25_index: bool,
}

impl CatalogRow {
    fn into_collection(self) -> Result<Collection, StoreError> {
        let corrupt = |what: &str| StoreError::Migration(format!("catalog row {:?} has an invalid {what}", self.name));
        let name = CollectionName::parse("name", &self.name).map_err(|_| corrupt("name"))?;
        let metric = Metric::from_stored(&self.metric).ok_or_else(|| corrupt("metric"))?;
        // NULL: a row written by a fathom older than the column (during a
        // rolling upgrade, say), whose graphs are single precision.
        let precision = match self.hnsw_precision.as_deref() {
            None => Some(IndexPrecision::Single),
            Some(stored) => IndexPrecision::from_stored(stored),
        };
        let index = match (
            self.index_kind.as_str(),
            self.hnsw_m,
            self.hnsw_ef_construction,
            precision,
        ) {
            ("hnsw", Some(m), Some(ef), Some(precision)) => VectorIndex::Hnsw {
                m: m as u32,
                ef_construction: ef as u32,
                precision,
            },
            ("none", _, _, _) => VectorIndex::None,
            _ => return Err(corrupt("index")),
        };
        let language = TextLanguage::parse("text_language", &self.text_language).map_err(|_| corrupt("language"))?;
        let index_build = IndexBuild::from_stored(&self.index_build).ok_or_else(|| corrupt("index_build"))?;
        Ok(Collection {
            id: self.id,
            spec: CollectionSpec {
                name,
                dimension: self.dimension as u32,
                metric,
                index,
                language,
                multi_tenant: self.multi_tenant,
                index_build,
            },
            created_at: self.created_at,
            keyword_ranking: if self.bm25_index {
                KeywordRanking::Bm25
            } else {
                KeywordRanking::TsRank
            },
        })
    }
}

const CATALOG_COLUMNS: &str = "id, name, dimension, metric, index_kind, hnsw_m, hnsw_ef_construction, \
     hnsw_precision, text_language, multi_tenant, created_at, index_build";

/// [`CATALOG_COLUMNS`] and whether the collection has a BM25 index.
fn catalog_columns_and_ranking() -> String {
    format!("{CATALOG_COLUMNS}, {HAS_BM25_INDEX} AS bm25_index")
}

/// pgvector's operator class for each metric, over `vector` or `halfvec`.
fn operator_class(metric: Metric, precision: IndexPrecision) -> &'static str {
    match (precision, metric) {
        (IndexPrecision::Single, Metric::Cosine) => "vector_cosine_ops",
        (IndexPrecision::Single, Metric::L2) => "vector_l2_ops",
        (IndexPrecision::Single, Metric::InnerProduct) => "vector_ip_ops",
        (IndexPrecision::Half, Metric::Cosine) => "halfvec_cosine_ops",
        (IndexPrecision::Half, Metric::L2) => "halfvec_l2_ops",
        (IndexPrecision::Half, Metric::InnerProduct) => "halfvec_ip_ops",
    }
}

/// The expression an HNSW graph of `precision` indexes, for vectors of
/// `dimension`: the search must order by this very expression for the
/// planner to use the index.
pub(super) fn indexed_embedding(alias: &str, dimension: u32, precision: IndexPrecision) -> String {
    match precision {
        IndexPrecision::Single => format!("{alias}embedding"),
        IndexPrecision::Half => format!("({alias}embedding::halfvec({dimension}))"),
    }
}

impl Store {
    /// Creates a collection: its catalog row, table and indexes, in one
    /// transaction bounded by `deadline` (see [`Store::write_within`]); its
    /// vector index only if the spec builds it [`IndexBuild::Immediate`]ly
    /// (the others: [`Store::build_index`]).
    pub async fn create_collection(
        &self,
        spec: CollectionSpec,
        deadline: Deadline,
    ) -> Result<Committed<Arc<Collection>>, StoreError> {
        let created = self
            .write_within(deadline, async |mut tx: Transaction<'_, Postgres>| {
                claim_name(&mut tx, &spec.name).await?;
                let language_exists: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = $1)")
                        .bind(spec.language.as_str())
                        .fetch_one(&mut *tx)
                        .instrument(sql("SELECT", "text language exists"))
                        .await?;
                if !language_exists {
                    return Err(StoreError::UnknownLanguage(spec.language.as_str().to_owned()));
                }
                let (index_kind, m, ef, precision) = match spec.index {
                    VectorIndex::Hnsw {
                        m,
                        ef_construction,
                        precision,
                    } => (
                        "hnsw",
                        Some(m as i32),
                        Some(ef_construction as i32),
                        Some(precision.as_str()),
                    ),
                    VectorIndex::None => ("none", None, None, None),
                };
                let row: Option<CatalogRow> = sqlx::query_as(&format!(
                    "INSERT INTO fathom.collections \
                       (name, dimension, metric, index_kind, hnsw_m, hnsw_ef_construction, hnsw_precision, \
                        text_language, multi_tenant, index_build) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (name) DO NOTHING \
                     RETURNING {CATALOG_COLUMNS}"
                ))
                .bind(spec.name.as_str())
                .bind(spec.dimension as i32)
                .bind(spec.metric.as_str())
                .bind(index_kind)
                .bind(m)
                .bind(ef)
                .bind(precision)
                .bind(spec.language.as_str())
                .bind(spec.multi_tenant)
                .bind(spec.index_build.as_str())
                .fetch_optional(&mut *tx)
                .instrument(sql("INSERT", "insert collection"))
                .await?;
                let Some(row) = row else {
                    return Err(StoreError::CollectionExists(spec.name));
                };
                let mut collection = row.into_collection()?;
                collection.keyword_ranking = self.new_collection_ranking;
                let collection = Arc::new(collection);
                create_table_and_indexes(&mut tx, &collection).await?;
                tx.commit().instrument(sql("COMMIT", "create collection")).await?;
                Ok(collection)
            })
            .await?;
        self.catalog
            .write()
            .expect("catalog lock")
            .insert(created.value.spec.name.clone(), created.value.clone());
        Ok(created)
    }

    /// The collection of that name, or the one the alias of that name
    /// points at: from the cache (which holds collections by their own
    /// names only), or else from the catalog, reading the alias and the
    /// collection in one statement, so a switched alias is seen at once by
    /// every server.
    pub async fn collection(&self, name: &CollectionName) -> Result<Arc<Collection>, StoreError> {
        if let Some(found) = self.catalog.read().expect("catalog lock").get(name) {
            return Ok(found.clone());
        }
        let row: Option<CatalogRow> = sqlx::query_as(&format!(
            "SELECT {} FROM fathom.collections WHERE name = coalesce(\
               (SELECT collection FROM fathom.collection_aliases WHERE alias = $1), $1)",
            catalog_columns_and_ranking()
        ))
        .bind(name.as_str())
        .fetch_optional(self.reachable_pool()?)
        .instrument(sql("SELECT", "collection"))
        .await
        .map_err(|e| self.error(e))?;
        let collection = Arc::new(
            row.ok_or_else(|| StoreError::CollectionNotFound(name.clone()))?
                .into_collection()?,
        );
        self.catalog
            .write()
            .expect("catalog lock")
            .insert(collection.spec.name.clone(), collection.clone());
        Ok(collection)
    }

    /// Every collection, by name.
    pub async fn list_collections(&self) -> Result<Vec<Collection>, StoreError> {
        let rows: Vec<CatalogRow> = sqlx::query_as(&format!(
            "SELECT {} FROM fathom.collections ORDER BY name",
            catalog_columns_and_ranking()
        ))
        .fetch_all(self.reachable_pool()?)
        .instrument(sql("SELECT", "list collections"))
        .await
        .map_err(|e| self.error(e))?;
        rows.into_iter().map(CatalogRow::into_collection).collect()
    }

    /// Drops a collection (named by its own name, not an alias) with its
    /// documents, indexes, stream progress and aliases, in one transaction
    /// bounded by `deadline` (see [`Store::write_within`]).
    pub async fn delete_collection(
        &self,
        name: &CollectionName,
        deadline: Deadline,
    ) -> Result<Committed<()>, StoreError> {
        self.forget(name);
        self.write_within(deadline, async |mut tx: Transaction<'_, Postgres>| {
            let deleted = sqlx::query("DELETE FROM fathom.collections WHERE name = $1")
                .bind(name.as_str())
                .execute(&mut *tx)
                .instrument(sql("DELETE", "delete collection"))
                .await?
                .rows_affected();
            if deleted == 0 {
                return Err(StoreError::CollectionNotFound(name.clone()));
            }
            sqlx::query(&format!("DROP TABLE IF EXISTS {}", table(name)))
                .execute(&mut *tx)
                .instrument(sql("DROP", "drop collection table"))
                .await?;
            tx.commit().instrument(sql("COMMIT", "delete collection")).await?;
            Ok(())
        })
        .await
    }

    /// Document count and sizes of a collection.
    pub async fn collection_stats(&self, collection: &Collection) -> Result<CollectionStats, StoreError> {
        let name = &collection.spec.name;
        let (count, table_bytes, index_bytes): (i64, i64, i64) = sqlx::query_as(&format!(
            "SELECT (SELECT count(*) FROM {t}), pg_table_size($1::regclass), pg_indexes_size($1::regclass)",
            t = table(name)
        ))
        .bind(table(name))
        .fetch_one(self.reachable_pool()?)
        .instrument(sql("SELECT", "collection stats"))
        .await
        .map_err(|e| self.missing_table_is_not_found(name, e))?;
        Ok(CollectionStats {
            document_count: count as u64,
            table_bytes: table_bytes as u64,
            index_bytes: index_bytes as u64,
        })
    }

    /// Drops a cached catalog entry.
    pub(super) fn forget(&self, name: &CollectionName) {
        self.catalog.write().expect("catalog lock").remove(name);
    }

    /// Maps "relation does not exist" to NOT_FOUND and forgets the cached
    /// entry: another server dropped the collection.
    pub(super) fn missing_table_is_not_found(&self, name: &CollectionName, error: sqlx::Error) -> StoreError {
        if is_undefined_table(&error) {
            self.forget(name);
            StoreError::CollectionNotFound(name.clone())
        } else {
            self.error(error)
        }
    }
}

async fn create_table_and_indexes(
    tx: &mut Transaction<'_, Postgres>,
    collection: &Collection,
) -> Result<(), StoreError> {
    let spec = &collection.spec;
    let t = table(&spec.name);
    // `tenant` and `id` use the "C" collation so that Scroll's id order is
    // byte order, the same on every database.
    let mut statements = vec![
        format!(
            "CREATE TABLE {t} (\
               tenant text COLLATE \"C\" NOT NULL DEFAULT '', \
               id text COLLATE \"C\" NOT NULL, \
               embedding vector({dim}) NOT NULL, \
               body text NOT NULL DEFAULT '', \
               metadata jsonb NOT NULL DEFAULT '{{}}', \
               body_tsv tsvector GENERATED ALWAYS AS (to_tsvector({lang}::regconfig, body)) STORED, \
               CONSTRAINT {pkey} PRIMARY KEY (tenant, id))",
            dim = spec.dimension,
            lang = quote_literal(spec.language.as_str()),
            pkey = index(&spec.name, "pkey"),
        ),
        format!("CREATE INDEX {} ON {t} USING gin (body_tsv)", index(&spec.name, "text")),
        format!(
            "CREATE INDEX {} ON {t} USING gin (metadata jsonb_path_ops)",
            index(&spec.name, "metadata")
        ),
    ];
    if spec.index_build == IndexBuild::Immediate {
        statements.extend(hnsw_index_ddl(collection, ""));
    }
    if collection.keyword_ranking == KeywordRanking::Bm25 {
        statements.push(bm25_index_ddl(collection));
    }
    for statement in statements {
        sqlx::query(&statement)
            .execute(&mut **tx)
            .instrument(sql("CREATE", "create collection table or index"))
            .await?;
    }
    Ok(())
}

/// `CREATE INDEX [CONCURRENTLY] … USING hnsw` for the collection's index
/// (`None` if it has no vector index); `mode` is "" or "CONCURRENTLY".
pub(super) fn hnsw_index_ddl(collection: &Collection, mode: &str) -> Option<String> {
    let spec = &collection.spec;
    let VectorIndex::Hnsw {
        m,
        ef_construction,
        precision,
    } = spec.index
    else {
        return None;
    };
    Some(format!(
        "CREATE INDEX {mode} {} ON {} USING hnsw ({} {}) WITH (m = {m}, ef_construction = {ef_construction})",
        index(&spec.name, "hnsw"),
        table(&spec.name),
        indexed_embedding("", spec.dimension, precision),
        operator_class(spec.metric, precision),
    ))
}
