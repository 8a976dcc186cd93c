"""Read your writes across read replicas: the newest consistency token of a
client's writes, sent with its reads. Free of I/O; both clients drive it.

A server with read replicas (``fathom serve --replica-url``) acknowledges
every write with a consistency token, and serves a read that carries one
from a replica that has replayed that write, or else from the primary. A
client keeps the newest token its writes were acknowledged with and puts it
in every read (Get, Count, Scroll, Search) that does not choose its
consistency itself, as a causally consistent session does.
"""

from __future__ import annotations

import threading
from typing import Any


def _position(token: str) -> int | None:
    """The WAL position of a token as fathom writes it (``16/B374D848``)."""
    high, sep, low = token.partition("/")
    if not sep:
        return None
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None


class ReadYourWrites:
    """The newest token seen, and the reads it goes into."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._token: str | None = None
        self._position = -1

    @property
    def token(self) -> str | None:
        """The newest token a write was acknowledged with; ``None`` before any."""
        return self._token

    def observe(self, token: str) -> None:
        """Keeps ``token`` if it is newer than the one held (acknowledgements
        of concurrent writes arrive in any order). A token this client cannot
        read replaces only an empty session."""
        if not token:
            return
        position = _position(token)
        with self._lock:
            if self._token is None or (position is not None and position > self._position):
                self._token = token
                self._position = -1 if position is None else position

    def observe_response(self, response: Any) -> None:
        """Keeps the token of a write's response, if it carries one."""
        token = getattr(response, "consistency_token", None)
        if isinstance(token, str):
            self.observe(token)

    def fill(self, request: Any) -> None:
        """Sends the newest token with ``request`` if it is a read that chose
        no consistency (and reading your writes is on)."""
        if not self.enabled or self._token is None:
            return
        if "consistency" not in request.DESCRIPTOR.fields_by_name or request.HasField("consistency"):
            return
        request.consistency.after_token = self._token
