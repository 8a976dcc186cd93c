-- Collections' indexes were named "<collection>_<suffix>", which a valid
-- collection name could take (a collection "docs_text" collided with the
-- index of "docs"). They are now "<collection>:<suffix>"; ':' is outside the
-- alphabet of collection names. Rename the indexes of existing collections
-- (the primary key's constraint follows its index).
DO $$
DECLARE
    collection record;
    suffix text;
    old_index regclass;
BEGIN
    FOR collection IN SELECT name FROM fathom.collections LOOP
        FOREACH suffix IN ARRAY ARRAY['text', 'metadata', 'hnsw', 'pkey'] LOOP
            old_index := to_regclass(format('fathom_data.%I', collection.name || '_' || suffix));
            IF old_index IS NOT NULL AND EXISTS (
                SELECT 1 FROM pg_index
                WHERE indexrelid = old_index
                  AND indrelid = to_regclass(format('fathom_data.%I', collection.name))
            ) THEN
                EXECUTE format('ALTER INDEX %s RENAME TO %I', old_index, collection.name || ':' || suffix);
            END IF;
        END LOOP;
    END LOOP;
END
$$;
