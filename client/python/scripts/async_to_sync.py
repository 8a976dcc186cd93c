#!/usr/bin/env python3
"""Generates the sync client, fathom/client.py, from the async one, fathom/aio.py.

The two clients are one implementation: aio.py is written by hand and
client.py is this script's output, checked in (as psycopg 3 does with its
tools/async_to_sync.py). The transformation works on tokens, so comments and
layout survive:

- ``async def``/``async for``/``async with`` lose ``async``; ``await x``
  becomes ``x``;
- ``Awaitable[X]`` and ``Coroutine[Any, Any, X]`` become ``X``;
  ``grpc.aio.name`` becomes ``grpc.name``;
- the names in ``NAMES`` become their sync twins, in code and (for the class
  names) in strings and docstrings;
- a union that has become ``X | X`` becomes ``X``, and imports left unused
  are dropped;
- the module docstring is ``SYNC_MODULE_DOC``.

What cannot be said this way lives in fathom/_transport.py, in both forms.

    scripts/async_to_sync.py          rewrite fathom/client.py
    scripts/async_to_sync.py --check  exit 1 if fathom/client.py is stale
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from collections.abc import Callable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fathom"
SOURCE = PACKAGE / "aio.py"
TARGET = PACKAGE / "client.py"

NAMES = {
    "AsyncClient": "Client",
    "AsyncCollection": "Collection",
    "AsyncDocumentSource": "DocumentSource",
    "AsyncIterable": "Iterable",
    "AsyncIterator": "Iterator",
    "AsyncUpsertCall": "UpsertCall",
    "StopAsyncIteration": "StopIteration",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "adicts_to_documents": "dicts_to_documents",
    "anext": "next",
    "aread_document": "read_document",
    "asyncio": "time",
}
"""Names of the async face and their sync twins."""

NAMES_IN_TEXT = ("AsyncClient", "AsyncCollection")
"""Names that are also replaced inside strings (docstrings, reprs)."""

UNWRAPPED = {"Awaitable": 0, "Coroutine": 2}
"""Generic types that become their last argument (the number of arguments before it)."""

SYNC_MODULE_DOC = '''"""Synchronous Fathom client (``grpc``).

Generated from :mod:`fathom.aio` by ``scripts/async_to_sync.py``: edit
aio.py, then run the script (``test.sh`` fails while this file is stale).

Example::

    from fathom import Client

    with Client("127.0.0.1:50051") as client:
        docs = client.create_collection("articles", dimension=3)
        docs.upsert(["a", "b"], [[1, 0, 0], [0, 1, 0]], texts=["red fox", "blue sky"])
        print(docs.search(vector=[1, 0, 0], text="fox", limit=5))
"""'''

HEADER = "# Generated from fathom/aio.py by scripts/async_to_sync.py. Do not edit.\n"

_STRING_TOKENS = {tokenize.STRING} | (
    {tokenize.FSTRING_MIDDLE} if hasattr(tokenize, "FSTRING_MIDDLE") else set()
)


def to_sync(source: str) -> str:
    """The sync module for the async module ``source``."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(position: tuple[int, int]) -> int:
        row, column = position
        return starts[row - 1] + column

    tokens = [
        token
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type not in (tokenize.NL, tokenize.COMMENT)
    ]
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in `source`
    docstring_done = False
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        start, end = offset(token.start), offset(token.end)
        if token.type == tokenize.STRING and not docstring_done:
            edits.append((start, end, SYNC_MODULE_DOC))
            docstring_done = True
        elif token.type in _STRING_TOKENS:
            text = token.string
            for name in NAMES_IN_TEXT:
                text = re.sub(rf"\b{name}\b", NAMES[name], text)
            if text != token.string:
                edits.append((start, end, text))
        elif token.type != tokenize.NAME or following is None:
            continue
        elif token.string == "async" and following.string in ("def", "for", "with"):
            edits.append((start, offset(following.start), ""))
        elif token.string == "await":
            edits.append((start, offset(following.start), ""))
        elif token.string in UNWRAPPED and following.string == "[":
            edits.extend(_unwrap(tokens, index, UNWRAPPED[token.string], offset))
        elif token.string == "aio" and index >= 2 and tokens[index - 2].string == "grpc":
            edits.append((offset(tokens[index - 1].start), end, ""))  # ".aio"
        elif token.string in NAMES:
            edits.append((start, end, NAMES[token.string]))

    result = source
    for start, end, replacement in sorted(edits, reverse=True):
        result = result[:start] + replacement + result[end:]
    result = _merge_unions(result)
    result = _drop_unused_imports(result)
    return HEADER + result


