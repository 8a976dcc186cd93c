-- When a collection's HNSW index is built: 'automatic' (new collections'
-- default: once its vectors pass the server's indexing threshold, at the
-- end of the write that passes it), 'immediate' (with the collection,
-- maintained by every write) or 'on_request' (BuildIndex; defer_index).
-- Collections from before this column were created 'immediate', or
-- 'on_request' where their index was deferred and is still not built.
ALTER TABLE fathom.collections ADD COLUMN index_build text NOT NULL DEFAULT 'immediate'
    CHECK (index_build IN ('automatic', 'immediate', 'on_request'));

UPDATE fathom.collections c SET index_build = 'on_request'
WHERE c.index_kind = 'hnsw'
  AND NOT EXISTS (
    SELECT 1 FROM pg_index i
    WHERE i.indexrelid = to_regclass('fathom_data.' || quote_ident(c.name || ':hnsw')) AND i.indisvalid);
