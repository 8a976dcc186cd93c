#!/usr/bin/env python3
"""Imports a JSON Lines file into a Fathom collection through a resumable
UpsertStream (the Python SDK's ``upsert_iter`` with a ``stream_id``).

    import_jsonl.py --server HOST:PORT --collection C --stream-id S --batch-size N FILE

Each non-blank line is ``{"id": str, "vector": [float, ...], "text": str,
"metadata": {...}}`` (``text`` and ``metadata`` optional). The file is read
lazily, one line at a time. The collection must exist.

Prints one line, ``committed N documents of the input (W written by this
run, K skipped)``, where N is what the server holds under the stream id, W
what this run wrote and K what an earlier run had committed. Exits 0 only if
the whole input is committed; otherwise prints the error on stderr (a bad
line is named, and nothing of its batch is sent) and exits 1. Run the same
command again (with any batch size, after fixing a bad line) to continue
where it stopped; other data under the same stream id is refused.

Run it with the SDK's virtualenv (``client/python/test.sh --unit`` creates
``client/python/.venv`` and installs the SDK into it)::

    client/python/.venv/bin/python client/python/scripts/import_jsonl.py \\
        --server 127.0.0.1:50051 --collection docs --stream-id import-1 --batch-size 100 docs.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Run from a checkout without installing: the SDK is the parent folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fathom import Client, RetryPolicy, UpsertError  # noqa: E402

RETRY = RetryPolicy(max_stream_attempts=20, max_backoff=4.0, budget=30.0)
"""Up to 30 s of reconnect attempts without progress: a server or database
restart fits in."""


def records(path: Path) -> Iterator[dict[str, Any]]:
    """The documents of a JSON Lines file, read lazily; a bad line raises
    ValueError naming it."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not JSON: {error.msg}") from None
            if not isinstance(record, dict) or "id" not in record or "vector" not in record:
                raise ValueError(f'{path}:{number}: expected an object with "id" and "vector"')
            yield record


def figures(committed: int, written: int, skipped: int) -> str:
    return f"committed {committed} documents of the input ({written} written by this run, {skipped} skipped)"


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="import_jsonl", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="host:port of the Fathom server")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--stream-id", required=True, help="names the import; the same id resumes it")
    parser.add_argument("--batch-size", type=positive, default=500, help="documents per batch (default 500)")
    parser.add_argument("file", type=Path, help="the .jsonl file")
    args = parser.parse_args(argv)

    read = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal read
        for record in records(args.file):
            read += 1
            yield record

    with Client(args.server, retry=RETRY) as client:
        try:
            summary = client.collection(args.collection).upsert_iter(
                counted(), batch_size=args.batch_size, stream_id=args.stream_id
            )
        except UpsertError as error:
            print(f"import_jsonl: {error.code.name}: {error.message}", file=sys.stderr)
            for violation in error.violations:
                print(f"  {violation.field}: {violation.description}", file=sys.stderr)
            if error.in_flight_documents:
                print(
                    f"import_jsonl: {error.in_flight_documents} more documents were in flight and "
                    "may be committed too; run again to continue",
                    file=sys.stderr,
                )
            print(figures(error.committed_documents, error.documents_written, error.skipped_documents))
            return 1
    print(figures(summary.committed_documents, summary.documents_written, summary.skipped_documents))
    if summary.committed_documents != read:
        print(f"import_jsonl: the input has {read} documents, not all committed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
