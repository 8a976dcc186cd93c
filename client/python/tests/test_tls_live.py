"""TLS against real fathom servers that ``scripts/test.sh`` starts with
``--tls-cert/--tls-key`` (and one with ``--tls-client-ca``):
``$FATHOM_TEST_TLS_SERVER`` and ``$FATHOM_TEST_MTLS_SERVER``, with the CA and a
client certificate in ``$FATHOM_TEST_TLS_CA``, ``$FATHOM_TEST_TLS_CLIENT_CERT``
and ``$FATHOM_TEST_TLS_CLIENT_KEY``. Skipped when those are unset."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from fathom import TLS, AsyncClient, Client, FathomError

from .conftest import env_or_skip, unique_name

pytestmark = pytest.mark.live


def test_create_upsert_and_search_over_tls_with_the_ca_as_a_path() -> None:
    server, ca = env_or_skip("FATHOM_TEST_TLS_SERVER", "FATHOM_TEST_TLS_CA")
    with Client(server, tls=TLS(root_certificates=Path(ca))) as client:
        name = unique_name("pytest_tls")
        docs = client.create_collection(name, dimension=3)
        try:
            docs.upsert(["a", "b"], [[1, 0, 0], [0, 1, 0]], texts=["red fox", "blue sky"])
            assert [hit.id for hit in docs.search(vector=[1, 0, 0], limit=1)] == ["a"]
        finally:
            client.delete_collection(name)


def test_the_async_client_connects_over_https_with_the_ca_as_bytes() -> None:
    server, ca = env_or_skip("FATHOM_TEST_TLS_SERVER", "FATHOM_TEST_TLS_CA")

    async def scenario() -> None:
        tls = TLS(root_certificates=Path(ca).read_bytes())
        async with AsyncClient(f"https://{server}", tls=tls) as client:
            assert isinstance(await client.list_collections(), list)

    asyncio.run(scenario())


def test_plain_text_and_an_untrusted_server_certificate_are_refused() -> None:
    (server,) = env_or_skip("FATHOM_TEST_TLS_SERVER")
    for client in (Client(server, timeout=5), Client(server, tls=True, timeout=5)):
        with client, pytest.raises(FathomError) as refused:
            client.list_collections()
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_serves_a_signed_client_certificate_and_refuses_none() -> None:
    server, ca, cert, key = env_or_skip(
        "FATHOM_TEST_MTLS_SERVER",
        "FATHOM_TEST_TLS_CA",
        "FATHOM_TEST_TLS_CLIENT_CERT",
        "FATHOM_TEST_TLS_CLIENT_KEY",
    )
    with Client(server, tls=TLS(root_certificates=ca, certificate_chain=cert, private_key=key)) as client:
        assert isinstance(client.list_collections(), list)
    with Client(server, tls=TLS(root_certificates=ca), timeout=5) as client:
        with pytest.raises(FathomError) as refused:
            client.list_collections()
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
