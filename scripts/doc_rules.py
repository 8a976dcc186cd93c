"""The reviewed list of what scripts/check-docs.py does with each code block of
the docs that is not a plain ``sh`` block run as printed: commands not run
(with the reason), text replaced before running (with the reason), blocks
that are files to write and run, blocks that are copies of a file, and
commands printed outside code blocks that are run too.

Every entry must match something (a stale entry fails the check), and every
block that is not ``sh`` must be matched by exactly one entry, so that a new
block is either run or listed here. Keep this list short: a block that can
run here should run.

Placeholders in replacement text and preludes: {address} (host:port of the
server under test), {port}, {postgres_port}, {clone} (the fresh clone),
{scratch} (a directory outside the clone).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Skip:
    """A command (a logical line of an ``sh`` block starting with ``match``)
    or, with ``block=True``, the whole block containing ``match``, not run."""

    doc: str
    match: str
    reason: str
    block: bool = False


@dataclass(frozen=True)
class Rewrite:
    """Text replaced in the commands and snippets of ``doc`` (every doc if
    None) before they run."""

    doc: str | None
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class Snippet:
    """The block containing ``match`` is a file: ``prelude`` + the block is
    written to ``path`` (relative to the working directory of the doc's shell; ``merge_into_section``
    appends the block to a file that ends with that section header instead,
    as one adds lines under Cargo.toml's ``[dependencies]``), then ``run``
    (if any) runs in the file's directory in the doc's shell."""

    doc: str
    match: str
    path: str
    run: str | None = None
    prelude: str = ""
    merge_into_section: str | None = None


@dataclass(frozen=True)
class SameAsFile:
    """The block containing ``match`` is a copy of ``path`` in the clone:
    checked identical."""

    doc: str
    match: str
    path: str


@dataclass(frozen=True)
class InlineCommand:
    """A command printed in running text or a table (as `command`), run at
    its place in the doc, in the doc's shell."""

    doc: str
    command: str


# The directory each doc's shell starts in, other than the clone's root.
DOC_DIRECTORIES = {
    # "Depend on it by the path of your clone": a project of your own, elsewhere.
    "client/rust/README.md": "{scratch}/rust-project",
}

# Environment of one doc's shell, beside the check's own.
DOC_ENVIRONMENT = {
    # A build cache that outlives the clone, for the Cargo project of a user.
    "client/rust/README.md": {"CARGO_TARGET_DIR": "{rust_project_target}"},
}

SKIPS = [
    Skip("README.md", "make test", "the test suite, which runs this check"),
    Skip("README.md", "DATABASE_URL=postgres://user:pass@", "placeholder credentials of your own PostgreSQL"),
    Skip("README.md", "export DATABASE_URL=postgres://fathom:secret@db.internal", block=True,
         reason="a deployment: placeholder database host and credentials, TLS on a host name of yours"),
    Skip("README.md", "--tls-client-cert client.pem", block=True,
         reason="placeholder host name and certificates"),
    Skip("README.md", "scrape_configs:", block=True, reason="Prometheus configuration, not a command"),
    Skip("README.md", "let client = fathom_client::Client::connect", block=True,
         reason="a fragment (`documents`, `v` undefined); client/rust/README.md's whole program runs"),
    Skip("client/rust/README.md", "client.update_aliases().create", block=True,
         reason="a fragment (`rust,ignore`); the aliases API is run by the Rust client's tests"),
    Skip("client/python/README.md", "FATHOM_SERVER=127.0.0.1:50051 client/python/test.sh",
         "the SDK's test suite, which make test runs"),
    Skip("client/python/README.md", "client/python/test.sh --unit", "the SDK's test suite, which make test runs"),
    Skip("client/typescript/README.md", "FATHOM_SERVER=127.0.0.1:50051 client/typescript/test.sh",
         "the SDK's test suite, which make test runs"),
    Skip("client/typescript/README.md", "client/typescript/test.sh --unit",
         "the SDK's test suite, which make test runs"),
    Skip("docs/benchmarks.md", "make bench ", block=True, reason="benchmarks: ~35 min of their own, not a test"),
    Skip("docs/deploy.md", "docker build -t fathom", block=True, reason="no Docker engine here"),
    Skip("docs/deploy.md", "fathom:0.1.0 keys create", block=True, reason="no Docker engine here"),
    Skip("docs/deploy.md", "kubectl apply", block=True, reason="needs a Kubernetes cluster"),
    Skip("docs/operations.md", "--tenant acme --tenant globex", block=True,
         reason="needs a multi-tenant collection `docs` (the README's has no tenants)"),
    Skip("docs/operations.md", "wal_level = replica", block=True,
         reason="postgresql.conf settings that need a restart of the cluster, not a command"),
    Skip("docs/operations.md", "mkdir -m 700 .fathom/cluster/pgdata", block=True,
         reason="destructive: replaces the cluster's data directory with a backup's"),
    Skip("docs/operations.md", "restore_command = ", block=True,
         reason="recovery settings, part of the destructive restore"),
    Skip("docs/operations.md", "touch .fathom/cluster/pgdata/recovery.signal", block=True,
         reason="destructive: part of the restore"),
    Skip("docs/operations.md", "$PGBIN/pg_ctl -D .fathom/cluster/pgdata -l recovery.log", block=True,
         reason="destructive: part of the restore (stops the running cluster)"),
    Skip("docs/scale.md", "fathom postgres start --replica-of", block=True,
         reason="a second cluster and a second server that runs in the foreground; the same commands run "
                "on loopback in tests/integration/replicas.rs (a standby by --replica-of, fathom with --replica-url)"),
]

REWRITES = [
    Rewrite(None, "127.0.0.1:50051", "{address}",
            "the server under test listens on its own port, never on another server of this machine"),
    Rewrite("docs/operations.md", "-p 54329", "-p {postgres_port}", "the embedded PostgreSQL's port, likewise"),
    Rewrite("docs/operations.md", "/backup/", "{scratch}/backup/", "a backup directory of the check's own"),
    Rewrite("client/typescript/README.md", "npm install /path/to/fathom/client/typescript",
            "(mkdir -p {scratch}/ts-project && cd {scratch}/ts-project && npm install {clone}/client/typescript)",
            "your project (a scratch directory) and the path of your clone"),
    Rewrite("client/rust/README.md", "../fathom/client/rust", "{clone}/client/rust", "the path of your clone"),
]

_PYTHON_DATA = '''\
import random
from types import SimpleNamespace

from fathom import Client

random.seed(7)


def _vector(dimension):
    return [random.uniform(-1, 1) for _ in range(dimension)]


client = Client("{address}")
'''

_TS_DATA = '''\
import {{ FathomClient }} from "@fathom/client";

const vector = (dimension) => Array.from({{ length: dimension }}, () => Math.random() * 2 - 1);
const client = new FathomClient("{address}");
'''

# Runs a Python file whose top level awaits (as the LangChain block does, in a notebook's manner).
_TOP_LEVEL_AWAIT = (
    "python -c 'import ast, asyncio; code = compile(open(\"FILE\").read(), \"FILE\", \"exec\", "
    "flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT); result = eval(code, dict(__name__=\"__main__\")); "
    "result is None or asyncio.run(result)'"
)

SNIPPETS = [
    # Rust: a project of your own (cargo new, as the README says) against the live server.
    # The clone's Cargo.lock: the versions the clone was tested with, which the cache holds.
    Snippet("client/rust/README.md", "fathom-client = { path =", "Cargo.toml",
            merge_into_section="[dependencies]", run="cp {clone}/Cargo.lock ."),
    Snippet("client/rust/README.md", "async fn quickstart()", "src/main.rs"),
    # Python: in the virtualenv the README's pip install went into.
    Snippet("client/python/README.md", 'docs = client.get_or_create_collection("quickstart"', "{scratch}/python/example.py",
            run="python example.py"),
    Snippet("client/python/README.md", 'corpus = client.create_collection("corpus"', "{scratch}/python/bulk_load.py",
            run="python bulk_load.py",
            prelude=_PYTHON_DATA + '''\
records = ({{"id": f"r{{i}}", "vector": _vector(768)}} for i in range(300))
q = _vector(768)
'''),
    Snippet("client/python/README.md", 'archive = client.create_collection("archive"', "{scratch}/python/bulk_load_parts.py",
            run="python bulk_load_parts.py",
            prelude=_PYTHON_DATA + '''\
part_one = [{{"id": f"a{{i}}", "vector": _vector(768)}} for i in range(200)]
part_two = [{{"id": f"b{{i}}", "vector": _vector(768)}} for i in range(200)]
q = _vector(768)
'''),
    Snippet("client/python/README.md", "from fathom import AsyncClient, Client, FathomError", "{scratch}/python/usage.py",
            run="python usage.py",
            prelude=_PYTHON_DATA + '''\
ids = [f"d{{i}}" for i in range(50)]
vectors = [_vector(384) for _ in ids]
texts = [f"red fox number {{i}}" for i in ids]
metas = [{{"lang": ["en", "de"][i % 2], "year": 2000 + i, "tags": ["news"]}} for i in range(50)]
rows = [SimpleNamespace(id=f"row{{i}}", emb=_vector(384), body="row", meta={{}}) for i in range(5)]
q = _vector(384)
client.create_collection("old", 3)  # which the block deletes
'''),
    Snippet("client/python/README.md", "from fathom import CreateAlias, DeleteAlias, SwitchAlias", "{scratch}/python/aliases.py",
            run="python aliases.py",
            prelude=_PYTHON_DATA + '''\
ids = [f"d{{i}}" for i in range(50)]
new_vectors = [_vector(384) for _ in ids]
texts = [f"red fox number {{i}}" for i in ids]
'''),
    # The stores with the extras the README installs, stand-in models (no model service here).
    Snippet("client/python/README.md", "from fathom.langchain import FathomVectorStore",
            "{scratch}/python/langchain_store.py", run=_TOP_LEVEL_AWAIT.replace("FILE", "langchain_store.py"),
            prelude='''\
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

embeddings = DeterministicFakeEmbedding(size=384)  # the dimension of "articles", made by Usage
docs = [Document(id="a", page_content="the red fox", metadata={{"year": 2024, "lang": "en"}}),
        Document(id="b", page_content="a blue sky", metadata={{"year": 2021, "lang": "de"}})]
'''),
    Snippet("client/python/README.md", "from fathom.llama_index import FathomVectorStore",
            "{scratch}/python/llama_index_store.py", run="python llama_index_store.py",
            prelude='''\
from llama_index.core import Document, Settings
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM

Settings.embed_model = MockEmbedding(embed_dim=384)  # the dimension of "articles", made by Usage
Settings.llm = MockLLM()
documents = [Document(text="the red fox"), Document(text="a blue sky")]
'''),
    # TypeScript: ES modules in a project of your own, after the README's npm install.
    Snippet("client/typescript/README.md", 'const docs = await client.getOrCreateCollection("quickstart_ts"',
            "{scratch}/ts-project/example.mjs", run="node example.mjs"),
    Snippet("client/typescript/README.md", 'const corpus = await client.createCollection("corpus"',
            "{scratch}/ts-project/bulk_load.mjs", run="node bulk_load.mjs",
            prelude=_TS_DATA + '''\
await client.deleteCollection("corpus").catch(() => {{}});  // the Python README's
const records = Array.from({{ length: 300 }}, (_, i) => ({{ id: `r${{i}}`, vector: vector(768) }}));
const q = vector(768);
'''),
    Snippet("client/typescript/README.md", 'const archive = await client.createCollection("archive"',
            "{scratch}/ts-project/bulk_load_parts.mjs", run="node bulk_load_parts.mjs",
            prelude=_TS_DATA + '''\
await client.deleteCollection("archive").catch(() => {{}});  // the Python README's
const partOne = Array.from({{ length: 200 }}, (_, i) => ({{ id: `a${{i}}`, vector: vector(768) }}));
const partTwo = Array.from({{ length: 200 }}, (_, i) => ({{ id: `b${{i}}`, vector: vector(768) }}));
const q = vector(768);
'''),
    Snippet("client/typescript/README.md", "import { Code, FathomClient, FathomError", "{scratch}/ts-project/usage.mjs",
            run="node usage.mjs",
            prelude='''\
const vector = (dimension) => Array.from({{ length: dimension }}, () => Math.random() * 2 - 1);
const rows = Array.from({{ length: 50 }}, (_, i) => ({{ id: `d${{i}}`, vector: vector(384), text: "red fox",
  metadata: {{ lang: ["en", "de"][i % 2], year: 2000 + i }} }}));
const q = vector(384);
const bar = {{ tick() {{}} }};
{{
  const {{ FathomClient }} = await import("@fathom/client");
  const client = new FathomClient("{address}");
  for (const name of ["articles", "articles_v2"]) await client.deleteCollection(name).catch(() => {{}});  // the Python README's
  client.close();
}}
'''),
    Snippet("client/typescript/README.md", 'await client.updateAliases([{ kind: "create"', "{scratch}/ts-project/aliases.mjs",
            run="node aliases.mjs",
            prelude=_TS_DATA + '''\
const reembedded = Array.from({{ length: 50 }}, (_, i) => ({{ id: `d${{i}}`, vector: vector(384) }}));
'''),
]

SAME_AS_FILE = [
    SameAsFile("docs/deploy.md", "# Fathom on Kubernetes", "deploy/kubernetes/fathom.yaml"),
]

INLINE_COMMANDS = [
    # The install column of the README's table of client libraries (the Rust
    # one is a Cargo.toml line: client/rust/README.md's project runs it).
    InlineCommand("README.md", "pip install ./client/python"),
    InlineCommand("README.md", "npm install ./client/typescript"),
]
