"""Consent: a connection that needs categories (`marketing`, ...) gets only the messages whose
consent grants every one of them.

A message's consent is read from any of three shapes SDKs and consent tools write in `context`:

- Segment: `consent.categoryPreferences`, `{"Advertising": true, "Analytics": false}`; true
  grants a category, anything else denies it; a category not listed says nothing.
- RudderStack: `consentManagement`, `{"allowedConsentIds": [...], "deniedConsentIds": [...],
  "provider": ..., "resolutionStrategy": ...}`; an id in `deniedConsentIds` denies, in
  `allowedConsentIds` grants. `provider` and `resolutionStrategy` are not read: the connection
  decides, and it needs every one of its categories.
- MetaRouter-style: `consent.optOut`, `{"marketing": true}`; true means the person opted out of
  the category (denied); any category not opted out of is granted (the opt-out model).

A category is granted when some shape grants it and none denies it. Category names are compared
exactly (case-sensitive), as Segment and RudderStack do. A message with none of the three objects
carries no consent: `consent_missing` decides (`deliver` or `drop`). A shape that is present but
malformed (a list where an object belongs) still counts as consent data, and grants nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from turnout.playbooks.codegen import Source
from turnout.playbooks.errors import PlaybookError
from turnout.playbooks.paths import describe

CONSENT_MISSING_CHOICES: Final = ("deliver", "drop")


def compile_consent(categories: Any, missing: Any) -> Check | None:
    """The check for a connection needing `categories` (None when it needs none): called with a
    message, it returns the reason to filter it, or None to let it through. PlaybookError for
    bad settings."""
    if missing not in CONSENT_MISSING_CHOICES:
        raise PlaybookError(f'"deliver" or "drop", got {missing!r}', field="consent_missing")
    if not isinstance(categories, list | tuple):
        raise PlaybookError(
            f'a list of category names (consent = ["marketing"]), got {describe(categories)}',
            field="consent",
        )
    needed: list[str] = []
    for category in categories:
        if not isinstance(category, str) or not category.strip():
            raise PlaybookError(
                f"each category is a non-empty string, got {category!r}", field="consent"
            )
        if category not in needed:
            needed.append(category)
    if not needed:
        return None
    return Check(tuple(needed), missing == "drop")


@dataclass(frozen=True, slots=True)
class Check:
    """A connection's consent needs: the categories, and whether a message carrying no consent
    at all is dropped."""

    needed: tuple[str, ...]
    drop_missing: bool

    def __call__(self, message: dict[str, Any]) -> str | None:
        """The reason to filter `message`, or None to let it through."""
        # The usual case first, read inline: Segment's preferences granting every category.
        context = message.get("context")
        if type(context) is dict and "consentManagement" not in context:
            segment = context.get("consent")
            if type(segment) is dict and "optOut" not in segment:
                preferences = segment.get("categoryPreferences")
                if type(preferences) is dict:
                    for category in self.needed:
                        if preferences.get(category) is not True:
                            break
                    else:
                        return None
        consent = read_consent(message)
        if consent is None:
            if self.drop_missing:
                return 'consent: the message carries no consent (consent_missing = "drop")'
            return None
        for category in self.needed:
            if not consent.grants(category):
                refused = [each for each in self.needed if not consent.grants(each)]
                return "consent: not granted: " + ", ".join(refused)
        return None

    def usual_case(self, source: Source, message: str) -> str:
        """An expression (see codegen.py) that is true when `message` is the usual case that
        `__call__` lets through at once: Segment's preferences granting every category, and no
        other shape. When it is false, `__call__` decides. It may assign `_t`."""
        names = [source.name(text) for text in ("consentManagement", "consent", "optOut",
                                                "categoryPreferences")]  # fmt: skip
        granted = " and ".join(f"_t.get({source.name(each)}) is True" for each in self.needed)
        return (
            f"((_t := {message}.get({source.name('context')})).__class__ is dict"
            f" and {names[0]} not in _t and (_t := _t.get({names[1]})).__class__ is dict"
            f" and {names[2]} not in _t and (_t := _t.get({names[3]})).__class__ is dict"
            f" and {granted})"
        )


def read_consent(message: dict[str, Any]) -> Consent | None:
    """The consent a message carries, or None when it carries none."""
    context = message.get("context")
    if type(context) is not dict:
        return None
    segment = context.get("consent")
    preferences = opt_out = None
    if type(segment) is dict:
        preferences = segment.get("categoryPreferences")
        opt_out = segment.get("optOut")
    rudder = context.get("consentManagement")
    if preferences is None and opt_out is None and rudder is None:
        return None
    allowed: list[Any] = []
    denied: list[Any] = []
    if type(rudder) is dict:
        allowed = _ids(rudder.get("allowedConsentIds"))
        denied = _ids(rudder.get("deniedConsentIds"))
    return Consent(
        preferences=preferences if type(preferences) is dict else {},
        allowed=allowed,
        denied=denied,
        opt_out=opt_out if type(opt_out) is dict else None,
    )


@dataclass(slots=True)
class Consent:
    """A message's consent, from whichever shapes it carries (malformed ones read as empty)."""

    preferences: dict[str, Any]  # Segment's categoryPreferences
    allowed: list[Any]  # RudderStack's allowedConsentIds (as sent: only equality is asked)
    denied: list[Any]  # RudderStack's deniedConsentIds
    opt_out: dict[str, Any] | None  # the opt-out map, when present as an object

    def grants(self, category: str) -> bool:
        """Whether some shape grants `category` and none denies it."""
        granted = False
        if category in self.preferences:
            if self.preferences[category] is not True:
                return False
            granted = True
        if category in self.denied:
            return False
        if category in self.allowed:
            granted = True
        if self.opt_out is not None:
            if self.opt_out.get(category) is True:
                return False
            granted = True  # the opt-out model: what is not opted out of is granted
        return granted


def _ids(value: Any) -> list[Any]:
    return value if type(value) is list else []
