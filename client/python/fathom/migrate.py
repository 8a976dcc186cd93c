"""Migration helpers: load documents from files and other stores into Fathom.

The helpers stream the documents through :meth:`fathom.Collection.upsert_iter`
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

Chroma (:func:`from_chroma`)
    A Chroma store (a ``chromadb.PersistentClient`` folder, or any Chroma
    client): every collection, or the chosen ones, each into a Fathom
    collection of the same name made valid (lower-case, ``_`` for other
    characters: ``My-Docs.v1`` becomes ``my_docs_v1``) with the same
    dimension and metric, with ids, embeddings (bit for bit: Chroma keeps
    float32, as Fathom does), documents and metadata. Needs the ``chroma``
    extra (``pip install "./client/python[chroma]"`` from the root of a
    clone of fathom; the SDK is not on PyPI). Also on the command
    line: ``python -m fathom.migrate chroma PATH`` and ``fathom import
    --from-chroma PATH``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fathom._connection import TLS
from fathom.client import DEFAULT_TARGET, Client, Collection
from fathom.errors import FathomError
from fathom.models import IndexSpec

__all__ = ["MigrationReport", "chroma_collection_name", "from_chroma", "from_jsonl", "from_simple_store"]

_CHROMA_PAGE = 1000
_CHROMA_METRICS = {"l2": "l2", "cosine": "cosine", "ip": "inner_product"}


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


def from_chroma(
    path_or_client: str | os.PathLike[str] | Any,
    collection: str | Sequence[str] | None = None,
    *,
    client: Client | None = None,
    server: str = DEFAULT_TARGET,
    names: Mapping[str, str] | None = None,
    batch_size: int = 500,
    stream_id: str | None = None,
    index: IndexSpec | None = None,
    language: str = "english",
    progress: bool = True,
) -> dict[str, MigrationReport]:
    """Copies Chroma collections into Fathom (see the module doc).

    Each Chroma collection goes into the Fathom collection
    :func:`chroma_collection_name` names (or ``names[chroma_name]``),
    created with the dimension of its embeddings and its metric (Chroma's
    ``l2``, ``cosine`` or ``ip``) if it does not exist. Documents are read a
    page at a time and streamed in order, so memory stays bounded.

    Args:
        path_or_client: The folder of a ``chromadb.PersistentClient``, or a
            Chroma client (``chromadb.HttpClient(...)`` works too).
        collection: The Chroma collection(s) to copy; ``None``: all of them.
        client: The Fathom client (default: one on ``server``).
        server: Where Fathom listens, when ``client`` is not given.
        names: Fathom collection names for some Chroma collections.
        batch_size: Documents per upsert batch.
        stream_id: Makes the migration resumable: collection ``c`` streams
            under ``{stream_id}.{c}`` (its Fathom name), so running the same
            call again after an interruption skips what was committed and
            copies the rest (the Chroma collection must not have changed
            meanwhile, except by additions at its end).
        index: Vector index of the collections created (default HNSW).
        language: Text-search configuration of the collections created.
        progress: Show a progress bar per collection and print each report.

    Returns:
        A :class:`MigrationReport` per Chroma collection, by Chroma name.
        Empty Chroma collections are reported (0 and 0) but not created.

    Raises:
        ValueError: a chosen collection does not exist, or two collections
            would get the same Fathom name.
        FathomError: the server refused; an existing Fathom collection has
            another dimension or metric (ALREADY_EXISTS).
    """
    chroma = _chroma_client(path_or_client)
    available = [c if isinstance(c, str) else c.name for c in chroma.list_collections()]
    if collection is None:
        chosen = sorted(available)
    else:
        chosen = [collection] if isinstance(collection, str) else list(collection)
        missing = [name for name in chosen if name not in available]
        if missing:
            raise ValueError(
                f"no Chroma collection {', '.join(map(repr, missing))}; "
                f"the store has {', '.join(map(repr, sorted(available))) or 'none'}"
            )
    targets = {name: (names or {}).get(name) or chroma_collection_name(name) for name in chosen}
    seen: dict[str, str] = {}
    for source_name, target in targets.items():
        if target in seen:
            raise ValueError(
                f"Chroma collections {seen[target]!r} and {source_name!r} would both go into "
                f"{target!r}: pass names={{...}} to tell them apart"
            )
        seen[target] = source_name

    fathom = client if client is not None else Client(server)
    try:
        return {
            name: _copy_chroma_collection(
                chroma.get_collection(name), fathom, targets[name], batch_size,
                None if stream_id is None else f"{stream_id}.{targets[name]}",
                index, language, progress,
            )
            for name in chosen
        }
    finally:
        if client is None:
            fathom.close()


def chroma_collection_name(name: str) -> str:
    """The Fathom name of a Chroma collection: lower-case, runs of other
    characters than letters and digits become ``_``, a leading digit gets a
    ``c_``, and at most 48 characters (``My-Docs.v1`` -> ``my_docs_v1``)."""
    fathom_name = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not fathom_name or not fathom_name[0].isalpha():
        fathom_name = f"c_{fathom_name}"
    return fathom_name[:48].rstrip("_")


def _chroma_client(path_or_client: Any) -> Any:
    if not isinstance(path_or_client, (str, os.PathLike)):
        return path_or_client
    try:
        import chromadb
    except ImportError as error:
        raise ImportError(
            'from_chroma needs chromadb: pip install "./client/python[chroma]" from the '
            "root of a clone of fathom (the SDK is not on PyPI)"
        ) from error
    path = Path(path_or_client)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a Chroma store folder")
    return chromadb.PersistentClient(path=str(path))


def _copy_chroma_collection(
    source: Any,
    fathom: Client,
    target: str,
    batch_size: int,
    stream_id: str | None,
    index: IndexSpec | None,
    language: str,
    progress: bool,
) -> MigrationReport:
    total = int(source.count())
    if total == 0:
        report = MigrationReport(0, 0, 0)
        if progress:
            print(f"chroma {source.name} (empty, not created): {report}")
        return report
    first = source.get(limit=1, include=["embeddings"])["embeddings"]
    dimension = len(first[0])
    collection = fathom.get_or_create_collection(
        target, dimension, _chroma_metric(source), language, False, index
    )
    with _bar(total, progress, f"{source.name} -> {target}") as bar:
        result = collection.upsert_iter(
            _chroma_records(source),
            batch_size=batch_size,
            stream_id=stream_id,
            progress=bar.update,
        )
    report = MigrationReport(
        total, collection.count(), result.documents_written, result.skipped_documents
    )
    if progress:
        print(f"chroma {source.name} -> fathom {target}: {report}")
    return report


def _chroma_metric(source: Any) -> str:
    configuration = getattr(source, "configuration", None) or {}
    hnsw = configuration.get("hnsw") or {}
    space = hnsw.get("space") or (source.metadata or {}).get("hnsw:space") or "l2"
    try:
        return _CHROMA_METRICS[space]
    except KeyError:
        raise ValueError(f"Chroma collection {source.name!r} uses metric {space!r}") from None


def _chroma_records(source: Any) -> Iterator[dict[str, Any]]:
    """The collection's documents in Chroma's order, a page at a time."""
    offset = 0
    while True:
        page = source.get(
            limit=_CHROMA_PAGE, offset=offset, include=["embeddings", "documents", "metadatas"]
        )
        ids = page["ids"]
        if not ids:
            return
        documents = page["documents"] or [None] * len(ids)
        metadatas = page["metadatas"] or [None] * len(ids)
        for doc_id, vector, text, metadata in zip(ids, page["embeddings"], documents, metadatas):
            yield {"id": doc_id, "vector": vector, "text": text, "metadata": metadata}
        offset += len(ids)


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


# -- command line ----------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fathom.migrate chroma PATH [--collection C ...]``: what
    ``fathom import --from-chroma PATH`` runs. Exits 0 only if every
    collection's counts match."""
    parser = argparse.ArgumentParser(
        prog="python -m fathom.migrate", description="Copy another store into Fathom."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    chroma = commands.add_parser("chroma", help="copy a Chroma PersistentClient folder")
    chroma.add_argument("path", help="the Chroma store's folder")
    chroma.add_argument(
        "--collection", action="append", help="a Chroma collection to copy (repeat; default: all)"
    )
    chroma.add_argument("--server", default=os.environ.get("FATHOM_SERVER", DEFAULT_TARGET))
    chroma.add_argument("--tls-ca", help="PEM of the CA to trust for the server (TLS)")
    chroma.add_argument("--tls-client-cert", help="PEM client certificate (mutual TLS)")
    chroma.add_argument("--tls-client-key", help="PEM key of --tls-client-cert")
    chroma.add_argument("--stream-id", help="makes the migration resumable (see from_chroma)")
    chroma.add_argument("--batch-size", type=int, default=500)
    chroma.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        tls_files = (args.tls_ca, args.tls_client_cert, args.tls_client_key)
        tls = TLS(*tls_files) if any(tls_files) else None
        client = Client(args.server, tls=tls)
    except (ValueError, OSError) as error:
        print(f"fathom.migrate: {error}", file=sys.stderr)
        return 1
    try:
        reports = from_chroma(
            args.path,
            args.collection,
            client=client,
            batch_size=args.batch_size,
            stream_id=args.stream_id,
            progress=not args.no_progress,
        )
    except (FathomError, ValueError, OSError, ImportError) as error:
        print(f"fathom.migrate: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if args.no_progress:
        for name, report in reports.items():
            print(f"chroma {name}: {report}")
    return 0 if all(report.matches for report in reports.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
