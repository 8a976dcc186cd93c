"""API keys managed over gRPC (the Keys service), against the fathom that
``scripts/test.sh`` starts with ``--auth`` (``$FATHOM_TEST_AUTH_SERVER``,
admin key ``$FATHOM_TEST_ADMIN_KEY``, read key bound to tenant ``sdk-a`` in
``$FATHOM_TEST_TENANT_KEY``). Skipped when those are unset."""

from __future__ import annotations

import asyncio
import datetime as _dt

import grpc
import pytest

from fathom import AsyncClient, Client, FathomError

from .conftest import env_or_skip, unique_name

pytestmark = pytest.mark.live


def test_a_created_key_works_is_listed_without_its_secret_and_is_refused_once_revoked() -> None:
    server, admin_key = env_or_skip("FATHOM_TEST_AUTH_SERVER", "FATHOM_TEST_ADMIN_KEY")
    description = unique_name("pytest key")
    with Client(server, api_key=admin_key) as admin:
        created = admin.create_key(
            "read", description, tenant="sdk-a", collections=["docs"], expires_in=3600
        )
        assert created.key.startswith(f"fathom_{created.info.id}_")
        assert created.key not in repr(created)
        info = created.info
        assert (info.role, info.tenant, info.collections, info.state) == (
            "read",
            "sdk-a",
            ("docs",),
            "active",
        )
        assert info.expire_time is not None
        remaining = info.expire_time - _dt.datetime.now(_dt.timezone.utc)
        assert _dt.timedelta(minutes=50) < remaining <= _dt.timedelta(hours=1)

        with Client(server, api_key=created.key) as reader:
            reader.list_collections()  # the key works at once

        listed = {key.id: key for key in admin.list_keys()}
        assert listed[info.id] == info
        assert created.key[-64:] not in repr(listed)

        revoked = admin.revoke_key(info.id)
        assert revoked.state == "revoked" and revoked.revoke_time is not None
        again = admin.revoke_key(info.id)
        assert again.revoke_time == revoked.revoke_time, "revoking twice changes nothing"
        with Client(server, api_key=created.key) as reader, pytest.raises(FathomError) as refused:
            reader.list_collections()
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED

        with pytest.raises(FathomError) as unknown:
            admin.revoke_key("0123456789ab")
        assert unknown.value.code == grpc.StatusCode.NOT_FOUND


def test_bad_key_requests_name_their_field_and_a_read_key_may_not_manage_keys() -> None:
    server, admin_key, tenant_key = env_or_skip(
        "FATHOM_TEST_AUTH_SERVER", "FATHOM_TEST_ADMIN_KEY", "FATHOM_TEST_TENANT_KEY"
    )
    with Client(server, api_key=admin_key) as admin:
        before = len(admin.list_keys())
        past = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(minutes=1)
        for field, call in (
            ("description", lambda: admin.create_key("read", "")),
            ("tenant", lambda: admin.create_key("read", "bad tenant", tenant="")),
            ("collections[0]", lambda: admin.create_key("read", "bad", collections=["Not A Name"])),
            ("expire_time", lambda: admin.create_key("read", "expired", expires_at=past)),
        ):
            with pytest.raises(FathomError) as refused:
                call()
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert [v.field for v in refused.value.violations] == [field]
        with pytest.raises(ValueError, match="unknown role"):
            admin.create_key("owner", "no such role")  # type: ignore[arg-type]
        assert len(admin.list_keys()) == before, "nothing was written"
    with Client(server, api_key=tenant_key) as reader:
        for call in (lambda: reader.create_key("read", "escalation"), reader.list_keys):
            with pytest.raises(FathomError) as denied:
                call()
            assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_the_async_client_creates_lists_and_revokes_keys() -> None:
    server, admin_key = env_or_skip("FATHOM_TEST_AUTH_SERVER", "FATHOM_TEST_ADMIN_KEY")

    async def scenario() -> None:
        async with AsyncClient(server, api_key=admin_key) as admin:
            created = await admin.create_key("write", unique_name("pytest async key"))
            assert created.info.expire_time is None
            assert created.info.id in [key.id for key in await admin.list_keys()]
            assert (await admin.revoke_key(created.info.id)).state == "revoked"

    asyncio.run(scenario())
