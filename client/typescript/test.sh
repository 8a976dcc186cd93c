#!/usr/bin/env bash
# Installs dependencies (npm ci, idempotent), checks that src/gen is up to
# date with proto/, compiles with tsc (strict), and runs the tests with
# node's built-in test runner.
#
#   FATHOM_SERVER=127.0.0.1:50051 ./test.sh    unit tests + live tests against that server
#   ./test.sh --unit                           only the tests that need no server
#
# Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")"

unit=false
if [ "${1:-}" = --unit ]; then
  unit=true
  shift
fi

# shellcheck source=scripts/deps.sh
. scripts/deps.sh
ensure_deps

./generate.sh --check
npm run --silent build
npm run --silent build:test

tests=(build-test/test/unit/*.test.js)
if ! $unit; then
  if [ -z "${FATHOM_SERVER:-}" ]; then
    echo "test.sh: set FATHOM_SERVER=host:port of a running server, or pass --unit" >&2
    exit 2
  fi
  echo "testing against FATHOM_SERVER=$FATHOM_SERVER"
  tests+=(build-test/test/live/*.test.js)
fi
exec node --test "${tests[@]}"
