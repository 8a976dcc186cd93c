-- When a key stops being accepted; NULL: never. Servers compare it with
-- their clock at every request, so a key cached before it expired is
-- refused from that moment on (`fathom keys create --expires-in`, or
-- CreateKey's expire_time).
ALTER TABLE fathom.api_keys ADD COLUMN expires_at timestamptz;
