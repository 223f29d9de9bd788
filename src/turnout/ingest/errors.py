"""Tracking API errors and the answers they become.

SDKs retry 429 and 5xx and drop other 4xx, so a 4xx here must only ever mean "this input can
never succeed". Every error body carries `code` and `message`: segment-python reads both, and
rudder-sdk-python raises KeyError without them.
"""

from __future__ import annotations

import msgspec

_encode = msgspec.json.encode
JSON = "application/json"


class IngestError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        rejected: list[dict[str, object]] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.rejected = rejected
        self._headers = headers or []

    def body(self) -> bytes:
        body: dict[str, object] = {"success": False, "code": self.code, "message": self.message}
        if self.rejected:
            body["rejected"] = self.rejected
        return _encode(body)

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.retry_after is None:
            return list(self._headers)
        return [*self._headers, (b"retry-after", str(self.retry_after).encode())]


def unauthorized(message: str) -> IngestError:
    return IngestError(401, "invalid_write_key", message)


def too_large(message: str, code: str = "request_too_large") -> IngestError:
    return IngestError(413, code, message)


def bad_request(code: str, message: str) -> IngestError:
    return IngestError(400, code, message)


def overloaded(message: str, retry_after: int = 5) -> IngestError:
    """The log cannot take more now: 503 + Retry-After, which every SDK retries."""
    return IngestError(503, "overloaded", message, retry_after=retry_after)
