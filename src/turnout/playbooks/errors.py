"""The one error an invalid playbook raises, with where the problem is.

The configuration loader, the management API and the dashboard all report the same error, so it
carries its location as fields (to point at the right input) as well as in its text (to print).
"""

from __future__ import annotations


class PlaybookError(ValueError):
    """An invalid playbook: `rule` is the rule's number (1-based, as every message shows it; None
    for the connection's consent settings), `field` the rule's key (`when`, `transform`,
    `consent`...), `entry` the key or item inside that field (`traits.email`), and for `when`
    the `line` and `column` (1-based) in the condition where parsing stopped."""

    def __init__(
        self,
        message: str,
        *,
        rule: int | None = None,
        field: str | None = None,
        entry: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.rule = rule
        self.field = field
        self.entry = entry
        self.line = line
        self.column = column
        super().__init__(f"{self.location}: {message}")

    @property
    def location(self) -> str:
        """`playbook rule 2, transform "traits.phone"` or `playbook rule 1, when (line 1,
        column 7)`: the place, as users read it."""
        parts = ["playbook" if self.rule is None else f"playbook rule {self.rule}"]
        if self.field is not None:
            where = self.field
            if self.entry is not None:
                where += f" {_quote(self.entry)}"
            if self.line is not None:
                where += f" (line {self.line}, column {self.column})"
            parts.append(where)
        return ", ".join(parts)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
