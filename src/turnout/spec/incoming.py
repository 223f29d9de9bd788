"""Tracking calls as clients send them, decoded for checking without being unpacked.

The hot path never unpacks a call's free-form parts (`traits`, `properties`, `context`,
`integrations`) further than their top-level keys: each value stays `msgspec.Raw`, a slice of the
request body, written to the log as it came. The decoder still checks, in C, that each part is an
object, and `context.ip` or a batch-level context is merged by key without re-encoding anything.
`Incoming` has the wire shape of `spec.message.Message`, so an `Incoming` filled in by `normalise`
encodes to exactly the bytes a `Message` decodes from.

Every way a body can be wrong becomes an `InvalidMessage` naming the field: malformed JSON,
invalid UTF-8, a non-object, wrong types, nesting deeper than `MAX_DEPTH`.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import TypeVar

import msgspec

from turnout.validation import field_message

T = TypeVar("T")

# Deeper than any real analytics payload, far below the depth at which decoding anywhere
# downstream (delivery, destinations) would hit Python's recursion limit.
MAX_DEPTH = 100

# A free-form part: an object whose values are kept as they came (`null` counts as absent).
FreeForm = dict[str, msgspec.Raw] | None


class InvalidMessage(Exception):
    """A call that can never succeed as sent. `code` is stable; `message` names the field."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Incoming(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True, gc=False):
    """One call as a client may send it; after `normalise`, the call as it is stored.

    Ids may arrive as numbers (several SDKs allow `userId: 123`); `normalise` makes them strings.
    Unknown top-level fields are dropped. `receivedAt` and `source` are the server's: whatever a
    client sends there is overwritten.

    Not tracked by the garbage collector (`gc=False`): it holds only strings, numbers and dicts
    of JSON values, none of which refers back to it, so it can never be part of a cycle, and
    hundreds of thousands are made per second.
    """

    type: str | None = None
    message_id: str | int | None = None
    user_id: str | int | float | None = None
    anonymous_id: str | int | float | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    group_id: str | int | float | None = None
    previous_id: str | int | float | None = None
    traits: FreeForm = None
    properties: FreeForm = None
    context: FreeForm = None
    integrations: FreeForm = None
    timestamp: str | None = None
    original_timestamp: str | None = None
    sent_at: str | None = None
    received_at: str | None = None
    write_key: str | None = None
    source: str | None = None


