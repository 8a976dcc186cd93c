#!/usr/bin/env bash
# Checks the Dockerfile's build stage without a Docker engine: clones HEAD
# afresh, keeps what .dockerignore lets into the build context, and runs the
# build stage's own `cargo build` command (read from the Dockerfile) in it.
# Slow (a release build from nothing, several minutes): not part of
# `make test`; run it after changing the Dockerfile, .dockerignore or the
# workspace layout.
#
#   scripts/check-image-build.sh        exit 0 if the build succeeds
set -euo pipefail
cd "$(dirname "$0")/.."

build=$(grep -v '^[[:space:]]*#' Dockerfile | grep -o 'cargo build [^\\&]*' | sed 's/[[:space:]]*$//')
[ -n "$build" ] || { echo "no cargo build command in Dockerfile" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet --no-local . "$work/clone"
python3 - "$work/clone" "$work/context" <<'PY'
"""Copies the clone's files that .dockerignore does not exclude (plain
paths, `dir/*.ext` globs and `**/name` patterns, as .dockerignore uses)."""
import fnmatch
import shutil
import sys
from pathlib import Path

clone, context = Path(sys.argv[1]), Path(sys.argv[2])
patterns = [
    line.strip()
    for line in (clone / ".dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

def excluded(path: str) -> bool:
    parts = path.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))):
            return True
    return False

kept = 0
for file in sorted(clone.rglob("*")):
    relative = file.relative_to(clone).as_posix()
    if file.is_file() and not excluded(relative):
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
        kept += 1
print(f"build context: {kept} files")
PY
echo "in the context: $build"
cd "$work/context"
CARGO_TARGET_DIR="$work/context/target" $build
"$work/context/target/release/fathom" --version
echo "the Dockerfile's build command succeeds on a fresh clone"
