-- API keys. Only a SHA-256 of each key is kept (keys are 256 random bits,
-- so a fast hash is as safe as a slow one); the id is the key's public part,
-- shown by `fathom keys list` and named in the audit log. Every fathom
-- server reads this table, so a key created or revoked on one is seen by all.
CREATE TABLE fathom.api_keys (
    id text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{12}$'),
    secret_sha256 bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    role text NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    -- The only tenant the key may touch; NULL: any.
    tenant text CHECK (tenant <> ''),
    -- The only collections the key may touch; NULL: any.
    collections text[] CHECK (cardinality(collections) > 0),
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
