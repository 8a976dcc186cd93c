#!/usr/bin/env python3
"""Writes the fixture that proves fathom's local embedder equal to the
reference: 100 varied texts, the token ids the Hugging Face `tokenizers`
library gives them, and their all-MiniLM-L6-v2 embeddings from the numpy
reference implementation (bench/quality/embed.py, the pipeline the model's
modules.json declares).

Run in the bench/quality venv (it has numpy, scipy, tokenizers, safetensors),
after `make models`:

    target/quality-venv/bin/python scripts/embedding-reference.py \\
        [--model-dir .fathom/models/all-MiniLM-L6-v2] \\
        [--out server/src/embedding/testdata/minilm_reference.json]

Embeddings are stored as little-endian IEEE half floats in base64 (a tenth of
decimal JSON); the rounding moves a cosine by far less than the test's 0.999.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench", "quality"))

from embed import MAX_SEQ_LEN, MiniLM  # noqa: E402

# Hand-picked edge cases of BERT's basic tokenization and of WordPiece.
EDGE_CASES = [
    "",
    " ",
    "\t\n\r ",
    "x",
    "?!...",
    "Hello, world!",
    "HELLO WORLD IN CAPITALS",
    "Crème brûlée à la française",
    "naïve café résumé, São Paulo, Zürich",
    "Straße, Größe, Übermaß",
    "e\u0301 composed by a combining acute accent",
    "İstanbul and ǅemal: case mappings that are not one to one",
    "野口里佳 Noguchi Rika",
    "我爱自然语言处理和向量搜索",
    "こんにちは世界、カタカナもある",
    "안녕하세요 세계",
    "Привет, мир! Векторный поиск.",
    "Καλημέρα κόσμε",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "I love 🍕 and 🎉 emoji",
    "3.14159 2,718 1e-10 42% -7 +8 0x1F",
    "€100 £50 ¥1000 $5.99",
    "∑ x² ≤ ∞, √2 ≈ 1.414",
    "https://example.com/path/to/page?q=vector+search&lang=en#top",
    "someone@example.org wrote: fn main() { println!(\"hi\"); }",
    "zero\u200bwidth\ufeffjoiners and a soft\u00adhyphen",
    "control\x00chars\x07and\x1bescapes\ufffd",
    "ideographic\u3000space and no\u00a0break space",
    "ﬁne ligatures and ＦＵＬＬＷＩＤＴＨ letters, Ⅻ",
    "[CLS] special [MASK] tokens [SEP] in the text [PAD] [UNK]",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "a" * 150 + " a word past WordPiece's 100 characters",
    "don't won't can't it's l'été",
    "--- *** ### ___ ``` ~~~",
    "«quotes» “curly” ‘single’ „low“",
    "tab\tseparated\tvalues\tin\ta\trow",
    "line one\nline two\n\nline four",
]

WORDS = (
    "postgres vector index search query embedding model server client stream batch "
    "document collection filter metadata keyword hybrid ranking cosine distance graph "
    "the a of and to in is for with on that by this be are from at as it or an "
    "library package tool game system network file data image audio video text parser "
    "fast small simple secure reliable modern lightweight portable efficient robust"
).split()


def generated_texts(n: int) -> list[str]:
    """Sentences of random words, short to far past 256 tokens (seeded)."""
    rng = random.Random(33)
    out = []
    for i in range(n):
        # A third short, a third around 128 tokens, a third past 256.
        length = [rng.randint(3, 30), rng.randint(100, 130), rng.randint(260, 400)][i % 3]
        words = [rng.choice(WORDS) for _ in range(length)]
        if i % 4 == 0:
            words = [w.capitalize() if rng.random() < 0.2 else w for w in words]
        text = " ".join(words)
        if i % 5 == 0:
            text = text.replace(" the ", ", the ").replace(" and ", " & ") + "."
        out.append(text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=os.path.join(REPO, ".fathom/models/all-MiniLM-L6-v2"))
    parser.add_argument("--out", default=os.path.join(REPO, "server/src/embedding/testdata/minilm_reference.json"))
    args = parser.parse_args()

    texts = EDGE_CASES + generated_texts(100 - len(EDGE_CASES))
    assert len(texts) == 100
    model = MiniLM(args.model_dir)
    ids = [e.ids for e in model.tok.encode_batch(texts)]
    vectors = model.encode(texts)
    cases = [
        {
            "text": text,
            "ids": tokens,
            "embedding_f16_base64": base64.b64encode(vec.astype("<f2").tobytes()).decode(),
        }
        for text, tokens, vec in zip(texts, ids, vectors)
    ]
    fixture = {
        "about": "all-MiniLM-L6-v2 by bench/quality/embed.py (numpy + HF tokenizers); written by scripts/embedding-reference.py",
        "max_seq_length": MAX_SEQ_LEN,
        "dimension": int(vectors.shape[1]),
        "cases": cases,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    # One case a line: a diff of the fixture shows which texts changed.
    head = json.dumps({k: v for k, v in fixture.items() if k != "cases"}, ensure_ascii=False)[:-1]
    lines = ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(f'{head}, "cases": [\n{lines}\n]}}\n')
    longest = max(len(t) for t in ids)
    print(f"{len(cases)} texts ({sum(len(t) for t in ids)} tokens, longest {longest}) -> {args.out}")


if __name__ == "__main__":
    main()
