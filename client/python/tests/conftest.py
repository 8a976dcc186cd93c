"""Shared fixtures: the live server at $FATHOM_SERVER (tests talk to a real
server; there are no fake servers or mocks)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import grpc
import pytest

from fathom import Client


@pytest.fixture(scope="session")
def server_target() -> str:
    """host:port of the live server; skips the test when $FATHOM_SERVER is unset."""
    target = os.environ.get("FATHOM_SERVER")
    if not target:
        pytest.skip("FATHOM_SERVER is not set (live tests need a running server)")
    return target


@pytest.fixture(scope="session")
def live(server_target: str) -> Iterator[Client]:
    """A client connected to the live server (waits up to 30 s for it)."""
    with Client(server_target, timeout=60) as client:
        try:
            grpc.channel_ready_future(client._channel).result(timeout=30)
        except grpc.FutureTimeoutError:
            pytest.fail(f"no Fathom server answers at FATHOM_SERVER={server_target}")
        yield client


def unique_name(prefix: str) -> str:
    """A collection name unlikely to collide on a shared server."""
    return f"{prefix}_{secrets.token_hex(6)}"


def env_or_skip(*names: str) -> list[str]:
    """The values of the environment variables ``names``; skips the test if
    any is unset or empty (``scripts/test.sh`` sets them when it starts the
    servers they name)."""
    values = [os.environ.get(name, "") for name in names]
    if not all(values):
        pytest.skip(f"{', '.join(names)} not set (scripts/test.sh starts the servers they name)")
    return values
