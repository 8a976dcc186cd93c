"""A TCP forwarder to the live server whose connections can be cut, to break
a stream for real (the server is the real one; only the wire is cut)."""

from __future__ import annotations

import socket
import threading


class CuttableLink:
    """Listens on 127.0.0.1 (``target``) and forwards every connection to
    ``upstream``; :meth:`cut` drops the open connections (both peers see
    them end), while new connections are still forwarded."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.target = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.cuts = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._all: list[socket.socket] = []
        self._closed = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        """Drops every open connection."""
        self.cuts += 1
        self._drop()

    def _drop(self) -> None:
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            _shutdown(sock)

    def close(self) -> None:
        """Stops listening and drops every connection."""
        self._closed.set()
        self._acceptor.join()
        self._listener.close()
        self._drop()
        for sock in self._all:
            sock.close()

    def __enter__(self) -> CuttableLink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            downstream.settimeout(None)
            try:
                upstream = socket.create_connection(self._upstream)
            except OSError:
                downstream.close()
                continue
            with self._lock:
                self._open += [downstream, upstream]
                self._all += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(1 << 16):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _shutdown(source)
        _shutdown(sink)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
