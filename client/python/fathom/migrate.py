"""Migration helpers: load documents from files into a Fathom collection.

Both helpers stream the documents through :meth:`fathom.Collection.upsert_iter`
(bounded memory on the client side, beyond what the source format itself
needs), show a tqdm progress bar, and end with a count check: the number of
source documents against the number the collection holds, returned as a
:class:`MigrationReport` (and printed when ``progress`` is on).

JSON Lines (:func:`from_jsonl`)
    One JSON object per line: ``{"id": str, "vector": [float, ...],
    "text": str, "metadata": {...}, "tenant": str}``; ``text``, ``metadata``
    and ``tenant`` are optional, blank lines are skipped. Consecutive lines
    with the same tenant go through one stream, so group lines by tenant.

Simple vector store folder (:func:`from_simple_store`)
    ``vectors.pkl``
        A pickle of either a dict ``{id: vector}`` or a list of vectors
        (a 2-d numpy array works too). Vectors are lists of floats or 1-d
        numpy arrays; non-string ids are converted with ``str()``.
    ``docs.json`` (optional)
        Texts and metadata, either a JSON object keyed by id,
        ``{"doc-1": {"text": "...", "metadata": {...}}}``, or a JSON array of
        ``{"id": "doc-1", "text": "...", "metadata": {...}}``. With a *dict* of
        vectors, entries are joined by id (an array entry must then have an
        ``id``). With a *list* of vectors, ``docs.json`` must be an array of
        the same length, matched by position; an entry's ``id`` names the
        document, else its position (``"0"``, ``"1"``, ...) does. Without
        ``docs.json``, documents have no text or metadata and, for a list of
        vectors, positional ids.

    Unpickling runs code from the file: only migrate stores you trust.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fathom.client import Collection

__all__ = ["MigrationReport", "from_jsonl", "from_simple_store"]


@dataclass(frozen=True)
class MigrationReport:
    """Outcome of a migration: what the source held and what the collection holds."""

    source_count: int
    """Documents read from the source."""
    collection_count: int
    """Documents in the collection afterwards (for the tenants migrated)."""
    documents_written: int
    """Documents the server acknowledged as written."""
    skipped_documents: int = 0
    """Documents skipped because an earlier run with the same ``stream_id``
    had committed them (a resumed migration)."""

    @property
    def matches(self) -> bool:
        """Whether the collection holds exactly as many documents as the source.

        False if the collection already held other documents, or if the
        source repeats an id (the later document replaces the earlier)."""
        return self.source_count == self.collection_count

    def __str__(self) -> str:
        verdict = "ok" if self.matches else "MISMATCH"
        resumed = (
            f", {self.skipped_documents} skipped as written by an earlier run"
            if self.skipped_documents
            else ""
        )
        return (
            f"source: {self.source_count} documents, collection: "
            f"{self.collection_count} documents ({verdict}){resumed}"
        )


def from_jsonl(
    collection: Collection,
    path: str | os.PathLike[str],
    *,
    batch_size: int = 500,
    stream_id: str | None = None,
    progress: bool = True,
) -> MigrationReport:
    """Streams a JSON Lines file into ``collection`` (format in the module doc).

    Args:
        collection: Target collection handle (its tenant applies to lines
            without a ``tenant``).
        path: The ``.jsonl`` file.
        batch_size: Documents per upsert batch.
        stream_id: Makes the upload resumable: across connection drops, and
            across runs (run again on the same file, fixed if a line was bad,
            with any ``batch_size``, to skip exactly what an earlier run
            committed; another file is refused with
            :class:`~fathom.ResumeMismatchError`). With several tenants, each
            run of lines gets ``{stream_id}.{n}``.
        progress: Show a progress bar and print the report.

    Raises:
        UpsertInputError: a line is not a JSON object with ``id`` and
            ``vector`` (the message names the line; ``__cause__`` is a
            ``ValueError``); nothing of its batch was sent, the lines before
            it are committed (``committed_documents``).
        FathomError: the server refused the data (an
            :class:`~fathom.UpsertError`, with the committed figures).
    """
    source = Path(path)
    with source.open(encoding="utf-8") as lines:
        total = sum(1 for line in lines if line.strip())

    default_tenant = collection.tenant
    tenants: set[str | None] = set()
    written = 0
    skipped = 0
    with source.open(encoding="utf-8") as lines, _bar(total, progress, source.name) as bar:
        records = _jsonl_records(lines, source)
        runs = itertools.groupby(records, key=lambda r: r.get("tenant") or default_tenant)
        for run_number, (tenant, run) in enumerate(runs):
            tenants.add(tenant)
            run_stream_id = stream_id if stream_id is None or run_number == 0 else f"{stream_id}.{run_number}"
            result = collection.upsert_iter(
                run,
                tenant=tenant,
                batch_size=batch_size,
                stream_id=run_stream_id,
                progress=bar.update,
            )
            written += result.documents_written
            skipped += result.skipped_documents

    report = MigrationReport(
        total, _count(collection, tenants or {default_tenant}), written, skipped
    )
    if progress:
        print(f"{source}: {report}")
    return report


def from_simple_store(
    collection: Collection,
    folder: str | os.PathLike[str],
    *,
    vectors_file: str = "vectors.pkl",
    docs_file: str = "docs.json",
    batch_size: int = 500,
    stream_id: str | None = None,
    progress: bool = True,
) -> MigrationReport:
    """Streams a "simple vector store" folder into ``collection``
    (layout in the module doc). ``stream_id`` makes it resumable, as for
    :func:`from_jsonl`.

    Raises:
        FileNotFoundError: ``vectors.pkl`` is missing.
        ValueError: the files do not fit together (the message says how).
        FathomError: the server refused the data.
    """
    root = Path(folder)
    with (root / vectors_file).open("rb") as f:
        vectors = pickle.load(f)  # noqa: S301 - documented: trusted stores only
    docs_path = root / docs_file
    docs: Any = None
    if docs_path.exists():
        with docs_path.open(encoding="utf-8") as f:
            docs = json.load(f)

    records, total = _store_records(vectors, docs)
    with _bar(total, progress, root.name) as bar:
        result = collection.upsert_iter(
            records, batch_size=batch_size, stream_id=stream_id, progress=bar.update
        )

    report = MigrationReport(
        total,
        _count(collection, {collection.tenant}),
        result.documents_written,
        result.skipped_documents,
    )
    if progress:
        print(f"{root}: {report}")
    return report


# -- helpers -------------------------------------------------------------------


def _bar(total: int, enabled: bool, label: str) -> tqdm[Any]:
    return tqdm(total=total, unit="doc", desc=label, disable=not enabled)


def _count(collection: Collection, tenants: set[str | None]) -> int:
    return sum(collection.count(tenant=tenant) for tenant in tenants)


def _jsonl_records(lines: Iterator[str], source: Path) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{source}:{number}: not JSON: {error.msg}") from None
        if not isinstance(record, dict) or "id" not in record or "vector" not in record:
            raise ValueError(f'{source}:{number}: expected an object with "id" and "vector"')
        yield record


def _store_records(vectors: Any, docs: Any) -> tuple[Iterator[dict[str, Any]], int]:
    """Joins the pickled vectors with docs.json; returns records and their count."""
    if isinstance(vectors, Mapping):
        by_id = _docs_by_id(docs)
        vector_ids = {str(key) for key in vectors}
        missing = [key for key in by_id if key not in vector_ids]
        if missing:
            raise ValueError(
                f"docs.json has {len(missing)} id(s) with no vector, e.g. {missing[:3]}"
            )

        def keyed() -> Iterator[dict[str, Any]]:
            for key, vector in vectors.items():
                doc_id = str(key)
                yield _record(doc_id, vector, by_id.get(doc_id))

        return keyed(), len(vectors)

    if hasattr(vectors, "__len__") and hasattr(vectors, "__iter__"):
        if docs is not None and not isinstance(docs, list):
            raise ValueError("with a list of vectors, docs.json must be a JSON array")
        if docs is not None and len(docs) != len(vectors):
            raise ValueError(
                f"vectors.pkl holds {len(vectors)} vectors but docs.json {len(docs)} entries"
            )

        def positional() -> Iterator[dict[str, Any]]:
            for position, vector in enumerate(vectors):
                entry = docs[position] if docs is not None else None
                doc_id = str(entry["id"]) if entry and "id" in entry else str(position)
                yield _record(doc_id, vector, entry)

        return positional(), len(vectors)

    raise ValueError(
        f"vectors.pkl must hold a dict of id -> vector or a list of vectors, "
        f"not {type(vectors).__name__}"
    )


def _docs_by_id(docs: Any) -> dict[str, Mapping[str, Any]]:
    if docs is None:
        return {}
    if isinstance(docs, Mapping):
        return {str(key): value for key, value in docs.items()}
    if isinstance(docs, list):
        by_id: dict[str, Mapping[str, Any]] = {}
        for position, entry in enumerate(docs):
            if not isinstance(entry, Mapping) or "id" not in entry:
                raise ValueError(f'docs.json entry #{position} needs an "id"')
            by_id[str(entry["id"])] = entry
        return by_id
    raise ValueError("docs.json must be a JSON object keyed by id or a JSON array")


def _record(doc_id: str, vector: Any, entry: Mapping[str, Any] | None) -> dict[str, Any]:
    if entry is not None and not isinstance(entry, Mapping):
        raise ValueError(f"docs.json entry for {doc_id!r} is not an object")
    entry = entry or {}
    return {
        "id": doc_id,
        "vector": vector,
        "text": entry.get("text"),
        "metadata": entry.get("metadata"),
    }
