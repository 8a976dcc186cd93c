-- Every collection gets an identity of its own: a collection dropped and
-- created again under the same name is another collection, and a stream
-- opened on the first must never write into the second.
ALTER TABLE fathom.collections ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY UNIQUE;

-- Resumable streams record progress by document position, so that a resumed
-- run may cut its input into batches differently: how many documents of the
-- input are committed, the last one's id, and a SHA-256 chain over all their
-- ids (d0 = 32 zero bytes, d(i+1) = sha256(d(i) || id(i))) that lets a client
-- refuse to resume on different data.
ALTER TABLE fathom.upsert_streams
    ADD COLUMN collection_id bigint REFERENCES fathom.collections (id) ON DELETE CASCADE,
    ADD COLUMN committed_documents bigint CHECK (committed_documents >= 0),
    ADD COLUMN last_id text NOT NULL DEFAULT '',
    ADD COLUMN ids_digest bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000';

UPDATE fathom.upsert_streams s SET collection_id = c.id FROM fathom.collections c WHERE c.name = s.collection;
-- Streams that committed nothing start at position 0. Streams recorded by
-- batch number alone keep committed_documents NULL: their position is
-- unknown, and opening them again is refused rather than guessed.
UPDATE fathom.upsert_streams SET committed_documents = 0 WHERE last_sequence = 0;
ALTER TABLE fathom.upsert_streams ALTER COLUMN collection_id SET NOT NULL;
ALTER TABLE fathom.upsert_streams ALTER COLUMN committed_documents SET DEFAULT 0;
