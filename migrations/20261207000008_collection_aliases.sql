-- Aliases: second names of collections, each pointing at one collection and
-- switched to another by UpdateAliases (a blue-green re-index). Alias names
-- follow the rules of collection names and share their namespace: the server
-- refuses an alias named as a collection and a collection named as an alias,
-- under one advisory lock per name (store/collection_aliases.rs). Dropping a
-- collection deletes its aliases.
CREATE TABLE fathom.collection_aliases (
    alias text PRIMARY KEY CHECK (alias ~ '^[a-z][a-z0-9_]{0,47}$'),
    collection text NOT NULL REFERENCES fathom.collections (name) ON DELETE CASCADE,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX collection_aliases_collection ON fathom.collection_aliases (collection);