def _unwrap(
    tokens: list[tokenize.TokenInfo],
    index: int,
    skipped: int,
    offset: Callable[[tuple[int, int]], int],
) -> list[tuple[int, int, str]]:
    """Edits that turn ``Name[a, ..., X]`` (``skipped`` arguments before X) into ``X``."""
    depth = 0
    commas = 0
    cut = None
    for position in range(index + 1, len(tokens)):
        text = tokens[position].string
        if text == "[":
            depth += 1
        elif text == "]":
            depth -= 1
            if depth == 0:
                start = offset(tokens[index].start)
                assert cut is not None or skipped == 0
                first = offset(tokens[index + 2].start) if skipped == 0 else cut
                closing = tokens[position]
                return [(start, first, ""), (offset(closing.start), offset(closing.end), "")]
        elif text == "," and depth == 1:
            commas += 1
            if commas == skipped:
                cut = offset(tokens[position + 1].start)
    raise ValueError(f"unbalanced brackets after {tokens[index].string} on line {tokens[index].start[0]}")


def _merge_unions(source: str) -> str:
    """``X | X`` (the async and sync types of an argument, now the same) becomes ``X``."""
    union = re.compile(r"(?<![\w.\[])([\w.]+(?:\[[^|\n]*?\])?) \| \1(?![\w\[])")
    while True:
        merged = union.sub(r"\1", source)
        if merged == source:
            return source
        source = merged


def _drop_unused_imports(source: str) -> str:
    """Drops the names of ``from ... import`` lines (and ``import`` lines)
    that the rest of the module no longer mentions, and repeated imports."""
    statement = re.compile(r"^(from [\w.]+ import )(\([^)]*\)|[^\n(]*)\n|^import ([\w.]+)\n", re.M)
    kept: list[str] = []
    position = 0
    seen: set[str] = set()
    body = statement.sub("", source)
    for match in statement.finditer(source):
        kept.append(source[position : match.start()])
        position = match.end()
        if match.group(3) is not None:
            module = match.group(3)
            if module not in seen and re.search(rf"\b{re.escape(module.split('.')[0])}\b", body):
                seen.add(module)
                kept.append(match.group(0))
            continue
        prefix, names_text = match.group(1), match.group(2)
        if prefix == "from __future__ import ":
            kept.append(match.group(0))
            continue
        names = [n.strip() for n in names_text.strip("()").replace("\n", " ").split(",") if n.strip()]
        used: list[str] = []
        for name in names:
            alias = name.split(" as ")[-1]
            if alias not in used and alias not in seen and re.search(rf"\b{alias}\b", body):
                used.append(name)
                seen.add(alias)
        if not used:
            continue
        if names_text.startswith("(") and len(used) > 1:
            kept.append(prefix + "(\n" + "".join(f"    {n},\n" for n in used) + ")\n")
        else:
            kept.append(prefix + ", ".join(used) + "\n")
    kept.append(source[position:])
    return "".join(kept)


def main(argv: list[str]) -> int:
    check = argv[1:] == ["--check"]
    if argv[1:] not in ([], ["--check"]):
        print(f"usage: {argv[0]} [--check]", file=sys.stderr)
        return 2
    generated = to_sync(SOURCE.read_text())
    if check:
        if TARGET.read_text() != generated:
            print(
                "fathom/client.py is stale: it is generated from fathom/aio.py; "
                "run client/python/scripts/async_to_sync.py",
                file=sys.stderr,
            )
            return 1
        print("fathom/client.py is up to date with fathom/aio.py")
        return 0
    TARGET.write_text(generated)
    print("generated fathom/client.py from fathom/aio.py")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
