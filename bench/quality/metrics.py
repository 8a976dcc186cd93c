"""Ranking comparisons and retrieval metrics; pure functions over id lists.

A ranking is a list of (id, score), best first.
"""

from __future__ import annotations

import math

import numpy as np

# Scores within this relative distance of the reference's 10th score count as
# tied with it: pg_textsearch adds float4 terms, the reference float64, so
# documents the reference ties exactly (or nearly) may come out in any order.
TIE_RTOL = 1e-5


def overlap_at_k(reference_ids: list[str], ref_scores: np.ndarray, tested: list[str], k: int = 10) -> dict | None:
    """Top-k agreement of a tested ranking with a reference, strict and tie-aware.

    `reference_ids`/`ref_scores`: every document's reference score (0 = no
    query term). Strict: |A ∩ B| / k with A the reference top k, ties broken
    by id. Tie-aware: the largest |A* ∩ B| / k over every top k A* that the
    reference allows when documents tie at its k-th score, i.e. a tested
    document whose reference score equals the k-th best (within TIE_RTOL)
    agrees as long as there are tie slots left. When fewer than k documents
    score > 0 the denominator is that count. Returns None if none score > 0.
    """
    pos = np.flatnonzero(ref_scores > 0)
    if len(pos) == 0:
        return None
    denom = min(k, len(pos))
    order = sorted(pos, key=lambda j: (-ref_scores[j], reference_ids[j]))
    strict_top = {reference_ids[j] for j in order[:denom]}
    kth = ref_scores[order[denom - 1]]
    tol = TIE_RTOL * kth
    above = {reference_ids[j] for j in pos if ref_scores[j] > kth + tol}
    tied = {reference_ids[j] for j in pos if abs(ref_scores[j] - kth) <= tol}
    slots = denom - len(above)
    b = tested[:denom]
    strict = len(strict_top.intersection(b))
    n_above = len(above.intersection(b))
    n_tied = len(tied.intersection(b))
    return {
        "strict": strict / denom,
        "tie_aware": (n_above + min(n_tied, max(slots, 0))) / denom,
        "ties_at_k": len(tied) > max(slots, 0),
        "denominator": denom,
    }


def ndcg_at_k(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    """nDCG@k with gains 2^grade - 1 (grade 2 target, 1 source sibling)."""
    dcg = sum((2 ** relevant.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: list[str], relevant: dict[str, int], k: int = 100) -> float:
    """Relevant documents in the top k / min(#relevant, k).

    Capped at k because a few source packages (cross compilers) have more
    than 100 binary packages in the corpus.
    """
    hit = sum(1 for d in ranked[:k] if d in relevant)
    return hit / min(len(relevant), k)


def target_rank(ranked: list[str], target: str) -> int | None:
    """1-based rank of the known item, or None."""
    try:
        return ranked.index(target) + 1
    except ValueError:
        return None


def rrf(vector: list[tuple[str, float]], text: list[tuple[str, float]], k: float) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the legs (weights 1)."""
    fused: dict[str, float] = {}
    for leg in (vector, text):
        for r, (d, _) in enumerate(leg, start=1):
            fused[d] = fused.get(d, 0.0) + 1.0 / (k + r)
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))


def relative_score(vector: list[tuple[str, float]], text: list[tuple[str, float]], alpha: float) -> list[tuple[str, float]]:
    """alpha * vector + (1 - alpha) * text, each leg min-max normalised over
    its own candidates (1 when they all score the same, 0 when absent), as
    fathom's RelativeScore fusion does (server/src/store/search.rs)."""

    def norm(leg):
        if not leg:
            return {}
        s = [x for _, x in leg]
        lo, hi = min(s), max(s)
        return {d: (1.0 if hi == lo else (x - lo) / (hi - lo)) for d, x in leg}

    nv, nt = norm(vector), norm(text)
    fused = {d: alpha * nv.get(d, 0.0) + (1 - alpha) * nt.get(d, 0.0) for d in set(nv) | set(nt)}
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))
