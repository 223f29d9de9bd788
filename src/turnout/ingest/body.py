"""Reading a request body within its limit, gzip included, without trusting the client's sizes.

The limit applies to the decompressed body: a small gzip body can expand enormously, so
decompression stops as soon as the output passes the limit instead of inflating it all first.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request

from turnout.ingest.errors import IngestError, bad_request, too_large


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"request body of {declared} bytes is over the {limit // 1024} KB limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"request body is over the {limit // 1024} KB limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _inflate(body, limit, gzip=encoding != "deflate")
    raise IngestError(
        415, "unsupported_encoding", f"Content-Encoding {encoding[:30]!r}: only gzip is accepted"
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
