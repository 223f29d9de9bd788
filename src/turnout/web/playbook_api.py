"""The management API's playbooks: `/api/v1/connections/{name}/playbook[...]`.

Read and replace a connection's playbook, list its revisions (each with its diff), read one,
roll back to one, and preview a draft over the connection's most recent stored calls. A playbook
that does not compile is a 400 whose message and `location` name the rule, the field and, for a
condition, the line and column; the revision in force stays.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import FastAPI, Path
from pydantic import BaseModel, ConfigDict, Field

from turnout.manage.playbooks import Playbooks, revision_view

logger = logging.getLogger("turnout.web")

RevisionNumber = Annotated[int, Path(ge=1, le=2**62)]
Rules = Annotated[
    list[dict[str, Any]],
    Field(
        max_length=1000,
        description="The rules, in order, as in `[[connections.playbook]]` (docs/playbooks.md);"
        " `function` is refused (only the configuration file may name one)",
        examples=[[{"when": 'type = "track" and event = "Test Event"', "drop": True}]],
    ),
]
Consent = Annotated[
    list[Annotated[str, Field(max_length=200)]],
    Field(max_length=100, description="Consent categories the connection needs"),
]
ConsentMissing = Annotated[
    str,
    Field(max_length=20, description='"deliver" or "drop": a call that carries no consent'),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaybookBody(_Body):
    rules: Rules = Field(default_factory=list)
    consent: Consent = Field(default_factory=list)
    consent_missing: ConsentMissing = "deliver"


class PreviewBody(_Body):
    last: int = Field(default=100, ge=1, le=1000, description="How many stored calls to run")
    rules: Rules | None = Field(
        default=None, description="The draft's rules; the playbook in force when omitted"
    )
    consent: Consent = Field(default_factory=list)
    consent_missing: ConsentMissing = "deliver"


def install_playbook_routes(api: FastAPI, playbooks: Playbooks, guard: list[Any]) -> None:
    base = "/connections/{name}/playbook"

    @api.get(base, dependencies=guard, tags=["playbooks"])
    async def get_playbook(name: str) -> dict[str, Any]:
        """The playbook in force: its revision, rules, consent settings and canonical TOML."""
        return await playbooks.current(name)

    @api.put(base, dependencies=guard, tags=["playbooks"])
    async def put_playbook(name: str, body: PlaybookBody) -> dict[str, Any]:
        """Replace the playbook: a new revision (none when nothing changed), in force at once.
        400 `invalid_playbook` with the location when it does not compile."""
        saved = await playbooks.save(name, body.rules, body.consent, body.consent_missing, "api")
        logger.info("connection %s: playbook revision %s in force", name, saved["revision"])
        return saved

    @api.get(base + "/revisions", dependencies=guard, tags=["playbooks"])
    async def list_revisions(name: str) -> list[dict[str, Any]]:
        """Every revision, newest first: number, time, who saved it, note and diff."""
        return await playbooks.revisions(name)

    @api.get(base + "/revisions/{number}", dependencies=guard, tags=["playbooks"])
    async def get_revision(name: str, number: RevisionNumber) -> dict[str, Any]:
        return revision_view(await playbooks.revision(name, number))

    @api.post(base + "/revisions/{number}/rollback", dependencies=guard, tags=["playbooks"])
    async def rollback(name: str, number: RevisionNumber) -> dict[str, Any]:
        """Put an earlier revision back in force, as a new revision."""
        restored = await playbooks.rollback(name, number, "api")
        logger.info("connection %s: playbook rolled back to revision %d", name, number)
        return restored

    @api.post(base + "/preview", dependencies=guard, tags=["playbooks"])
    async def preview(name: str, body: PreviewBody) -> dict[str, Any]:
        """Run a draft (or the playbook in force) over the connection's most recent stored
        calls, sending nothing: per call before, after, the operations or the filter reason;
        and a summary."""
        draft = None
        if body.rules is not None:
            draft = (body.rules, body.consent, body.consent_missing)
        return await playbooks.preview(name, body.last, draft)
