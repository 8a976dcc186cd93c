-- The precision of the vectors an HNSW graph holds: 'half' (pgvector
-- halfvec, an expression index over the single-precision column) or
-- 'single' (pgvector vector). Every collection created before this column
-- has a single-precision graph; new collections default to half. A NULL
-- (a row an older fathom writes during a rolling upgrade) reads as 'single'.
ALTER TABLE fathom.collections
    ADD COLUMN hnsw_precision text CHECK (hnsw_precision IN ('half', 'single'));

UPDATE fathom.collections SET hnsw_precision = 'single' WHERE index_kind = 'hnsw';
