-- The catalog of collections. Each collection's documents live in their own
-- table in the fathom_data schema, created by the server from this row.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE SCHEMA IF NOT EXISTS fathom;
CREATE SCHEMA IF NOT EXISTS fathom_data;

CREATE TABLE fathom.collections (
    name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,47}$'),
    dimension integer NOT NULL CHECK (dimension BETWEEN 1 AND 16000),
    metric text NOT NULL CHECK (metric IN ('cosine', 'l2', 'inner_product')),
    index_kind text NOT NULL CHECK (index_kind IN ('hnsw', 'none')),
    hnsw_m integer,
    hnsw_ef_construction integer,
    text_language text NOT NULL,
    multi_tenant boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
