"""Migration from Chroma against the live server at $FATHOM_SERVER: a real
``chromadb.PersistentClient`` store, made by the test, copied with
``fathom.migrate.from_chroma``, ``python -m fathom.migrate chroma`` and
``fathom import --from-chroma``."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb", reason="needs the [chroma] extra")

from fathom import Client, FathomError, migrate  # noqa: E402

from .conftest import unique_name  # noqa: E402

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[3]
FATHOM_BIN = Path(os.environ.get("FATHOM_BIN", ROOT / "target/debug/fathom"))
DIM = 16
SIZES = {"Articles-2024.en": 3000, "notes": 2000}  # 5,000 documents in 2 collections


def build_store(path: Path, prefix: str, sizes: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Creates a Chroma store; returns what each collection holds, by Chroma name."""
    rng = random.Random(11)
    client = chromadb.PersistentClient(path=str(path))
    contents: dict[str, dict[str, Any]] = {}
    for offset, (name, size) in enumerate(sizes.items()):
        space = ("cosine", "l2")[offset % 2]
        collection = client.create_collection(
            f"{prefix}{name}", metadata={"hnsw:space": space}, embedding_function=None
        )
        ids = [f"{name}-{i:05d}" for i in range(size)]
        vectors = np.array(
            [[rng.gauss(0, 1) for _ in range(DIM)] for _ in range(size)], dtype=np.float32
        )
        texts = [None if i % 10 == 0 else f"note {i} about {rng.choice(['fox', 'sky'])}" for i in range(size)]
        metadatas = [
            None if i % 7 == 0 else {"i": i, "even": i % 2 == 0, "w": i / 4, "tag": f"t{i % 3}"}
            for i in range(size)
        ]
        for start in range(0, size, 1000):
            end = start + 1000
            collection.add(
                ids=ids[start:end],
                embeddings=vectors[start:end],
                documents=texts[start:end],
                metadatas=metadatas[start:end],  # type: ignore[arg-type]
            )
        # The vectors as Chroma holds them (a cosine collection gives back
        # slightly other float32 values than were added): what must arrive.
        stored = collection.get(ids=ids, include=["embeddings"])
        by_id = dict(zip(stored["ids"], stored["embeddings"]))
        held = np.array([by_id[i] for i in ids], dtype=np.float64)
        assert np.array_equal(held.astype(np.float32).astype(np.float64), held)  # float32 values
        contents[f"{prefix}{name}"] = {
            "ids": ids, "vectors": held.astype(np.float32), "texts": texts,
            "metadatas": metadatas, "space": space,
        }
    return contents


@pytest.fixture(scope="module")
def prefix() -> str:
    return unique_name("ch").replace("_", "")[:12] + "-"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, prefix: str) -> tuple[Path, dict[str, dict[str, Any]]]:
    path = tmp_path_factory.mktemp("chroma")
    return path, build_store(path, prefix, SIZES)


@pytest.fixture
def cleanup(live: Client) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        try:
            live.delete_collection(name)
        except FathomError:
            pass


def assert_copied(live: Client, target: str, expected: dict[str, Any]) -> None:
    """Same count, ids, texts, metadata, metric; vectors equal bit for bit."""
    collection = live.collection(target)
    assert collection.count() == len(expected["ids"])
    info = live.get_collection(target)
    assert info.dimension == DIM and info.metric == expected["space"]
    documents = {d.id: d for d in collection.scroll(include=["text", "metadata", "vector"])}
    assert sorted(documents) == sorted(expected["ids"])
    got = np.array([documents[i].vector for i in expected["ids"]], dtype=np.float32)
    assert got.tobytes() == expected["vectors"].tobytes()
    for i, doc_id in enumerate(expected["ids"]):
        assert (documents[doc_id].text or None) == expected["texts"][i]
        assert documents[doc_id].metadata == (expected["metadatas"][i] or {})


def test_from_chroma_copies_every_collection_exactly(
    live: Client, store: tuple[Path, dict[str, dict[str, Any]]], cleanup: list[str]
) -> None:
    path, contents = store
    targets = {name: migrate.chroma_collection_name(name) for name in contents}
    cleanup.extend(targets.values())
    reports = migrate.from_chroma(path, list(contents), client=live, progress=False)
    assert sum(r.source_count for r in reports.values()) == 5000
    for name, report in reports.items():
        assert report.matches and report.collection_count == len(contents[name]["ids"])
        assert_copied(live, targets[name], contents[name])


