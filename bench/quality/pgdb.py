"""The corpus in a scratch PostgreSQL database, and the SQL-side rankings.

One table per corpus (named by the corpus digest, so a rerun reuses it):

    id text PRIMARY KEY, body text, tsv tsvector (to_tsvector('english', body))

with a pg_textsearch `bm25` index on `body` (when the extension is available)
and a GIN index on `tsv` for the `ts_rank` fallbacks.

Everything the BM25 reference sees comes from here too: each document's
lexemes with their counts (the number of positions in `to_tsvector`, which is
what pg_textsearch 1.0.0 counts, src/am/build.c tp_extract_terms_from_tsvector)
and each query's lexemes the same way, so the reference and the server agree
on tokenization by construction and only the scoring is compared.
"""

from __future__ import annotations

from collections import Counter

import psycopg

TEXT_CONFIG = "english"
# ts_rank normalisation flags compared as keyword-ranking fallbacks.
TS_RANK_FLAGS = (0, 1, 2, 32)


class PgCorpus:
    """A corpus table in a `quality_*` database."""

    def __init__(self, database_url: str, digest: str):
        self.conn = psycopg.connect(database_url, autocommit=True)
        self.table = f"docs_{digest[:12]}"
        self.bm25_index = f"{self.table}_bm25"
        self.has_bm25 = False

    def close(self) -> None:
        self.conn.close()

    def _exists(self) -> bool:
        row = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self.table,)).fetchone()
        return bool(row[0])

    def load(self, docs) -> None:
        """Creates and fills the table and its indexes unless it already exists."""
        cur = self.conn.cursor()
        cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
        try:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_textsearch")
            self.has_bm25 = True
        except psycopg.Error as e:
            # Without the extension the ts_rank fallbacks still run.
            print(f"pg_textsearch unavailable ({e.diag.message_primary}); skipping its ranking")
        if not self._exists():
            cur.execute(
                f"CREATE TABLE {self.table} (id text PRIMARY KEY, body text NOT NULL, "
                f"tsv tsvector GENERATED ALWAYS AS (to_tsvector('{TEXT_CONFIG}', body)) STORED)"
            )
            with cur.copy(f"COPY {self.table} (id, body) FROM STDIN") as copy:
                for d in docs:
                    copy.write_row((d.id, d.body))
            cur.execute(f"CREATE INDEX {self.table}_gin ON {self.table} USING gin (tsv)")
            cur.execute(f"ANALYZE {self.table}")
        if self.has_bm25 and self.conn.execute(
            "SELECT to_regclass(%s) IS NULL", (self.bm25_index,)
        ).fetchone()[0]:
            # Built after the rows are in: CREATE INDEX writes segments, whose
            # document lengths are fieldnorm-quantized (see reference.py).
            cur.execute(
                f"CREATE INDEX {self.bm25_index} ON {self.table} "
                f"USING bm25 (body) WITH (text_config='{TEXT_CONFIG}')"
            )

    def versions(self) -> dict[str, str]:
        """PostgreSQL's and the extensions' versions, for the report."""
        out = {"postgres": self.conn.execute("SHOW server_version").fetchone()[0]}
        for name, ver in self.conn.execute(
            "SELECT extname, extversion FROM pg_extension WHERE extname IN ('vector', 'pg_textsearch')"
        ):
            out[name] = ver
        return out

    def doc_lexemes(self) -> dict[str, Counter]:
        """Each document's lexeme counts, as pg_textsearch counts them."""
        out: dict[str, Counter] = {}
        rows = self.conn.execute(
            f"SELECT id, (u).lexeme, coalesce(cardinality((u).positions), 1) "
            f"FROM (SELECT id, unnest(tsv) AS u FROM {self.table}) s"
        )
        for doc_id, lex, n in rows:
            out.setdefault(doc_id, Counter())[lex] = n
        return out

    def text_lexemes(self, texts: list[str]) -> list[Counter]:
        """Lexeme counts of arbitrary texts (queries) under the same config."""
        out = [Counter() for _ in texts]
        rows = self.conn.execute(
            f"SELECT t.i, (u).lexeme, coalesce(cardinality((u).positions), 1) "
            f"FROM unnest(%s::text[]) WITH ORDINALITY AS t(txt, i), "
            f"LATERAL unnest(to_tsvector('{TEXT_CONFIG}', t.txt)) AS u",
            (texts,),
        )
        for i, lex, n in rows:
            out[i - 1][lex] = n
        return out

    def bm25_search(self, query: str, limit: int) -> list[tuple[str, float]]:
        """pg_textsearch's own top-k: (id, BM25 score), best first.

        `<@>` returns the negative score (index scans only run ascending);
        it is negated back here. Rows scoring 0 (no query term) are dropped.
        """
        rows = self.conn.execute(
            f"SELECT id, body <@> to_bm25query(%s, %s) AS s FROM {self.table} "
            f"ORDER BY body <@> to_bm25query(%s, %s) LIMIT %s",
            (query, self.bm25_index, query, self.bm25_index, limit),
        ).fetchall()
        return [(i, -s) for i, s in rows if s < 0]

    def ts_rank_search(self, query_lexemes: Counter, limit: int) -> dict[int, list[tuple[str, float]]]:
        """`ts_rank` with each flag in TS_RANK_FLAGS over an OR of the query's lexemes.

        The OR query is built from the lexemes PostgreSQL itself produced
        (quoted, so no lexeme is re-parsed or re-stemmed). Ties are broken by
        id so the ranking is deterministic. Returns {flag: [(id, score)]}.
        """
        if not query_lexemes:
            return {f: [] for f in TS_RANK_FLAGS}
        tsq = " | ".join("'" + lex.replace("\\", "\\\\").replace("'", "''") + "'" for lex in sorted(query_lexemes))
        cols = ", ".join(f"ts_rank(tsv, q, {f})" for f in TS_RANK_FLAGS)
        rows = self.conn.execute(
            f"SELECT id, {cols} FROM {self.table}, CAST(%s AS tsquery) AS q WHERE tsv @@ q",
            (tsq,),
        ).fetchall()
        out = {}
        for j, flag in enumerate(TS_RANK_FLAGS):
            ranked = sorted(rows, key=lambda r: (-r[j + 1], r[0]))[:limit]
            out[flag] = [(r[0], float(r[j + 1])) for r in ranked]
        return out
