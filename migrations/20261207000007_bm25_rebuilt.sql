-- When Fathom last rebuilt every collection's BM25 index, as the start time
-- of the PostgreSQL server (postmaster) then running. pg_textsearch 1.0.0
-- does not recover a bm25 index's corpus statistics when PostgreSQL
-- restarts (cleanly or not): its scans then return no documents, or only
-- those written since. REINDEX recomputes them, so Fathom rebuilds the
-- indexes once per PostgreSQL start (store/bm25_indexes.rs). One row.
CREATE TABLE fathom.bm25_rebuilt (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    postmaster_started timestamptz NOT NULL
);
