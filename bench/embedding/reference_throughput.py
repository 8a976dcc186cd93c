#!/usr/bin/env python3
"""Documents/s of the reference all-MiniLM-L6-v2 (bench/quality/embed.py:
HF tokenizers + numpy) on the texts of a JSON file (a list of lists of
strings, one list per measurement), printed as a JSON list of
{"documents", "seconds"}. Run by fathom-bench-embedding in the bench/quality
venv; tokenization is timed too, as it is on fathom's side.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "quality"))

from embed import MiniLM  # noqa: E402


def main() -> None:
    model_dir, texts_path = sys.argv[1], sys.argv[2]
    model = MiniLM(model_dir)
    with open(texts_path, encoding="utf-8") as f:
        runs = json.load(f)
    model.encode(runs[0][:8])  # warm-up: BLAS threads, first allocations
    out = []
    for texts in runs:
        start = time.perf_counter()
        model.encode(texts)
        out.append({"documents": len(texts), "seconds": time.perf_counter() - start})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