class IncomingBatch(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    """A `/v1/batch` body. Items stay raw so one bad item cannot spoil the rest."""

    batch: list[msgspec.Raw]
    context: dict[str, object] | None = None
    integrations: dict[str, object] | None = None
    sent_at: str | None = None
    write_key: str | None = None


_call_decoder = msgspec.json.Decoder(Incoming)
_batch_decoder = msgspec.json.Decoder(IncomingBatch)


def decode_call(body: bytes | msgspec.Raw, where: str = "") -> Incoming:
    """Decode one call. `where` prefixes field names in errors (`batch[3].`)."""
    check_depth(body, where)
    return _decode(_call_decoder, body, where)


def decode_calls(items: list[msgspec.Raw]) -> list[Incoming] | None:
    """Decode every item of a batch in one pass of C, or None if any is not a valid call.

    The fast path for the batches SDKs send: no Python runs per item. On None the caller takes
    each item on its own (`decode_call`) to say which are wrong and why. Depth is not checked
    here: `any_too_deep` tells, once the calls are encoded, whether that is still needed.
    """
    try:
        return list(map(_call_decoder.decode, items))
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # ValidationError included
        return None


def decode_batch(body: bytes) -> IncomingBatch:
    """Decode a batch envelope; its items stay raw, each to be decoded on its own.

    Raises `InvalidMessage("too_deep")` when some item is nested too deeply for the decoder to
    skip over it; `decode_deep_batch` then finds the items without descending into them.
    """
    return _decode(_batch_decoder, body, "")


def _decode(decoder: msgspec.json.Decoder[T], body: bytes | msgspec.Raw, where: str) -> T:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidMessage("invalid_field", field_message(exc, where, "body")) from None
    except msgspec.DecodeError as exc:
        text = where.rstrip(".") or "body"
        raise InvalidMessage("invalid_json", f"{text}: not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidMessage("invalid_utf8", f"{where}{_utf8_problem(exc)}") from None
    except RecursionError:
        raise InvalidMessage(
            "too_deep", f"{where.rstrip('.') or 'body'}: nested deeper than {MAX_DEPTH} levels"
        ) from None


def check_utf8(body: bytes) -> None:
    """msgspec checks UTF-8 only where it decodes strings; raw parts must be checked too."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage("invalid_utf8", _utf8_problem(exc)) from None


def _utf8_problem(exc: UnicodeDecodeError) -> str:
    return f"body: not valid UTF-8 at byte {exc.start}"


# A JSON string, "unrolled" (runs of plain characters between escapes): linear and fast.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"{}[]")
_STEP = tuple(1 if b in b"{[" else -1 for b in range(256))  # only brackets are looked up


def check_depth(body: bytes | msgspec.Raw, where: str = "") -> None:
    """Refuse nesting deeper than MAX_DEPTH, at C speed."""
    if too_deep(body if isinstance(body, bytes) else bytes(body)):
        raise InvalidMessage(
            "too_deep", f"{where.rstrip('.') or 'body'}: nested deeper than {MAX_DEPTH} levels"
        )


_ONLY_BRACKETS_AND_NEWLINES = bytes(b for b in range(256) if b not in b"{}[]\n")


def any_too_deep(payloads: list[bytes]) -> bool:
    """`too_deep` for many encoded calls at once, settled in C for nearly every batch.

    Encoded JSON holds no raw newline, so joined by newlines and cut down to brackets, the calls
    split back apart: one whose brackets are fewer than twice the limit (one opens, one closes
    each level) cannot nest deeper than it. Only the others are looked at one by one.
    """
    counts = b"\n".join(payloads).translate(None, _ONLY_BRACKETS_AND_NEWLINES).split(b"\n")
    if max(map(len, counts)) <= 2 * MAX_DEPTH:
        return False
    return any(map(too_deep, payloads))


def too_deep(data: bytes) -> bool:
    """Whether `data` nests deeper than MAX_DEPTH.

    Fewer brackets than the limit cannot nest deeper than it: that settles nearly every call.
    Otherwise strings are cut out, everything but brackets dropped, and the running depth summed
    by `itertools.accumulate` (about a millisecond for 32 KB of brackets).
    """
    if data.count(b"{") + data.count(b"[") <= MAX_DEPTH:
        return False
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > MAX_DEPTH


_TOKEN = re.compile(_STRING.pattern + rb"|[\[\]{},]", re.DOTALL)
_COLON = re.compile(rb"\s*:")


def decode_deep_batch(body: bytes) -> IncomingBatch:
    """The slow path for a batch the decoder cannot descend: find its items by their commas.

    One item nested thousands deep must not cost the others. Only structural tokens are visited
    (found by a C regex), yet 500 KB of brackets still takes ~100 ms: run it off the event loop.
    The envelope is decoded with an empty `batch`, then the items are attached raw.
    """
    depth = 0
    array_start = -1
    item_start = 0
    items: list[msgspec.Raw] = []
    for match in _TOKEN.finditer(body):
        char = body[match.start()]
        if char == 0x22:  # a string: is it the top-level key "batch"?
            if (
                array_start < 0
                and depth == 1
                and match.group() == b'"batch"'
                and _COLON.match(body, match.end())
            ):
                array_start = -2  # the next "[" opens the batch array
            continue
        if char in b"{[":
            depth += 1
            if array_start == -2 and depth == 2 and char == 0x5B:
                array_start = match.start()
                item_start = match.end()
        elif char in b"}]":
            depth -= 1
            if array_start >= 0 and depth == 1:
                _add_item(items, body[item_start : match.start()])
                envelope = body[:array_start] + b"[]" + body[match.end() :]
                batch = _decode(_batch_decoder, envelope, "")
                batch.batch = items
                return batch
        elif array_start >= 0 and depth == 2:  # a comma between two items
            _add_item(items, body[item_start : match.start()])
            item_start = match.end()
    raise InvalidMessage("too_deep", f"body: nested deeper than {MAX_DEPTH} levels")


def _add_item(items: list[msgspec.Raw], text: bytes) -> None:
    text = text.strip()
    if text or items:
        items.append(msgspec.Raw(text))
