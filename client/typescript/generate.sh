#!/usr/bin/env bash
# Generates src/gen (protoc-gen-es v2: messages, enums and service
# descriptors for Connect v2) from ../../proto with the buf CLI, using the
# @bufbuild/buf and @bufbuild/protoc-gen-es versions pinned in
# package-lock.json and the template buf.gen.yaml. The output is committed.
#
#   ./generate.sh          regenerate src/gen in place
#   ./generate.sh --check  exit 1 if the committed src/gen differs from a fresh generation
set -euo pipefail
cd "$(dirname "$0")"

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# shellcheck source=scripts/deps.sh
. scripts/deps.sh
ensure_deps
export PATH="$PWD/node_modules/.bin:$PATH"  # buf runs the local protoc-gen-es plugin

if $check; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  buf generate ../../proto --template buf.gen.yaml --output "$out"
  if ! diff -r "$out/src/gen" src/gen; then
    echo "src/gen is out of date with proto/: run client/typescript/generate.sh" >&2
    exit 1
  fi
  echo "src/gen is up to date with proto/"
else
  buf generate ../../proto --template buf.gen.yaml
  echo "generated src/gen from proto/"
fi
