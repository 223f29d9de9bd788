"""Playbook revisions: every saved version of a connection's playbook, numbered, never changed.

Saving a playbook (the configuration file's at start, the management API, the dashboard) or
rolling back to an earlier one adds a revision with who saved it and the difference from the one
before. The lanes shape messages with the newest revision, and each delivery record names the
revision that shaped it.

Only the configuration file may name a `function` (it runs code inside Turnout), so a revision
is compiled with functions allowed only when the file saved it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from turnout.playbooks.diff import describe_diff
from turnout.playbooks.playbook import Playbook
from turnout.store.base import StateStore
from turnout.store.models import PlaybookRevision

Origin = Literal["file", "api", "dashboard"]


def compile_revision(revision: PlaybookRevision, base_dir: Path | None) -> Playbook:
    """The revision's playbook, compiled; PlaybookError when it no longer compiles."""
    return Playbook.compile(
        revision.rules,
        revision.consent,
        revision.consent_missing,
        base_dir=base_dir,
        allow_functions=revision.origin == "file",
    )


def same_playbook(
    revision: PlaybookRevision | None,
    rules: list[dict[str, Any]],
    consent: list[str],
    consent_missing: str,
) -> bool:
    """Whether saving this playbook would change nothing. No revision at all is the same as
    an empty playbook, so a file without one creates no revision."""
    if revision is None:
        return not rules and not consent and consent_missing == "deliver"
    return (revision.rules, revision.consent, revision.consent_missing) == (
        rules,
        consent,
        consent_missing,
    )


def next_revision(
    connection: str,
    previous: PlaybookRevision | None,
    rules: list[dict[str, Any]],
    consent: list[str],
    consent_missing: str,
    origin: Origin,
    note: str = "",
) -> PlaybookRevision:
    """The revision to add after `previous` (its number and time are set by the store)."""
    diff = describe_diff(
        previous.rules if previous else [],
        rules,
        f"revision {previous.number}" if previous else "no playbook",
        "this revision",
    )
    before = _consent_line(previous.consent, previous.consent_missing) if previous else None
    after = _consent_line(consent, consent_missing)
    if (before or _consent_line([], "deliver")) != after:
        diff += f"consent: {before or '(none)'} -> {after}\n"
    return PlaybookRevision(
        connection=connection,
        number=0,
        created_at=0.0,
        origin=origin,
        rules=rules,
        consent=list(consent),
        consent_missing=consent_missing,
        diff=diff,
        note=note,
    )


async def save_revision(
    store: StateStore,
    connection: str,
    rules: list[dict[str, Any]],
    consent: list[str],
    consent_missing: str,
    origin: Origin,
    note: str = "",
) -> PlaybookRevision | None:
    """Add a revision when the playbook differs from the current one; None when it does not
    (the configuration file re-applied at every start adds nothing new). Validate it first."""
    current = await store.playbook_revision(connection)
    if not note and same_playbook(current, rules, consent, consent_missing):
        return None
    revision = next_revision(connection, current, rules, consent, consent_missing, origin, note)
    return await store.add_playbook_revision(revision)


def function_rule(rules: list[dict[str, Any]]) -> int | None:
    """The number of the first rule that names a function, if any."""
    for number, rule in enumerate(rules, 1):
        if isinstance(rule, dict) and "function" in rule:
            return number
    return None


def _consent_line(consent: list[str], consent_missing: str) -> str:
    return f"consent = {list(consent)!r}, consent_missing = {consent_missing!r}"
