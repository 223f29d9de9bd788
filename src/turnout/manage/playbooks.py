"""Managing connections' playbooks: read, save, list and roll back revisions, preview a draft.

The management API and the dashboard both call this, so they refuse the same playbooks with the
same located error. Neither may run code: a playbook saved here may not name a `function` (only
the configuration file may), and rolling back to a revision that names one is refused too.
Saving hands the new revision to the connection's running lanes at once (no restart).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from turnout.destinations import registry
from turnout.destinations.base import SettingsError, parse_settings
from turnout.history import History
from turnout.manage.connections import settings_error
from turnout.manage.delivery import Delivery
from turnout.manage.errors import ManagementError, not_found
from turnout.playbooks import Playbook, PlaybookError, canonical_toml
from turnout.playbooks.preview import summary, try_call
from turnout.playbooks.revisions import Origin, compile_revision, function_rule, save_revision
from turnout.store.base import StateStore
from turnout.store.models import Connection, PlaybookRevision

PREVIEW_MAX = 1000  # stored calls one preview may run over


class PlaybookRefused(ManagementError):
    """A refused playbook: 400, its message located (`playbook rule 2, when (line 1, column
    19): ...`), and the location as fields (`rule`, `field`, `entry`, `line`, `column`) so a
    form can point at the right place."""

    def __init__(self, message: str, **location: Any) -> None:
        super().__init__(400, "invalid_playbook", message, "playbook")
        self.location = location

    def body(self) -> dict[str, Any]:
        return {**super().body(), "location": self.location}


def playbook_error(exc: PlaybookError) -> PlaybookRefused:
    return PlaybookRefused(
        str(exc), rule=exc.rule, field=exc.field, entry=exc.entry, line=exc.line,
        column=exc.column,
    )  # fmt: skip


def revision_view(revision: PlaybookRevision, *, full: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "number": revision.number,
        "created_at": revision.created_at,
        "origin": revision.origin,
        "note": revision.note,
        "rules": len(revision.rules),
    }
    if full:
        view.update(
            rules=revision.rules,
            consent=revision.consent,
            consent_missing=revision.consent_missing,
            toml=canonical_toml(revision.rules, "connections.playbook"),
            diff=revision.diff,
        )
    else:
        view["diff"] = revision.diff
    return view


class Playbooks:
    """`base_dir` is where the configuration file's function paths are relative to (a revision
    from the file may name one); `delivers` is false where no lanes run (`--role ingest`)."""

    def __init__(
        self,
        store: StateStore,
        history: History,
        delivery: Delivery,
        base_dir: Path,
        *,
        delivers: bool,
    ) -> None:
        self._store = store
        self._history = history
        self._delivery = delivery
        self._base_dir = base_dir
        self._delivers = delivers

    async def _connection(self, name: str) -> Connection:
        connection = await self._store.get_connection(name)
        if connection is None:
            raise not_found("connection", name)
        return connection

    async def current(self, name: str) -> dict[str, Any]:
        """The connection's playbook in force (empty, revision null, when never saved)."""
        await self._connection(name)
        revision = await self._store.playbook_revision(name)
        if revision is None:
            return {"connection": name, "revision": None, "rules": [], "consent": [],
                    "consent_missing": "deliver", "origin": None, "created_at": None,
                    "toml": ""}  # fmt: skip
        return {
            "connection": name,
            "revision": revision.number,
            "rules": revision.rules,
            "consent": revision.consent,
            "consent_missing": revision.consent_missing,
            "origin": revision.origin,
            "created_at": revision.created_at,
            "toml": canonical_toml(revision.rules, "connections.playbook"),
        }

    def check(
        self, rules: list[dict[str, Any]], consent: list[str], consent_missing: str
    ) -> Playbook:
        """Compile a playbook as the API and dashboard may save it: no functions."""
        try:
            return Playbook.compile(rules, consent, consent_missing, allow_functions=False)
        except PlaybookError as exc:
            raise playbook_error(exc) from None

    async def save(
        self,
        name: str,
        rules: list[dict[str, Any]],
        consent: list[str],
        consent_missing: str,
        origin: Origin,
    ) -> dict[str, Any]:
        """Validate and save as the next revision (nothing new when unchanged), then apply."""
        await self._connection(name)
        self.check(rules, consent, consent_missing)
        await save_revision(self._store, name, rules, consent, consent_missing, origin)
        await self._apply(name)
        return await self.current(name)

    async def revisions(self, name: str) -> list[dict[str, Any]]:
        await self._connection(name)
        return [revision_view(r, full=False) for r in await self._store.playbook_revisions(name)]

    async def revision(self, name: str, number: int) -> PlaybookRevision:
        await self._connection(name)
        revision = await self._store.playbook_revision(name, number)
        if revision is None:
            raise not_found(f"revision of {name!r}'s playbook", number)
        return revision

    async def rollback(self, name: str, number: int, origin: Origin) -> dict[str, Any]:
        """Restore an earlier revision as a new one (the history keeps every revision)."""
        old = await self.revision(name, number)
        with_function = function_rule(old.rules)
        if with_function is not None:
            raise PlaybookRefused(
                f"playbook rule {with_function}, function: revision {number} names a function,"
                " which only the configuration file may do: restore it there",
                rule=with_function, field="function", entry=None, line=None, column=None,
            )  # fmt: skip
        self.check(old.rules, old.consent, old.consent_missing)
        await save_revision(
            self._store, name, old.rules, old.consent, old.consent_missing, origin,
            note=f"rollback to revision {number}",
        )  # fmt: skip
        await self._apply(name)
        return await self.current(name)

    async def preview(
        self,
        name: str,
        last: int,
        draft: tuple[list[dict[str, Any]], list[str], str] | None = None,
    ) -> dict[str, Any]:
        """Run a draft (or the playbook in force) over the connection's `last` stored calls,
        without sending anything."""
        connection = await self._connection(name)
        if draft is not None:
            playbook = self.check(*draft)
        else:
            revision = await self._store.playbook_revision(name)
            playbook = (
                Playbook.compile([])
                if revision is None
                else compile_revision(revision, self._base_dir)
            )
        try:
            destination = registry.get(connection.destination)
            settings = parse_settings(destination, connection.settings)
        except SettingsError as exc:
            raise settings_error(exc) from None
        sources = set(connection.sources)
        calls = await self._history.recent(
            lambda message: not sources or message.get("source") in sources,
            min(last, PREVIEW_MAX),
        )
        tried = [try_call(playbook, destination, settings, call.message) for call in calls]
        return {
            "connection": name,
            "summary": summary(tried),
            "calls": [
                {"offset": call.offset, **result.as_dict()}
                for call, result in zip(calls, tried, strict=True)
            ],
        }

    async def _apply(self, name: str) -> None:
        if self._delivers:
            await self._delivery.load_playbook(name)
