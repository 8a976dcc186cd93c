#!/usr/bin/env python3
"""Fathom retrieval-quality benchmark: one command, prints a table, writes JSON.

    python3 bench/quality/run.py --database-url postgres://postgres@127.0.0.1:55432/quality_bench \
        [--fathom 127.0.0.1:50440] [--docs 20000 --queries 300] [--json target/quality/results.json]

Part 1, agreement: how close the top 10 of a ranking under test is to a
reference BM25 computed over PostgreSQL's own lexemes (reference.py), for
  (i)  pg_textsearch's `ORDER BY body <@> to_bm25query(q, idx) LIMIT 10`,
  (ii) fathom's keyword search through the Python SDK (with --fathom).
Part 2, quality (unless --agreement-only): nDCG@10, recall@100, MRR@10 of
keyword, vector and hybrid rankings on known-item judgments (corpus.py).
See README.md for how queries and judgments are made.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import corpus as corpus_mod  # noqa: E402
import metrics  # noqa: E402
import pgdb  # noqa: E402
import reference  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
RRF_KS = (10, 20, 60, 100)
RS_ALPHAS = (0.3, 0.5, 0.7)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:55432/quality_bench",
                   help="scratch database (created if missing) with pg_textsearch and pgvector available")
    p.add_argument("--fathom", help="host:port of a fathom server to test through the Python SDK")
    p.add_argument("--docs", type=int, default=20000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default=os.path.join(REPO, "target", "quality", "results.json"))
    p.add_argument("--cache-dir", default=os.path.join(REPO, "target", "quality-cache"))
    p.add_argument("--agreement-only", action="store_true", help="skip embeddings and the quality table")
    return p.parse_args(argv)


def repo_state() -> dict:
    """The checkout's commit and whether it has changes (the server under test
    is usually built from it; the JSON says from what)."""
    import subprocess

    def git(*a):
        r = subprocess.run(["git", "-C", REPO, *a], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"head": git("rev-parse", "HEAD"), "modified_files": None if status is None else len(status.splitlines())}


def ensure_database(url: str) -> None:
    """Creates the database named in `url` if it does not exist."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            print(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


class Timer:
    """Wall-clock seconds per phase, for the JSON report."""

    def __init__(self):
        self.phases: dict[str, float] = {}

    def __call__(self, name):
        timer = self

        class _Phase:
            def __enter__(self):
                self.t = time.time()
                print(f"== {name}", flush=True)

            def __exit__(self, *exc):
                timer.phases[name] = round(time.time() - self.t, 1)

        return _Phase()


def agreement(name, ref, ref_scores, rankings):
    """Mean strict / tie-aware top-10 overlap of `rankings` (one id list per query) with `ref`."""
    rows = [metrics.overlap_at_k(ref.ids, s, r) for s, r in zip(ref_scores, rankings)]
    rows = [r for r in rows if r is not None]
    return {
        "tested": name,
        "reference": ref.name,
        "queries": len(rows),
        "mean_overlap_strict": round(statistics.mean(r["strict"] for r in rows), 4),
        "mean_overlap_tie_aware": round(statistics.mean(r["tie_aware"] for r in rows), 4),
        "queries_with_ties_at_10": sum(r["ties_at_k"] for r in rows),
        "queries_below_1": sum(r["tie_aware"] < 1 for r in rows),
    }


def quality_row(name, queries, rankings_10, rankings_100):
    """nDCG@10, recall@100, MRR@10 and known-item hit@100 over the queries."""
    nd, rc, mrr, hit = [], [], [], []
    for q, r10, r100 in zip(queries, rankings_10, rankings_100):
        nd.append(metrics.ndcg_at_k(r10, q.relevant, 10))
        rc.append(metrics.recall_at_k(r100, q.relevant, 100))
        rank = metrics.target_rank(r10[:10], q.target)
        mrr.append(1.0 / rank if rank else 0.0)
        hit.append(1.0 if q.target in r100[:100] else 0.0)
    return {"method": name, "ndcg@10": round(statistics.mean(nd), 4), "recall@100": round(statistics.mean(rc), 4),
            "mrr@10": round(statistics.mean(mrr), 4), "hit@100": round(statistics.mean(hit), 4)}


