#!/usr/bin/env bash
# Installs the SDK with its test tools into .venv (idempotent: pip runs only
# when .venv is new or pyproject.toml changed), checks that fathom/v1 is up to
# date with proto/ and fathom/client.py with fathom/aio.py (it is generated
# from it), type-checks with mypy --strict, and runs pytest.
#
#   FATHOM_SERVER=127.0.0.1:50051 ./test.sh    every test; live ones use that server
#   ./test.sh --unit                           only the tests that need no server
#
# Further arguments go to pytest (e.g. -k filters -x). Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")"

unit=false
if [ "${1:-}" = --unit ]; then
  unit=true
  shift
fi

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv test

./generate.sh --check
.venv/bin/python scripts/async_to_sync.py --check
.venv/bin/mypy

if $unit; then
  exec .venv/bin/python -m pytest -m "not live" "$@"
fi
if [ -z "${FATHOM_SERVER:-}" ]; then
  echo "test.sh: set FATHOM_SERVER=host:port of a running server, or pass --unit" >&2
  exit 2
fi
echo "testing against FATHOM_SERVER=$FATHOM_SERVER"
exec .venv/bin/python -m pytest "$@"
