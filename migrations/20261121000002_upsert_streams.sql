-- Progress of resumable UpsertStreams: the highest sequence number committed
-- per stream id, updated in the same transaction as each batch.
CREATE TABLE fathom.upsert_streams (
    collection text NOT NULL REFERENCES fathom.collections (name) ON DELETE CASCADE,
    stream_id text NOT NULL,
    tenant text NOT NULL,
    last_sequence bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection, stream_id)
);