def ids(ranking):
    return [d for d, _ in ranking]


def main(argv=None) -> int:
    args = parse_args(argv)
    timer = Timer()
    result: dict = {"args": vars(args), "repo": repo_state(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    with timer("corpus"):
        try:
            all_docs, lists_digest = corpus_mod.load_packages()
        except corpus_mod.CorpusError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        docs = corpus_mod.sample_corpus(all_docs, args.docs, args.seed)
        digest = corpus_mod.corpus_hash(docs)
        print(f"{len(docs)} documents sampled from {len(all_docs)} packages (corpus {digest[:12]})")

    with timer("postgres load"):
        ensure_database(args.database_url)
        pg = pgdb.PgCorpus(args.database_url, digest)
        pg.load(docs)
        doc_lex = pg.doc_lexemes()
        queries = corpus_mod.make_queries(
            docs, args.queries, args.seed, lambda texts: [bool(c) for c in pg.text_lexemes(texts)]
        )
        q_lex = pg.text_lexemes([q.text for q in queries])
    result["corpus"] = {
        "documents": len(docs), "packages_available": len(all_docs), "apt_lists_sha256": lists_digest,
        "corpus_sha256": digest, "queries": len(queries), "seed": args.seed,
        "documents_with_lexemes": sum(1 for c in doc_lex.values() if c),
        "mean_lexemes_per_doc": round(statistics.mean(sum(c.values()) for c in doc_lex.values()), 2),
        "mean_relevant_per_query": round(statistics.mean(len(q.relevant) for q in queries), 2),
        "example_queries": [{"query": q.text, "target": q.target} for q in queries[:5]],
    }
    result["versions"] = pg.versions()

    with timer("references"):
        bm25s_ref = reference.Bm25sReference(doc_lex)
        fn_ref = reference.FieldnormReference(doc_lex)
        exact_np = reference.FieldnormReference(doc_lex, quantize=False)
        assert bm25s_ref.ids == fn_ref.ids == exact_np.ids
        s_bm25s = [bm25s_ref.scores(c) for c in q_lex]
        s_fn = [fn_ref.scores(c) for c in q_lex]
        # bm25s and the numpy formula with exact lengths must be the same function.
        cross = max(float(np.max(np.abs(a - exact_np.scores(c)))) for a, c in zip(s_bm25s, q_lex))
        print(f"max |bm25s - numpy(exact lengths)| over all queries and docs: {cross:.2e}")
        result["reference_crosscheck_max_abs_diff"] = cross

    agree = []
    rank_sql = {}
    with timer("pg_textsearch SQL"):
        if pg.has_bm25:
            for q in queries:
                rank_sql[q.qid] = pg.bm25_search(q.text, 100)
            sql10 = [ids(rank_sql[q.qid])[:10] for q in queries]
            for ref, scores in ((fn_ref, s_fn), (bm25s_ref, s_bm25s)):
                agree.append(agreement("pg_textsearch SQL <@>", ref, scores, sql10))
            # Scores, not just ids: the SQL score of each returned document
            # against the fieldnorm reference's score for it.
            pos = {d: j for j, d in enumerate(fn_ref.ids)}
            rel = [abs(s - s_fn[i][pos[d]]) / s_fn[i][pos[d]]
                   for i, q in enumerate(queries) for d, s in rank_sql[q.qid][:10] if s_fn[i][pos[d]] > 0]
            result["sql_vs_fieldnorm_score_relative_error"] = {
                "max": float(max(rel)), "mean": float(statistics.mean(rel)), "n": len(rel)}
    agree.append(agreement("bm25s (exact lengths)", fn_ref, s_fn, [ids(reference.top_k(bm25s_ref.ids, s, 10)) for s in s_bm25s]))

    fathom = None
    rank_fk = {}
    if args.fathom:
        import fathom_leg

        if args.agreement_only:
            dim, kind, vectors = 8, "random", fathom_leg.pseudo_vectors(len(docs), 8, args.seed)
        else:
            import embed

            with timer("embeddings (documents)"):
                vectors = embed.cached_embeddings([d.body for d in docs], args.cache_dir, "docs")
            dim, kind = vectors.shape[1], "minilm"
        with timer("fathom load"):
            fathom = fathom_leg.FathomCorpus(args.fathom, digest, dim, kind)
            result["fathom_load_seconds"] = round(fathom.load(docs, vectors), 1)
        with timer("fathom keyword"):
            for q in queries:
                rank_fk[q.qid] = fathom.search(text=q.text, limit=100)
        fk10 = [ids(rank_fk[q.qid])[:10] for q in queries]
        for ref, scores in ((fn_ref, s_fn), (bm25s_ref, s_bm25s)):
            agree.append(agreement("fathom keyword (SDK)", ref, scores, fk10))
    result["agreement"] = agree

    if not args.agreement_only:
        result["quality"] = quality(args, docs, queries, q_lex, pg, rank_sql, fathom, rank_fk, timer)

    result["seconds"] = timer.phases
    print_report(result)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\nresults written to {args.json}")
    pg.close()
    if fathom:
        fathom.close()
    return 0


def quality(args, docs, queries, q_lex, pg, rank_sql, fathom, rank_fk, timer):
    """The quality table: every method's rankings scored on the judgments."""
    import embed

    rows, per_query, ndcg = [], {}, {}

    def add(name, r10, r100):
        rows.append(quality_row(name, queries, r10, r100))
        per_query[name] = [metrics.target_rank(r, q.target) for r, q in zip(r100, queries)]
        ndcg[name] = [metrics.ndcg_at_k(r, q.relevant, 10) for r, q in zip(r10, queries)]

    with timer("embeddings (queries; documents cached)"):
        d_emb = embed.cached_embeddings([d.body for d in docs], args.cache_dir, "docs")
        q_emb = embed.cached_embeddings([q.text for q in queries], args.cache_dir, "queries")
    doc_ids = [d.id for d in docs]

    with timer("offline vector + ts_rank"):
        # Exact cosine (unit vectors): the vector leg without HNSW error.
        sims = q_emb @ d_emb.T
        vec = []
        for row in sims:
            top = np.argsort(-row, kind="stable")[:100]
            vec.append([(doc_ids[j], float(row[j])) for j in top])
        ts = {f: [] for f in pgdb.TS_RANK_FLAGS}
        for c in q_lex:
            for f, r in pg.ts_rank_search(c, 100).items():
                ts[f].append(r)

    if rank_sql:
        sql = [rank_sql[q.qid] for q in queries]
        add("keyword: BM25 pg_textsearch (SQL)", [ids(r)[:10] for r in sql], [ids(r) for r in sql])
    for f in pgdb.TS_RANK_FLAGS:
        add(f"keyword: ts_rank flag {f} (OR query)", [ids(r)[:10] for r in ts[f]], [ids(r) for r in ts[f]])
    add("vector: exact cosine (numpy)", [ids(r)[:10] for r in vec], [ids(r) for r in vec])
    if rank_sql:
        for k in RRF_KS:
            fused = [metrics.rrf(v, s, k) for v, s in zip(vec, sql)]
            add(f"hybrid offline: RRF k={k} (BM25 SQL + exact vector)", [ids(r)[:10] for r in fused], [ids(r)[:100] for r in fused])
        for a in RS_ALPHAS:
            fused = [metrics.relative_score(v, s, a) for v, s in zip(vec, sql)]
            add(f"hybrid offline: relative score a={a} (BM25 SQL + exact vector)", [ids(r)[:10] for r in fused], [ids(r)[:100] for r in fused])

    if fathom:
        fk = [rank_fk[q.qid] for q in queries]
        add("keyword: fathom (SDK)", [ids(r)[:10] for r in fk], [ids(r) for r in fk])
        with timer("fathom vector + hybrid"):
            fv = [fathom.search(vector=e.tolist(), limit=100) for e in q_emb]
            h10 = [fathom.search(text=q.text, vector=e.tolist(), limit=10) for q, e in zip(queries, q_emb)]
            h100 = [fathom.search(text=q.text, vector=e.tolist(), limit=100) for q, e in zip(queries, q_emb)]
        add("vector: fathom HNSW (SDK)", [ids(r)[:10] for r in fv], [ids(r) for r in fv])
        add("hybrid: fathom default RRF k=60 (SDK)", [ids(r) for r in h10], [ids(r) for r in h100])
        for k in RRF_KS:
            fused = [metrics.rrf(v, s, k) for v, s in zip(fv, fk)]
            add(f"hybrid offline: RRF k={k} (fathom legs)", [ids(r)[:10] for r in fused], [ids(r)[:100] for r in fused])
        for a in RS_ALPHAS:
            fused = [metrics.relative_score(v, s, a) for v, s in zip(fv, fk)]
            add(f"hybrid offline: relative score a={a} (fathom legs)", [ids(r)[:10] for r in fused], [ids(r)[:100] for r in fused])
    return {"table": rows, "paired": paired_deltas(ndcg), "ndcg@10_per_query": ndcg,
            "target_rank_per_query": per_query, "qids": [q.qid for q in queries]}


def paired_deltas(ndcg: dict[str, list[float]]) -> list[dict]:
    """Each hybrid/keyword/vector variant's nDCG@10 minus a baseline's, per query,
    with a 95% interval (mean ± 1.96 standard errors of the paired differences):
    fusion settings differ by ~0.01, so whether a difference is noise matters."""
    out = []
    for base_key, prefix in (("(BM25 SQL + exact vector)", "hybrid offline"), ("(fathom legs)", "hybrid offline")):
        base = f"hybrid offline: RRF k=60 {base_key}"
        if base not in ndcg:
            continue
        for name, vals in ndcg.items():
            if name == base or not (name.startswith(prefix) and name.endswith(base_key)):
                continue
            d = np.array(vals) - np.array(ndcg[base])
            half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
            out.append({"method": name, "baseline": base, "delta_ndcg@10": round(float(d.mean()), 4),
                        "ci95": round(float(half), 4), "better": int((d > 0).sum()), "worse": int((d < 0).sum())})
    base = "hybrid: fathom default RRF k=60 (SDK)"
    for other in ("keyword: fathom (SDK)", "vector: fathom HNSW (SDK)"):
        if base in ndcg and other in ndcg:
            d = np.array(ndcg[base]) - np.array(ndcg[other])
            half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
            out.append({"method": base, "baseline": other, "delta_ndcg@10": round(float(d.mean()), 4),
                        "ci95": round(float(half), 4), "better": int((d > 0).sum()), "worse": int((d < 0).sum())})
    return out


def print_report(result):
    c = result["corpus"]
    print(f"\ncorpus: {c['documents']} docs, {c['queries']} queries, {c['mean_relevant_per_query']} relevant/query, "
          f"{c['mean_lexemes_per_doc']} lexemes/doc")
    if "sql_vs_fieldnorm_score_relative_error" in result:
        e = result["sql_vs_fieldnorm_score_relative_error"]
        print(f"SQL score vs fieldnorm reference: max rel. error {e['max']:.2e}, mean {e['mean']:.2e} over {e['n']} hits")
    print("\nTop-10 agreement (mean overlap; tie-aware counts a document tied with the reference's 10th as agreeing)")
    print(f"{'tested':34} {'reference':40} {'strict':>7} {'tie-aw':>7} {'ties@10':>7} {'<1':>5}")
    for a in result["agreement"]:
        print(f"{a['tested']:34} {a['reference']:40} {a['mean_overlap_strict']:7.3f} {a['mean_overlap_tie_aware']:7.3f} "
              f"{a['queries_with_ties_at_10']:7d} {a['queries_below_1']:5d}")
    if "quality" in result:
        print(f"\n{'method':66} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'hit@100':>8}")
        for r in result["quality"]["table"]:
            print(f"{r['method']:66} {r['ndcg@10']:8.4f} {r['recall@100']:7.4f} {r['mrr@10']:7.4f} {r['hit@100']:8.4f}")
    if "quality" in result and result["quality"]["paired"]:
        print("\nPaired nDCG@10 differences (mean ± 95% CI over queries; better/worse = queries)")
        for p in result["quality"]["paired"]:
            print(f"{p['method']:62} vs {p['baseline']:50} {p['delta_ndcg@10']:+.4f} ± {p['ci95']:.4f}  {p['better']:3d}/{p['worse']:3d}")
    print("\nseconds: " + ", ".join(f"{k} {v}" for k, v in result["seconds"].items()))


if __name__ == "__main__":
    sys.exit(main())
