"""The corpus in a fathom collection, searched through the Python SDK.

The collection is named after the corpus digest and the vector dimension and
is reused when it already holds every document, so a rerun against the same
server does not reload 20,000 documents.
"""

from __future__ import annotations

import time

import numpy as np


def pseudo_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Deterministic unit vectors for runs that only exercise the keyword leg."""
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class FathomCorpus:
    """A fathom collection holding the corpus bodies with the given vectors."""

    def __init__(self, target: str, digest: str, dim: int, vector_kind: str):
        from fathom import Client  # the SDK from client/python

        self.client = Client(target, timeout=600)
        # vector_kind ("minilm" / "random") is part of the name: the same
        # corpus with other vectors is another collection.
        self.name = f"quality_{digest[:10]}_{vector_kind}_{dim}"
        self.dim = dim

    def load(self, docs, vectors: np.ndarray) -> float:
        """Creates and fills the collection unless complete; returns seconds spent."""
        from fathom import FathomError

        t0 = time.time()
        existing = {c.name for c in self.client.list_collections()}
        if self.name in existing:
            col = self.client.collection(self.name)
            if col.count() == len(docs):
                print(f"fathom: reusing collection {self.name} ({len(docs)} docs)")
                return 0.0
            self.client.delete_collection(self.name)
        print(f"fathom: loading {len(docs)} docs into {self.name} (dimension {self.dim})...", flush=True)
        # Deferred index: one bulk HNSW build after the load is much faster
        # than inserting 20k rows into the graph one by one.
        col = self.client.create_collection(self.name, self.dim, metric="cosine", language="english", defer_index=True)
        col.upsert(
            [d.id for d in docs],
            vectors,
            texts=[d.body for d in docs],
            metadatas=[{"source": d.source} for d in docs],
            batch_size=500,
        )
        try:
            self.client.build_index(self.name)
        except FathomError as e:  # searches still work, as exact scans
            print(f"fathom: build_index failed ({e}); vector searches will be exact scans")
        return time.time() - t0

    def search(self, text: str | None = None, vector=None, limit: int = 10, fusion=None) -> list[tuple[str, float]]:
        """One search: (id, score) best first; text only, vector only or hybrid."""
        col = self.client.collection(self.name)
        hits = col.search(vector=vector, text=text, limit=limit, fusion=fusion, include=[])
        return [(h.id, h.score) for h in hits]

    def close(self) -> None:
        self.client.close()
