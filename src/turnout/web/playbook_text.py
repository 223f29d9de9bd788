"""A connection's playbook as the dashboard's editor holds it: one TOML text.

The text is what docs/playbooks.md shows for one connection: `consent` and `consent_missing` at
the top, then each rule as a `[[playbook]]` table (a block copied from a configuration file,
`[[connections.playbook]]`, is read the same way). Reading it back gives the three parts the
playbook service checks and saves; a text that is not such a playbook is refused with the same
kind of located error as an invalid rule, so the editor shows both alike.
"""

from __future__ import annotations

import datetime
import json
import tomllib
from dataclasses import dataclass
from typing import Any

from turnout.manage.playbooks import PlaybookRefused
from turnout.playbooks import canonical_toml

KEYS = ("consent", "consent_missing", "playbook")


@dataclass(slots=True)
class Draft:
    """A playbook read from the editor, not yet checked."""

    rules: list[dict[str, Any]]
    consent: list[str]
    consent_missing: str

    def parts(self) -> tuple[list[dict[str, Any]], list[str], str]:
        return self.rules, self.consent, self.consent_missing


def as_text(rules: list[dict[str, Any]], consent: list[str], consent_missing: str) -> str:
    """The editor's text for a playbook: consent settings first (always shown, so they can be
    found), then the rules in canonical TOML, the same lines the revision diffs show."""
    head = (
        f"consent = [{', '.join(_string(c) for c in consent)}]\n"
        f"consent_missing = {_string(consent_missing)}\n"
    )
    body = canonical_toml(rules, "playbook")
    return head + ("\n" + body if body else "")


def from_text(text: str) -> Draft:
    """The playbook a text holds; PlaybookRefused when the text is not TOML or not shaped like
    a playbook. The rules and consent settings themselves are checked by the playbook service."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _refused(f"playbook: not valid TOML: {exc}") from None
    data = _unwrap(data)
    for key in data:
        if key not in KEYS:
            raise _refused(
                f"playbook: unknown key {key!r}: the editor holds consent, consent_missing and"
                " [[playbook]] rules",
                field=key,
            )
    rules = data.get("playbook", [])
    if not isinstance(rules, list):
        raise _refused("playbook: write each rule as a [[playbook]] table", field="playbook")
    for number, rule in enumerate(rules, 1):
        found = _date(rule)
        if found is not None:
            raise _refused(
                f"playbook rule {number}: {found} is a TOML date or time, which a playbook does"
                " not take: quote it as a string",
                rule=number,
            )
    # consent and consent_missing are checked with the rules, by the playbook service.
    return Draft(rules, data.get("consent", []), data.get("consent_missing", "deliver"))


def _unwrap(data: dict[str, Any]) -> dict[str, Any]:
    """Accept a block copied from a configuration file: `[[connections.playbook]]` rules (and
    `[connections]`-level consent) read as the editor's own keys."""
    nested = data.pop("connections", None)
    if nested is None:
        return data
    if not isinstance(nested, dict):
        raise _refused(
            "playbook: one connection's playbook only: write each rule as a [[playbook]] table",
            field="connections",
        )
    for key, value in nested.items():
        if key in data:
            raise _refused(f"playbook: {key} is given twice", field=key)
        data[key] = value
    return data


def _date(value: Any) -> str | None:
    """The first TOML date or time inside a value (they cannot be stored as JSON)."""
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = _date(item)
            if found is not None:
                return found
    return None


def _string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, but TOML also escapes DEL)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _refused(message: str, *, rule: int | None = None, field: str | None = None) -> PlaybookRefused:
    return PlaybookRefused(message, rule=rule, field=field, entry=None, line=None, column=None)
