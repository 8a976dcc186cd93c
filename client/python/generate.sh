#!/usr/bin/env bash
# Generates the protobuf messages (with .pyi types) and gRPC stubs of
# fathom/v1 from ../../proto, with the grpcio-tools version pinned in
# pyproject.toml (extra "generate"). The output is committed.
#
#   ./generate.sh          regenerate fathom/v1 in place
#   ./generate.sh --check  exit 1 if the committed fathom/v1 differs from a fresh generation
#
# Uses (and creates, if missing) the virtualenv .venv beside this script.
set -euo pipefail
cd "$(dirname "$0")"

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
# test.sh installs the "test" extra, which includes "generate".
if [ ! -f .venv/.fathom-installed ] || ! grep -q '^test ' .venv/.fathom-installed; then
  ensure_venv generate
fi

proto_root=../../proto
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

.venv/bin/python -m grpc_tools.protoc \
  -I "$proto_root" \
  --python_out="$out" \
  --pyi_out="$out" \
  --grpc_python_out="$out" \
  "$proto_root"/fathom/v1/*.proto
cat > "$out/fathom/v1/__init__.py" <<'PY'
"""Messages and gRPC stubs generated from proto/fathom/v1 by generate.sh. Do not edit."""
PY

if $check; then
  if ! diff -r -x __pycache__ "$out/fathom/v1" fathom/v1; then
    echo "fathom/v1 is out of date with proto/: run client/python/generate.sh" >&2
    exit 1
  fi
  echo "fathom/v1 is up to date with proto/"
else
  rm -rf fathom/v1
  cp -r "$out/fathom/v1" fathom/v1
  echo "generated fathom/v1 from proto/"
fi
