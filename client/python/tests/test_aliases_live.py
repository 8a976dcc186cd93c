"""Aliases against a running Fathom server at $FATHOM_SERVER, with both
faces of the client: created, resolved by every call that names a
collection, switched at once, all or nothing."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from fathom import Alias, CreateAlias, DeleteAlias, FathomError, SwitchAlias

from .conftest import unique_name
from .test_live import collections_of

pytestmark = pytest.mark.live

DIM = 4


def test_an_alias_names_its_collection_and_switches_at_once(client: Any) -> None:
    with collections_of(client) as create:
        blue, green = create("pytest_blue", dimension=DIM), create("pytest_green", dimension=DIM)
        blue.upsert(["b"], [[1, 0, 0, 0]])
        green.upsert(["g1", "g2"], [[1, 0, 0, 0], [0, 1, 0, 0]])
        name = unique_name("pytest_live")
        try:
            created = client.update_aliases([CreateAlias(name, blue.name)])
            assert [(a.alias, a.collection) for a in created] == [(name, blue.name)]
            assert isinstance(created[0], Alias) and created[0].update_time is not None
            live = client.collection(name)
            assert [h.id for h in live.search(vector=[1, 0, 0, 0], limit=5)] == ["b"]
            assert client.get_collection(name).name == blue.name

            client.update_aliases([SwitchAlias(name, green.name)])
            assert sorted(h.id for h in live.search(vector=[1, 0, 0, 0], limit=5)) == ["g1", "g2"]
            live.upsert(["through_alias"], [[0, 0, 1, 0]])
            assert green.count() == 3 and blue.count() == 1
            assert [a.alias for a in client.list_aliases(green.name)] == [name]
            assert name in [a.alias for a in client.list_aliases()]
        finally:
            try:
                client.update_aliases([DeleteAlias(name)])
            except FathomError:
                pass
        assert name not in [a.alias for a in client.list_aliases()]


def test_a_refused_action_leaves_every_alias_as_it_was(client: Any) -> None:
    with collections_of(client) as create:
        docs = create("pytest_aliased", dimension=DIM)
        name = unique_name("pytest_alias")
        client.update_aliases([CreateAlias(name, docs.name)])
        with pytest.raises(FathomError) as caught:
            client.update_aliases([DeleteAlias(name), CreateAlias(unique_name("pytest_x"), "pytest_nowhere")])
        assert caught.value.code == grpc.StatusCode.NOT_FOUND
        assert [v.field for v in caught.value.violations] == ["actions[1].create_alias.collection"]
        assert [a.alias for a in client.list_aliases(docs.name)] == [name]

        with pytest.raises(FathomError) as clash:
            client.update_aliases([CreateAlias(docs.name, docs.name)])
        assert clash.value.code == grpc.StatusCode.ALREADY_EXISTS
        with pytest.raises(FathomError) as bad:
            client.update_aliases([])
        assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in bad.value.violations] == ["actions"]
        with pytest.raises(TypeError, match="actions\\[0\\]"):
            client.update_aliases(["not an action"])
        # Dropping the collection deletes its aliases.
        client.delete_collection(docs.name)
        assert name not in [a.alias for a in client.list_aliases()]
