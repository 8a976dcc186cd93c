"""Connection options shared by :class:`fathom.Client` and
:class:`fathom.AsyncClient`: the server address, TLS, the API key, gRPC
and gRPC channel options (the retry policy is :mod:`fathom._retry`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import grpc

__all__ = [
    "DEFAULT_TARGET",
    "TLS",
    "Connection",
    "PemSource",
    "api_key_metadata",
    "channel_options",
    "connection",
    "parse_target",
]

DEFAULT_TARGET = "127.0.0.1:50051"
"""Where ``make run`` serves Fathom."""

_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

PemSource = Union[bytes, str, "os.PathLike[str]"]
"""PEM as ``bytes`` (the content), or a path (``str`` or ``os.PathLike``) of
a PEM file; a ``str`` that starts with ``-----BEGIN`` is taken as content."""

API_KEY_ENV = "FATHOM_API_KEY"
"""Where the API key comes from when none is given."""


@dataclass(frozen=True)
class TLS:
    """TLS settings. ``TLS()`` means TLS verified against the system's root
    certificates (as an ``https://`` target does).

    Attributes:
        root_certificates: CA certificate(s) to trust for the server's
            certificate instead of the system's roots (a private CA).
        certificate_chain: The client's certificate, for servers that
            require one (mutual TLS); needs ``private_key``.
        private_key: The private key of ``certificate_chain``.

    Each is a :data:`PemSource`: PEM bytes, or the path of a PEM file.
    """

    root_certificates: PemSource | None = None
    certificate_chain: PemSource | None = None
    private_key: PemSource | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """The gRPC channel credentials these settings stand for.

        Raises:
            ValueError: only one of ``certificate_chain`` and ``private_key``.
            OSError: a PEM file cannot be read.
        """
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("TLS: certificate_chain and private_key go together (mutual TLS)")
        return grpc.ssl_channel_credentials(
            root_certificates=_pem("root_certificates", self.root_certificates),
            private_key=_pem("private_key", self.private_key),
            certificate_chain=_pem("certificate_chain", self.certificate_chain),
        )


@dataclass(frozen=True)
class Connection:
    """What a client opens its channel with."""

    address: str
    """gRPC's ``host:port`` (or another gRPC target)."""
    credentials: grpc.ChannelCredentials | None
    """TLS credentials; ``None`` for plain text."""
    metadata: tuple[tuple[str, str], ...]
    """Metadata every call carries (the API key's ``authorization`` first)."""


def parse_target(target: str) -> tuple[str, bool]:
    """Splits a server address into gRPC's ``host:port`` and whether to use TLS.

    Accepts what the CLI and the TypeScript client accept: ``host:port``
    (plain text), ``http://host:port`` (plain text) and ``https://host:port``
    (TLS); a trailing ``/`` is ignored. Other targets (gRPC's own, such as
    ``dns:///host:port`` or ``unix:///path``) are passed on unchanged.

    Raises:
        ValueError: an ``http(s)://`` URL with a path after the address.
    """
    scheme, separator, rest = target.partition("://")
    if not separator or scheme.lower() not in ("http", "https"):
        return target, False
    address = rest.rstrip("/")
    if not address or "/" in address:
        raise ValueError(f"{target!r} is not a server address such as http://127.0.0.1:50051")
    return address, scheme.lower() == "https"


def api_key_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    """``authorization: Bearer <key>`` for ``api_key``; ``None`` reads
    ``$FATHOM_API_KEY``, and an empty key (or variable) sends nothing.

    Raises:
        ValueError: the key has characters a gRPC header cannot carry (the
            message does not repeat the key).
    """
    key = os.environ.get(API_KEY_ENV, "") if api_key is None else api_key
    if not key:
        return ()
    if not all(" " <= c <= "~" for c in key):
        raise ValueError("api_key holds characters a gRPC header cannot carry (printable ASCII only)")
    return (("authorization", f"Bearer {key}"),)


def connection(
    target: str,
    *,
    api_key: str | None,
    tls: TLS | bool | None,
    credentials: grpc.ChannelCredentials | None,
    metadata: Sequence[tuple[str, str]],
) -> Connection:
    """Resolves a client's connection arguments (see :class:`fathom.Client`).

    TLS is used with an ``https://`` target, with ``tls`` (``True`` or a
    :class:`TLS`), or with explicit ``credentials``; TLS options with an
    ``http://`` target are an error rather than being ignored.
    """
    address, https = parse_target(target)
    wants_tls = bool(tls) or credentials is not None
    if wants_tls and target.lower().startswith("http://"):
        raise ValueError(f"TLS options were given but the target {target!r} is http://; use https://")
    if credentials is not None and isinstance(tls, TLS):
        raise ValueError("give either tls or credentials, not both")
    if credentials is None and (https or wants_tls):
        credentials = (tls if isinstance(tls, TLS) else TLS()).credentials()
    return Connection(address, credentials, (*api_key_metadata(api_key), *metadata))


def channel_options(extra: Sequence[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
    """gRPC channel options: 64 MiB messages (the server's limit), server
    streams (a search's hits, a scroll's pages) read on the calling thread,
    plus ``extra``.

    grpcio's sync channels otherwise start a thread for each server-streaming
    call made while no other call is open: a search through the sync client
    then took 5.4–6.3 ms at the median against 4.4–4.7 ms with the option
    (400 searches of 10 hits on one machine). grpc.aio channels ignore it.
    """
    return [
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1),
        *extra,
    ]


def _pem(option: str, source: PemSource | None) -> bytes | None:
    if source is None or isinstance(source, bytes):
        return source
    if isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        return source.encode()
    try:
        with open(source, "rb") as file:
            return file.read()
    except OSError as error:
        raise OSError(f"TLS {option}: cannot read {os.fspath(source)!r}: {error.strerror}") from error
