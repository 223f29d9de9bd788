"""Managing sources: create, rename, rotate the write key, delete.

A rotated key stops working at once (ingest reads the store's key map, refreshed on every write);
connections follow a renamed source because the store renames it in their source lists too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from turnout.manage.errors import ManagementError, invalid, not_found
from turnout.manage.names import (
    NAME_RULE,
    WRITE_KEY_RULE,
    new_write_key,
    valid_name,
    valid_write_key,
)
from turnout.store.base import StateStore
from turnout.store.models import Source


class Sources:
    def __init__(
        self, store: StateStore, restart_fed_by: Callable[[str], Awaitable[None]] | None = None
    ) -> None:
        self._store = store
        # Running lanes hold their source names; after a rename they must be restarted.
        self._restart_fed_by = restart_fed_by

    async def all(self) -> list[Source]:
        return await self._store.list_sources()

    async def get(self, name: str) -> Source:
        for source in await self._store.list_sources():
            if source.name == name:
                return source
        raise not_found("source", name)

    async def create(self, name: str, write_key: str | None = None) -> Source:
        name = name.strip()
        if not valid_name(name):
            raise invalid("name", f"name: use {NAME_RULE}")
        if any(s.name == name for s in await self._store.list_sources()):
            raise ManagementError(
                409,
                "name_taken",
                f"a source named {name!r} already exists; choose another name",
                "name",
            )
        key = await self._unused_key(write_key)
        source = Source(name=name, write_key=key)
        await self._store.put_source(source)
        return await self.get(name)

    async def rename(self, name: str, new_name: str) -> Source:
        await self.get(name)
        new_name = new_name.strip()
        if new_name == name:
            return await self.get(name)
        if not valid_name(new_name):
            raise invalid("name", f"name: use {NAME_RULE}")
        if any(s.name == new_name for s in await self._store.list_sources()):
            raise ManagementError(
                409, "name_taken", f"a source named {new_name!r} already exists", "name"
            )
        await self._store.rename_source(name, new_name)
        if self._restart_fed_by is not None:
            await self._restart_fed_by(new_name)
        return await self.get(new_name)

    async def rotate(self, name: str, write_key: str | None = None) -> Source:
        """Give the source a new write key; the old one is refused from now on."""
        source = await self.get(name)
        source.write_key = await self._unused_key(write_key)
        await self._store.put_source(source)
        return await self.get(name)

    async def delete(self, name: str) -> None:
        await self.get(name)
        users = [c.name for c in await self._store.list_connections() if name in c.sources]
        if users:
            raise ManagementError(
                409,
                "in_use",
                f"source {name!r} feeds connection(s) {', '.join(users)}: remove it from them"
                " first",
            )
        await self._store.delete_source(name)

    async def _unused_key(self, write_key: str | None) -> str:
        if write_key is None:
            return new_write_key()
        if not valid_write_key(write_key):
            raise invalid("write_key", f"write_key: use {WRITE_KEY_RULE}")
        if write_key in self._store.sources_by_key:
            raise ManagementError(
                409,
                "write_key_taken",
                "write_key: another source already uses this key",
                "write_key",
            )
        return write_key
