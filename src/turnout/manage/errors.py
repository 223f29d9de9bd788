"""The one error type the management services raise, for the JSON API, the dashboard and the CLI.

The API turns it into `{"code", "message", "field"}` with its status; the dashboard shows the
message next to the field it names. Keeping one type means both say exactly the same thing.
"""

from __future__ import annotations

from typing import Any


class ManagementError(Exception):
    """A request that cannot be carried out as asked; `message` tells the user what to change."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers  # e.g. `Retry-After` on a 429, `WWW-Authenticate` on a 401

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


def not_found(what: str, name: object) -> ManagementError:
    return ManagementError(404, "not_found", f"{what} {name!r} does not exist")


def invalid(field: str, message: str) -> ManagementError:
    return ManagementError(422, "invalid", message, field)
