#!/usr/bin/env bash
# Every test, against a throw-away PostgreSQL + pgvector: the Rust suite
# (unit and integration), then the Python and TypeScript SDKs against a live
# fathom. Called by `make test` after the linters; stops what it starts.
set -uo pipefail
cd "$(dirname "$0")/.."

PG_INSTALL=${FATHOM_POSTGRES_INSTALL:-$PWD/.fathom/postgres}
PG_HOME=target/fathom-test-cluster
PG_PORT=${TEST_PG_PORT:-54339}
SDK_PORT=${TEST_SDK_PORT:-50151}
FATHOM=target/debug/fathom
cluster=(--install-dir "$PG_INSTALL" --home "$PG_HOME" --port "$PG_PORT")

server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    "$FATHOM" postgres stop "${cluster[@]}" || true
}
trap cleanup EXIT

"$FATHOM" postgres start "${cluster[@]}" --database postgres --ephemeral >/dev/null || exit 1
status=0

echo "== Rust: unit and integration tests"
FATHOM_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres" FATHOM_POSTGRES_INSTALL="$PG_INSTALL" \
    cargo test --workspace ${CARGO_TEST_FLAGS:-} || status=1

echo "== SDKs: against a live fathom on 127.0.0.1:$SDK_PORT"
"$FATHOM" postgres start "${cluster[@]}" --database fathom_sdk_tests --ephemeral >/dev/null || exit 1
FATHOM_LISTEN="127.0.0.1:$SDK_PORT" DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/fathom_sdk_tests" \
    RUST_LOG=warn "$FATHOM" serve &
server_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SDK_PORT") 2>/dev/null && break
    sleep 0.1
done
export FATHOM_SERVER="127.0.0.1:$SDK_PORT"
echo "== Python SDK"
client/python/test.sh || status=1
echo "== TypeScript SDK"
client/typescript/test.sh || status=1
echo "== Crash test: imports with PostgreSQL and fathom killed (tests/crash/run.py)"
TEST_CRASH_PG_PORT=${TEST_CRASH_PG_PORT:-54369} TEST_CRASH_PORT=${TEST_CRASH_PORT:-50181} \
    python3 tests/crash/run.py || status=1

exit $status
