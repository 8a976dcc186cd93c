"""The corpus and the queries: Debian package descriptions, read offline.

Documents are the LONG descriptions of Debian binary packages (without the
one-line synopsis); queries are the synopses of a random sample of those
packages. The package whose synopsis a query is is the known relevant item;
the other packages built from the same source package are relevant too,
with a lower grade (their long descriptions are usually near copies).

Nothing here looks at any ranking function: the query text is written by the
package's maintainer, not derived from the document's terms, so no retrieval
method is favoured by construction.

Where the text comes from: the apt lists under /var/lib/apt/lists. Package
indexes (`*_Packages*`) give each package's source package and the md5 of
its description; the long descriptions live in the `Translation-en` files,
which apt only downloads when translations are enabled. On a machine whose
apt config says `Acquire::Languages "none"` (Docker images do), run

    apt-get update -o Acquire::Languages=en

once. The result depends only on the content of those lists (their digest is
recorded with the results), so two runs on the same lists are identical.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import subprocess
from dataclasses import asdict, dataclass, field

LISTS_DIR = "/var/lib/apt/lists"
APT_HELPER = "/usr/lib/apt/apt-helper"


@dataclass(frozen=True)
class Doc:
    """One package: `body` (the long description) is what gets indexed."""

    id: str  # the binary package name
    source: str  # the source package name
    synopsis: str
    body: str


@dataclass(frozen=True)
class Query:
    """A known-item query: the synopsis of package `target`."""

    qid: str
    text: str
    target: str
    # Graded judgments: 2 for the target, 1 for its source siblings in the corpus.
    relevant: dict[str, int] = field(default_factory=dict)


class CorpusError(RuntimeError):
    """The apt lists needed to build the corpus are missing."""


def _read_list(path: str) -> str:
    """Returns a (possibly lz4/gz/xz-compressed) apt list file as text.

    apt-helper's cat-file decompresses with apt's own code, so no Python
    lz4 binding is needed.
    """
    if path.endswith((".lz4", ".gz", ".xz", ".zst", ".bz2")):
        out = subprocess.run([APT_HELPER, "cat-file", path], check=True, capture_output=True)
        return out.stdout.decode("utf-8", errors="replace")
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _records(text: str):
    """Yields deb822 records as dicts; continuation lines keep their leading space."""
    rec: dict[str, str] = {}
    key = None
    for line in text.split("\n"):
        if not line.strip():
            if rec:
                yield rec
            rec, key = {}, None
        elif line[0] in " \t" and key is not None:
            rec[key] += "\n" + line
        else:
            key, _, value = line.partition(":")
            rec[key] = value.strip()
    if rec:
        yield rec


def _long_description(raw: str) -> tuple[str, str]:
    """Splits a deb822 Description value into (synopsis, long description).

    Continuation lines lose their one leading space; a line " ." is an empty
    line (paragraph break) in Debian policy (5.6.13).
    """
    first, *rest = raw.split("\n")
    lines = []
    for line in rest:
        line = line[1:] if line.startswith(" ") else line
        lines.append("" if line.strip() == "." else line.rstrip())
    return first.strip(), "\n".join(lines).strip()


def list_files() -> tuple[list[str], list[str]]:
    """The Packages and Translation-en files, sorted by name (deterministic order)."""
    pkgs = sorted(glob.glob(os.path.join(LISTS_DIR, "*_Packages*")))
    trans = sorted(glob.glob(os.path.join(LISTS_DIR, "*_i18n_Translation-en*")))
    pkgs = [p for p in pkgs if not p.endswith((".diff_Index", ".IndexDiff"))]
    if not pkgs:
        raise CorpusError(f"no Packages lists under {LISTS_DIR}: run `apt-get update` first")
    if not trans:
        raise CorpusError(
            f"no Translation-en lists under {LISTS_DIR} (long descriptions live there): "
            "run `apt-get update -o Acquire::Languages=en` first"
        )
    return pkgs, trans


def load_packages() -> tuple[list[Doc], str]:
    """All binary packages that have a long description, sorted by name.

    Returns the docs and a digest of the list files' contents.
    """
    pkgs, trans = list_files()
    digest = hashlib.sha256()
    by_md5: dict[str, str] = {}
    for path in trans:
        text = _read_list(path)
        digest.update(text.encode())
        for rec in _records(text):
            md5, desc = rec.get("Description-md5"), rec.get("Description-en")
            if md5 and desc and md5 not in by_md5:
                by_md5[md5] = desc
    docs: dict[str, Doc] = {}
    for path in pkgs:
        text = _read_list(path)
        digest.update(text.encode())
        for rec in _records(text):
            name, md5 = rec.get("Package"), rec.get("Description-md5")
            if not name or name in docs or md5 not in by_md5:
                continue
            synopsis, body = _long_description(by_md5[md5])
            if not body or not synopsis:
                continue
            # "Source: foo (1.2-3)" names a source whose version differs; no
            # Source field means the source package has the binary's name.
            source = rec.get("Source", name).split(" ")[0]
            docs[name] = Doc(id=name, source=source, synopsis=synopsis, body=body)
    return [docs[k] for k in sorted(docs)], digest.hexdigest()


def sample_corpus(all_docs: list[Doc], n_docs: int, seed: int) -> list[Doc]:
    """A fixed-seed sample of `n_docs` packages, sorted by name."""
    if n_docs >= len(all_docs):
        return list(all_docs)
    picked = random.Random(seed).sample(range(len(all_docs)), n_docs)
    return [all_docs[i] for i in sorted(picked)]


def make_queries(docs: list[Doc], n_queries: int, seed: int, has_terms) -> list[Query]:
    """Known-item queries from the synopses of a fixed-seed sample of corpus docs.

    `has_terms(texts) -> list[bool]` says whether PostgreSQL finds at least one
    lexeme in a text (a synopsis of stop words only cannot be ranked by any
    keyword method). Candidates are drawn in a fixed shuffled order until
    `n_queries` are kept. Judgments: the package itself (grade 2) and the
    corpus packages with the same source (grade 1).
    """
    by_source: dict[str, list[str]] = {}
    for d in docs:
        by_source.setdefault(d.source, []).append(d.id)
    order = list(range(len(docs)))
    random.Random(seed + 1).shuffle(order)
    ok = has_terms([docs[i].synopsis for i in order])
    queries = []
    for i, keep in zip(order, ok):
        if not keep:
            continue
        d = docs[i]
        rel = {sib: 1 for sib in by_source[d.source]}
        rel[d.id] = 2
        queries.append(Query(qid=f"q{len(queries):04d}", text=d.synopsis, target=d.id, relevant=rel))
        if len(queries) == n_queries:
            break
    return queries


def corpus_hash(docs: list[Doc]) -> str:
    """A digest of the sampled corpus (ids and texts): keys caches and DB tables."""
    h = hashlib.sha256()
    for d in docs:
        h.update(json.dumps(asdict(d), sort_keys=True).encode())
        h.update(b"\n")
    return h.hexdigest()
