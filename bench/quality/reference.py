"""Reference BM25 rankings over PostgreSQL's own lexemes.

pg_textsearch 1.0.0 scores a document d for a query q as (src/query/score.c,
src/query/bmw.c, src/types/query.c):

    sum over distinct query lexemes t present in d of
        qf(t) * idf(t) * tf(t,d) * (k1 + 1) / (tf(t,d) + k1 * (1 - b + b * dl(d) / avgdl))

    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))    (Lucene's, never negative)

with k1 = 1.2, b = 0.75, where
  - tf(t,d) is the number of positions of t in to_tsvector(config, d),
  - qf(t) the same count in to_tsvector(config, q) (a repeated query word
    counts twice),
  - dl(d) the sum of tf over d's lexemes (stop words are not counted),
  - N the number of indexed documents with at least one lexeme (empty ones
    are not added to the index, build.c), avgdl = total dl / N (exact),
  - and dl(d) is *quantized* with Lucene's SmallFloat "fieldnorm" byte
    (src/segment/fieldnorm.h): exact up to 39, then 4 significant bits
    (40, 42, ..., 56, 60, ..., 88, 96, ...), rounded down. Documents in
    segments (everything CREATE INDEX writes) and the standalone `<@>`
    operator use the quantized length; documents still in the in-memory
    memtable (inserted after the index was built, not yet spilled) use the
    exact length.
Arithmetic is float4 in the extension, so near-equal scores can swap order.

Two references are built from the same lexeme counts:
  - `Bm25sReference`: the `bm25s` library (method "lucene": the same IDF, and
    the same tf saturation up to the constant factor k1 + 1, which is
    multiplied back so that scores are comparable), exact document lengths.
  - `FieldnormReference`: the formula above in numpy with the fieldnorm
    quantization, i.e. what pg_textsearch should compute for segment data.
Their agreement with each other says how much the quantization alone moves
a top-10.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

K1 = 1.2
B = 0.75


def _fieldnorm_table() -> np.ndarray:
    """Lucene's SmallFloat.byte4ToInt for the 256 byte values (as in fieldnorm.h)."""

    def long_to_int4(i: int) -> int:
        num_bits = i.bit_length()
        if num_bits < 4:
            return i
        shift = num_bits - 4
        encoded = (i >> shift) & 0x07  # drop the implicit leading bit
        return encoded | ((shift + 1) << 3)

    def int4_to_long(i: int) -> int:
        bits, shift = i & 0x07, (i >> 3) - 1
        return bits if shift == -1 else (bits | 0x08) << shift

    free = 255 - long_to_int4(2**31 - 1)  # values stored exactly: 0..free-1
    return np.array([b if b < free else free + int4_to_long(b - free) for b in range(256)], dtype=np.int64)


FIELDNORM_DECODE = _fieldnorm_table()


def quantize_length(lengths: np.ndarray) -> np.ndarray:
    """The largest fieldnorm value <= each length (encode then decode)."""
    idx = np.searchsorted(FIELDNORM_DECODE, lengths, side="right") - 1
    return FIELDNORM_DECODE[idx]


class _Postings:
    """Lexeme -> (doc indices, tf) over the documents that have lexemes."""

    def __init__(self, doc_lexemes: dict[str, Counter]):
        # Sorted ids: document order must not depend on dict insertion order.
        self.ids = sorted(i for i, c in doc_lexemes.items() if sum(c.values()) > 0)
        self.lengths = np.array([sum(doc_lexemes[i].values()) for i in self.ids], dtype=np.int64)
        self.n_docs = len(self.ids)
        self.avgdl = float(self.lengths.sum()) / self.n_docs
        docs: dict[str, list[int]] = {}
        tfs: dict[str, list[int]] = {}
        for j, i in enumerate(self.ids):
            for lex, n in doc_lexemes[i].items():
                docs.setdefault(lex, []).append(j)
                tfs.setdefault(lex, []).append(n)
        self.postings = {lex: (np.array(docs[lex]), np.array(tfs[lex], dtype=np.float64)) for lex in docs}


class FieldnormReference:
    """pg_textsearch 1.0.0's BM25 in numpy (float64), optionally without quantization."""

    name = "reference (numpy, fieldnorm lengths)"

    def __init__(self, doc_lexemes: dict[str, Counter], k1: float = K1, b: float = B, quantize: bool = True):
        self.p = _Postings(doc_lexemes)
        self.ids = self.p.ids
        self.k1, self.b = k1, b
        dl = quantize_length(self.p.lengths) if quantize else self.p.lengths
        self.norm = 1.0 - b + b * dl.astype(np.float64) / self.p.avgdl
        if not quantize:
            self.name = "reference (numpy, exact lengths)"

    def scores(self, query: Counter) -> np.ndarray:
        out = np.zeros(self.p.n_docs)
        for lex, qf in query.items():
            if lex not in self.p.postings:
                continue
            docs, tf = self.p.postings[lex]
            df = len(docs)
            idf = np.log(1.0 + (self.p.n_docs - df + 0.5) / (df + 0.5))
            out[docs] += qf * idf * tf * (self.k1 + 1) / (tf + self.k1 * self.norm[docs])
        return out


class Bm25sReference:
    """`bm25s` (method "lucene", k1 1.2, b 0.75) over the same lexeme counts."""

    name = "reference (bm25s, exact lengths)"

    def __init__(self, doc_lexemes: dict[str, Counter], k1: float = K1, b: float = B):
        import bm25s  # imported here: only this class needs it

        p = _Postings(doc_lexemes)
        self.ids = p.ids
        self.k1 = k1
        # bm25s takes a document as a token list: each lexeme repeated tf
        # times, so that its Counter and len() give tf and dl exactly.
        corpus = [[lex for lex, n in sorted(doc_lexemes[i].items()) for _ in range(n)] for i in p.ids]
        # create_empty_token=False: an extra vocabulary entry is harmless but
        # not needed (queries without known lexemes are handled below).
        self.model = bm25s.BM25(k1=k1, b=b, method="lucene", dtype="float64")
        self.model.index(corpus, create_empty_token=False, show_progress=False)
        self.n_docs = len(p.ids)

    def scores(self, query: Counter) -> np.ndarray:
        # A repeated query lexeme is passed repeatedly: bm25s then adds its
        # column twice, like pg_textsearch's query-frequency factor.
        tokens = [lex for lex, n in sorted(query.items()) for _ in range(n) if lex in self.model.vocab_dict]
        if not tokens:
            return np.zeros(self.n_docs)
        # bm25s's "lucene" tf part omits the constant (k1 + 1) numerator factor.
        return np.asarray(self.model.get_scores(tokens), dtype=np.float64) * (self.k1 + 1)


def top_k(ids: list[str], scores: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The k best (id, score) with score > 0, ties broken by id (ascending)."""
    nz = np.flatnonzero(scores > 0)
    order = sorted(nz, key=lambda j: (-scores[j], ids[j]))[:k]
    return [(ids[j], float(scores[j])) for j in order]
