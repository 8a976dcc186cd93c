"""The sync client is generated from the async one: the checked-in
fathom/client.py must be what scripts/async_to_sync.py makes of fathom/aio.py."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import fathom
from fathom import AsyncClient, AsyncCollection, Client, Collection

ROOT = Path(__file__).resolve().parent.parent


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("async_to_sync", ROOT / "scripts" / "async_to_sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sync_client_is_the_generation_of_the_async_one() -> None:
    generator = _generator()
    expected = generator.to_sync((ROOT / "fathom" / "aio.py").read_text())
    assert (ROOT / "fathom" / "client.py").read_text() == expected, (
        "fathom/client.py is stale: run client/python/scripts/async_to_sync.py"
    )


def test_both_faces_have_the_same_methods_and_parameters() -> None:
    for sync_class, async_class in ((Client, AsyncClient), (Collection, AsyncCollection)):
        public = {n for n in dir(async_class) if not n.startswith("_")}
        assert public == {n for n in dir(sync_class) if not n.startswith("_")}
        for name in public:
            sync_member, async_member = getattr(sync_class, name), getattr(async_class, name)
            if callable(async_member):
                assert list(inspect.signature(sync_member).parameters) == list(
                    inspect.signature(async_member).parameters
                ), name


def test_search_has_the_parameters_of_search_iter_and_returns_a_list() -> None:
    for handle in (Collection, AsyncCollection):
        search, search_iter = inspect.signature(handle.search), inspect.signature(handle.search_iter)
        assert search.parameters == search_iter.parameters
        assert search.return_annotation == "list[Hit]"
        assert handle.search.__name__ == "search"
        assert handle.search.__doc__ and "best first" in handle.search.__doc__
    assert inspect.iscoroutinefunction(AsyncCollection.search)
    assert not inspect.iscoroutinefunction(Collection.search)
    assert fathom.client.__doc__ and "Synchronous" in fathom.client.__doc__
