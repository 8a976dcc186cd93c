#!/usr/bin/env bash
# `make bench-sdk`: the vector leg as a Python client sees it (vector_leg.py
# beside this file), on a throw-away embedded PostgreSQL and a fathom of this
# checkout, both on loopback; stops what it starts. The venv and the SDK
# install are bench/quality's (run.sh).
#
#   FATHOM=target/release/fathom bench/sdk/bench.sh [vector_leg.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
fathom=${FATHOM:-target/release/fathom}
pg_port=${SDK_BENCH_PG_PORT:-24353}
fathom_port=${SDK_BENCH_FATHOM_PORT:-20353}
cluster=(--install-dir .fathom/postgres --home target/sdk-bench-cluster --port "$pg_port")
url="postgres://postgres@127.0.0.1:$pg_port/sdk_bench"

fathom_pid=
cleanup() {
    [ -n "$fathom_pid" ] && kill "$fathom_pid" 2>/dev/null && wait "$fathom_pid" 2>/dev/null
    "$fathom" postgres stop "${cluster[@]}" || true
}
trap cleanup EXIT

"$fathom" postgres start "${cluster[@]}" --database sdk_bench --ephemeral >/dev/null
FATHOM_LISTEN="127.0.0.1:$fathom_port" DATABASE_URL="$url" RUST_LOG=warn "$fathom" serve &
fathom_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$fathom_port") 2>/dev/null && break
    sleep 0.1
done
mkdir -p target/sdk-bench
QUALITY_SCRIPT="$PWD/bench/sdk/vector_leg.py" bench/quality/run.sh --database-url "$url" \
    --fathom "127.0.0.1:$fathom_port" --markdown target/sdk-bench/vector-leg.md "$@"
