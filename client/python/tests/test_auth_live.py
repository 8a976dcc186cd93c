"""API keys against a real fathom that ``scripts/test.sh`` starts with
``--auth``: ``$FATHOM_TEST_AUTH_SERVER``, with an admin key in
``$FATHOM_TEST_ADMIN_KEY`` and a read key bound to tenant ``sdk-a`` in
``$FATHOM_TEST_TENANT_KEY`` (both made by ``fathom keys create``). Skipped
when those are unset."""

from __future__ import annotations

import grpc
import pytest

from fathom import Client, FathomError

from .conftest import env_or_skip, unique_name

pytestmark = pytest.mark.live


def test_without_a_key_every_call_is_unauthenticated() -> None:
    (server,) = env_or_skip("FATHOM_TEST_AUTH_SERVER")
    with Client(server, api_key="") as client, pytest.raises(FathomError) as refused:
        client.list_collections()
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_a_tenant_bound_read_key_from_the_environment_reads_its_tenant_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, admin_key, tenant_key = env_or_skip(
        "FATHOM_TEST_AUTH_SERVER", "FATHOM_TEST_ADMIN_KEY", "FATHOM_TEST_TENANT_KEY"
    )
    name = unique_name("pytest_auth")
    with Client(server, api_key=admin_key) as admin:
        admin.create_collection(name, dimension=3, multi_tenant=True)
        try:
            docs = admin.collection(name)
            docs.upsert(["a1"], [[1, 0, 0]], tenant="sdk-a")
            docs.upsert(["b1", "b2"], [[0, 1, 0], [0, 0, 1]], tenant="sdk-b")
            monkeypatch.setenv("FATHOM_API_KEY", tenant_key)
            with Client(server) as reader:
                mine = reader.collection(name, tenant="sdk-a")
                assert mine.count() == 1
                assert [hit.id for hit in mine.search(vector=[0, 1, 0], limit=5)] == ["a1"]
                for call in (
                    lambda: reader.collection(name, tenant="sdk-b").count(),
                    lambda: mine.upsert(["x"], [[1, 1, 0]]),
                ):
                    with pytest.raises(FathomError) as refused:
                        call()
                    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
            assert docs.count(tenant="sdk-b") == 2
            assert docs.count(tenant="sdk-a") == 1
        finally:
            admin.delete_collection(name)
