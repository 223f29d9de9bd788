"""Reading a request body within its limit, gzip included, without trusting the client's sizes.

The limit applies to the decompressed body: a small gzip body can expand enormously, so
decompression stops as soon as the output passes the limit instead of inflating it all first.
"""

from __future__ import annotations

import zlib

from starlette.types import Receive

from turnout.ingest.errors import IngestError, bad_request, too_large


class ClientGone(Exception):
    """The client disconnected before sending its whole body: there is no one to answer."""


async def read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(
            f"request body of {int(declared)} bytes is over the {limit // 1024} KB limit"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(f"request body is over the {limit // 1024} KB limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    encoding = headers.get(b"content-encoding", b"").strip().lower()
    if encoding in (b"", b"identity"):
        return body
    if encoding in (b"gzip", b"x-gzip", b"deflate"):
        return _inflate(body, limit, gzip=encoding != b"deflate")
    shown = encoding[:30].decode("latin-1")
    raise IngestError(
        415, "unsupported_encoding", f"Content-Encoding {shown!r}: only gzip is accepted"
    )


def _inflate(body: bytes, limit: int, *, gzip: bool) -> bytes:
    inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if gzip else 0))
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise bad_request("invalid_gzip", f"body is not valid gzip: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise too_large(f"decompressed request body is over the {limit // 1024} KB limit")
    return out
