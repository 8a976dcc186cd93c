#!/usr/bin/env bash
# `make bench-quality`: the retrieval-quality benchmark (README.md beside this
# file) on a throw-away embedded PostgreSQL with pg_textsearch and a fathom
# of this checkout, both on loopback; stops what it starts.
#
#   FATHOM=target/release/fathom bench/quality/bench.sh [run.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
fathom=${FATHOM:-target/release/fathom}
pg_port=${QUALITY_PG_PORT:-24351}
fathom_port=${QUALITY_FATHOM_PORT:-20351}
cluster=(--install-dir .fathom/postgres --home target/quality-cluster --port "$pg_port")
url="postgres://postgres@127.0.0.1:$pg_port"

fathom_pid=
cleanup() {
    [ -n "$fathom_pid" ] && kill "$fathom_pid" 2>/dev/null && wait "$fathom_pid" 2>/dev/null
    "$fathom" postgres stop "${cluster[@]}" || true
}
trap cleanup EXIT

"$fathom" postgres start "${cluster[@]}" --database quality_bench --ephemeral >/dev/null
"$fathom" postgres start "${cluster[@]}" --database fathom_quality --ephemeral >/dev/null
FATHOM_LISTEN="127.0.0.1:$fathom_port" DATABASE_URL="$url/fathom_quality" RUST_LOG=warn "$fathom" serve &
fathom_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$fathom_port") 2>/dev/null && break
    sleep 0.1
done
mkdir -p target/quality
bench/quality/run.sh --database-url "$url/quality_bench" --fathom "127.0.0.1:$fathom_port" \
    --json target/quality/results.json "$@"
