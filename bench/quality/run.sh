#!/usr/bin/env bash
# Makes the benchmark's venv from the pinned, hashed requirements (once; again
# when requirements.txt changes), installs the Python SDK from this checkout,
# and runs run.py with the given arguments, e.g.
#
#   bench/quality/run.sh --database-url postgres://postgres@127.0.0.1:55432/quality_bench \
#       --fathom 127.0.0.1:50440 --json target/quality/results.json
#
# QUALITY_VENV overrides the venv folder (default target/quality-venv);
# QUALITY_SCRIPT the script run in it (default run.py; bench/sdk uses it).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${QUALITY_VENV:-$repo/target/quality-venv}
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -c1-64)

if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "making $venv from bench/quality/requirements.txt" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    # --no-deps: the file lists every package; nothing unlisted comes in.
    "$venv/bin/pip" install --quiet --require-hashes --no-deps -r "$here/requirements.txt"
    echo "$want" >"$stamp"
fi

# The SDK is installed from a copy of client/python (a local build writes
# build/ and *.egg-info next to its sources), every run, so that it matches
# the checkout's generated stubs. Its dependencies are in requirements.txt.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$repo/client/python" "$tmp/client"
rm -rf "$tmp/client/.venv" "$tmp/client/build"
"$venv/bin/pip" install --quiet --no-deps --no-build-isolation --force-reinstall "$tmp/client" >/dev/null

# Nothing may come from a model hub at run time: the weights are in a package.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$venv/bin/python" "${QUALITY_SCRIPT:-$here/run.py}" "$@"