class FailingChroma:
    """A Chroma client whose collections fail once reading past `fail_at`
    (a migration interrupted half-way, deterministically)."""

    def __init__(self, client: Any, fail_at: int) -> None:
        self.client, self.fail_at = client, fail_at

    def list_collections(self) -> Any:
        return self.client.list_collections()

    def get_collection(self, name: str) -> Any:
        real, fail_at = self.client.get_collection(name), self.fail_at

        class Interrupted:
            def __getattr__(self, attribute: str) -> Any:
                return getattr(real, attribute)

            def get(self, **kwargs: Any) -> Any:
                if kwargs.get("offset", 0) >= fail_at:
                    raise ConnectionError("the source went away")
                return real.get(**kwargs)

        return Interrupted()


def test_from_chroma_resumes_with_a_stream_id(
    live: Client, store: tuple[Path, dict[str, dict[str, Any]]], cleanup: list[str], prefix: str
) -> None:
    path, contents = store
    name = f"{prefix}notes"
    target = unique_name("chroma_resume")
    cleanup.append(target)
    interrupted = FailingChroma(chromadb.PersistentClient(path=str(path)), fail_at=1000)
    with pytest.raises(Exception) as caught:
        migrate.from_chroma(interrupted, name, client=live, names={name: target},
                            stream_id="resume-test", batch_size=300, progress=False)
    assert "the source went away" in repr(caught.value) + repr(caught.value.__cause__)
    committed = live.collection(target).count()
    assert 0 < committed <= 1000

    reports = migrate.from_chroma(path, name, client=live, names={name: target},
                                  stream_id="resume-test", batch_size=300, progress=False)
    report = reports[name]
    assert report.matches and report.skipped_documents == committed
    assert report.documents_written == 2000 - committed
    assert_copied(live, target, contents[name])


def test_from_chroma_refuses_unknown_and_colliding_names(
    live: Client, store: tuple[Path, dict[str, dict[str, Any]]]
) -> None:
    path, contents = store
    with pytest.raises(ValueError, match="no Chroma collection 'missing'"):
        migrate.from_chroma(path, "missing", client=live, progress=False)
    first, second = list(contents)
    with pytest.raises(ValueError, match="would both go into"):
        migrate.from_chroma(path, [first, second], client=live,
                            names={first: "same", second: "same"}, progress=False)
    assert migrate.chroma_collection_name("My-Docs.v1") == "my_docs_v1"
    assert migrate.chroma_collection_name("2024.logs") == "c_2024_logs"


def test_command_lines_copy_a_chosen_collection(
    live: Client, server_target: str, tmp_path: Path, cleanup: list[str]
) -> None:
    prefix = unique_name("cli").replace("_", "")[:12] + "-"
    contents = build_store(tmp_path, prefix, {"small": 300, "other": 10})
    name = f"{prefix}small"
    cleanup.append(migrate.chroma_collection_name(name))
    env = {**os.environ, "FATHOM_SERVER": server_target}
    module = subprocess.run(
        [sys.executable, "-m", "fathom.migrate", "chroma", str(tmp_path), "--collection", name,
         "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert module.returncode == 0, module.stderr
    assert "source: 300 documents, collection: 300 documents (ok)" in module.stdout
    assert_copied(live, migrate.chroma_collection_name(name), contents[name])

    # `fathom import --from-chroma` runs the same module with $FATHOM_PYTHON.
    other = f"{prefix}other"
    cleanup.append(migrate.chroma_collection_name(other))
    cli = subprocess.run(
        [str(FATHOM_BIN), "import", "--from-chroma", str(tmp_path), "--collection", other,
         "--server", f"http://{server_target}"],
        env={**env, "FATHOM_PYTHON": sys.executable}, capture_output=True, text=True, timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    assert "source: 10 documents, collection: 10 documents (ok)" in cli.stdout
    assert_copied(live, migrate.chroma_collection_name(other), contents[other])
