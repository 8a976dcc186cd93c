"""What the LangChain and LlamaIndex vector stores share: their clients and
the collection they talk to."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from fathom.aio import AsyncClient, AsyncCollection
from fathom.client import Client, Collection

__all__ = ["StoreClients", "StoreSettings"]


class StoreSettings(Protocol):
    """The settings of a vector store, read at each call (a store's fields
    may change before its first call)."""

    @property
    def server(self) -> str: ...

    @property
    def collection_name(self) -> str: ...

    @property
    def tenant(self) -> str | None: ...

    @property
    def metric(self) -> str: ...

    @property
    def language(self) -> str: ...


class StoreClients:
    """The clients a vector store talks through: those it was given, else a
    sync client opened at first use and an asyncio client per running event
    loop (a grpc.aio channel belongs to the loop it was opened in)."""

    def __init__(
        self, settings: StoreSettings, client: Client | None, async_client: AsyncClient | None
    ) -> None:
        self._settings = settings
        self._client = client
        self._async_client = async_client
        self._loop_clients: dict[asyncio.AbstractEventLoop, AsyncClient] = {}

    @property
    def client(self) -> Client:
        """The sync client (opened on the store's ``server`` at first use)."""
        if self._client is None:
            self._client = Client(self._settings.server)
        return self._client

    def aclient(self) -> AsyncClient:
        """The asyncio client: the one given, else the running loop's own."""
        if self._async_client is not None:
            return self._async_client
        loop = asyncio.get_running_loop()
        if loop not in self._loop_clients:
            self._loop_clients[loop] = AsyncClient(self._settings.server)
        return self._loop_clients[loop]

    def collection(self) -> Collection:
        """The store's collection, through the sync client."""
        return self.client.collection(self._settings.collection_name, self._settings.tenant)

    def acollection(self) -> AsyncCollection:
        """The store's collection, through the running loop's asyncio client."""
        return self.aclient().collection(self._settings.collection_name, self._settings.tenant)

    def create_arguments(self, dimension: int, **more: Any) -> dict[str, Any]:
        """The arguments of ``get_or_create_collection`` for the store's
        collection, with vectors of ``dimension`` (and ``more``)."""
        return {
            "name": self._settings.collection_name,
            "dimension": dimension,
            "metric": self._settings.metric,
            "language": self._settings.language,
            "multi_tenant": self._settings.tenant is not None,
            **more,
        }

    def close(self) -> None:
        """Closes the sync client."""
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Closes the asyncio client of the running loop, if it was opened here."""
        client = self._loop_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()
