"""Runs the peer conformance corpus: Turnout's side, the peer's side, and the comparison.

For one case:

1. **Turnout's side.** Each input goes through what ingest does (`decode_call` + `normalise`, then
   the log's encode/decode round trip), the Customer.io mapping, and the real `CustomerIOClient`,
   into a fresh emulator. All the case's operations go in one `send` call, as the delivery lane
   hands a batch of messages to the client.
2. **The peer's side.** The peer's expected HTTP requests are replayed as they are (method, path
   and query, JSON body) into a second fresh emulator. Only the host (the emulator's) and the
   credentials (the emulator's Basic auth) are rewritten.
3. **The comparison.** Both read models are reduced to a `canonical` view of their effect on the
   workspace, and the views are compared. The normalisations are listed in README.md.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from turnout.delivery.gate import Unlimited
from turnout.destinations.customerio.client import CustomerIOClient
from turnout.destinations.customerio.mapping import map_message
from turnout.destinations.customerio.operations import AnonymousEvent, PersonEvent
from turnout.destinations.customerio.settings import CustomerIOSettings, parse_settings
from turnout.emulators.customerio import CustomerIOEmulator
from turnout.emulators.customerio.model import as_string
from turnout.spec import message as spec_message
from turnout.spec.incoming import InvalidMessage, decode_call
from turnout.spec.normalise import RequestFacts, normalise, stored_message

HERE = Path(__file__).parent
CASES_PATH = HERE / "peer_cases.json"
DELIBERATE_PATH = HERE / "deliberate.json"
# Turnout's own requests (api = "v2") for every deliberately different case, reviewed by hand.
REQUESTS_PATH = HERE / "turnout_requests.json"

# When the input carries no time at all, ingest's clock is pinned to the time the Segment cases
# are pinned to, so a run is reproducible.
PINNED_NOW = "2024-05-01T12:34:56.789Z"

# Every time the emulator fills in itself (an event or device without a timestamp, a person's
# automatic `created_at`) is the wall clock, which is after this; every time the corpus carries is
# before it (2019 to 2024).
WALL_CLOCK_FROM = int(time.time()) - 60

# Marks in the canonical view.
UNSET = "<not sent: the workspace's own clock>"  # matches any value (see `differences`)
AUTO_CREATED = "<created_at set by the workspace>"

# Case id -> "equivalent", "deliberate" or "failing", for the summary printed after the run.
TALLY: dict[str, str] = {}

# cio_ids the emulator generates for people (`03000001`, ...): internal, not part of the effect.
_GENERATED_CIO = re.compile(r"^03[0-9a-f]{6}$")


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(CASES_PATH.read_text())
    return cases


def load_deliberate() -> dict[str, str]:
    """Case id -> the documented reason Turnout differs from the peer on it."""
    data = json.loads(DELIBERATE_PATH.read_text())
    reasons: dict[str, str] = {}
    for group in data["groups"]:
        for case_id in group["ids"]:
            if case_id in reasons:
                raise ValueError(f"{case_id} is listed twice in {DELIBERATE_PATH.name}")
            reasons[case_id] = group["reason"]
    return reasons


def inputs_of(case: dict[str, Any]) -> list[dict[str, Any]]:
    if "inputs" in case:
        inputs: list[dict[str, Any]] = case["inputs"]
        return inputs
    single: dict[str, Any] = case["input"]
    return [single]


# -- Turnout's side ---------------------------------------------------------------------------


def turnout_settings(
    case: dict[str, Any], emulator: CustomerIOEmulator, api: str
) -> CustomerIOSettings:
    """The connection a user would configure for the peer's settings, pointed at the emulator.

    Raises `msgspec.ValidationError` when the peer's settings lack a credential Turnout requires
    (the case then sends nothing, as the peer does).
    """
    peer = case["settings_normalized"]
    raw: dict[str, Any] = {
        "region": str(peer.get("region", "us")).lower(),
        "track_url": emulator.url,
        "api": api,
        "convert_timestamps": bool(peer.get("convertTimestamps", True)),
    }
    # The peer's own credentials decide whether a request is made at all; the emulator's are used
    # for the request itself.
    if peer.get("siteId"):
        raw["site_id"] = emulator.config.site_id
    if peer.get("apiKey"):
        raw["api_key"] = emulator.config.api_key
    return parse_settings(raw)


def ingest(raw_call: dict[str, Any]) -> spec_message.Message:
    """What `POST /v1/batch` does with one item, and the message the log then hands delivery."""
    call = decode_call(json.dumps(raw_call).encode())
    received = raw_call.get("receivedAt") or call.sent_at or call.timestamp
    received = received or call.original_timestamp or PINNED_NOW
    facts = RequestFacts(received_at=_parse(received), ip=None)
    return stored_message(normalise(call, facts, "web", None))


def _parse(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class TurnoutRun:
    """What Turnout made of a case: per input, what happened; and any request that failed."""

    outcomes: list[str] = field(default_factory=list)
    sent: list[bool] = field(default_factory=list)  # per input: did it lead to any request?
    send_failures: list[str] = field(default_factory=list)
    operations: int = 0
    # Event dedupe id -> "<dedupe id of input N>", how `sent_requests` shows it.
    dedupe_ids: dict[str, str] = field(default_factory=dict)


def run_turnout(case: dict[str, Any], emulator: CustomerIOEmulator, api: str) -> TurnoutRun:
    run = TurnoutRun()
    try:
        settings = turnout_settings(case, emulator, api)
    except (msgspec.ValidationError, ValueError) as exc:
        run.outcomes.append(f"connection refused by settings validation: {exc}")
        run.sent = [False] * len(inputs_of(case))
        return run
    operations: list[Any] = []
    for index, raw_call in enumerate(inputs_of(case)):
        try:
            message = ingest(raw_call)
        except InvalidMessage as exc:
            run.outcomes.append(f"input {index}: rejected at ingest (400 {exc.code}): {exc}")
            run.sent.append(False)
            continue
        mapped = map_message(message, settings)
        run.sent.append(bool(mapped.operations))
        for op in mapped.operations:
            if isinstance(op, PersonEvent | AnonymousEvent):
                run.dedupe_ids.setdefault(op.id, f"<dedupe id of input {index}>")
        if mapped.filtered is not None:
            run.outcomes.append(f"input {index}: filtered: {mapped.filtered}")
        elif mapped.rejected is not None:
            run.outcomes.append(f"input {index}: dead-lettered: {mapped.rejected}")
        else:
            kinds = ", ".join(type(op).__name__ for op in mapped.operations)
            note = f" (adjusted: {'; '.join(mapped.adjustments)})" if mapped.adjustments else ""
            run.outcomes.append(f"input {index}: sent {kinds}{note}")
            operations.extend(mapped.operations)
    run.operations = len(operations)
    if operations:
        results = asyncio.run(_send(settings, operations))
        for op, result in zip(operations, results, strict=True):
            if result.status.value != "ok":
                run.send_failures.append(
                    f"{type(op).__name__}: {result.status.value} {result.reason} "
                    f"[{result.request}] -> {result.response}"
                )
    return run


# Building an SSL context costs ~35 ms, and httpx builds one per client even for plain http; the
# runs share one.
_SSL = ssl.create_default_context()


async def _send(settings: CustomerIOSettings, operations: list[Any]) -> list[Any]:
    transport = httpx.AsyncHTTPTransport(verify=_SSL)
    client = CustomerIOClient(settings, Unlimited(), transport=transport)
    try:
        return await client.send(operations)
    finally:
        await client.aclose()


def load_requests() -> dict[str, list[dict[str, Any]]]:
    """Case id -> the requests Turnout is expected to send for it (`sent_requests`' form)."""
    recorded: dict[str, list[dict[str, Any]]] = json.loads(REQUESTS_PATH.read_text())
    return recorded


def sent_requests(emulator: CustomerIOEmulator, run: TurnoutRun) -> list[dict[str, Any]]:
    """Every request Customer.io (the emulator) received: method, path with query, JSON body.

    Event dedupe ids are shown as the input they were derived from (`<dedupe id of input 0>`):
    how an id is derived is the dedupe module's promise, tested there, and an input without a
    `messageId` gets a random one. The list is sorted: requests about different people are sent
    concurrently, so the order they arrive in is not part of the contract.
    """
    found = [
        {
            "method": request.method,
            "path": request.path + (f"?{request.query}" if request.query else ""),
            "body": _named_ids(request.body, run.dedupe_ids),
        }
        for request in emulator.requests
    ]
    return sorted(found, key=lambda request: json.dumps(request, sort_keys=True))


def _named_ids(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _named_ids(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_named_ids(item, names) for item in value]
    if isinstance(value, str):
        return names.get(value, value)
    return value


# -- the peer's side --------------------------------------------------------------------------


def replay_peer(case: dict[str, Any], emulator: CustomerIOEmulator) -> list[str]:
    """Send the peer's requests to the emulator; returns each request with its answer."""
    assert emulator.url is not None
    config = emulator.config
    token = base64.b64encode(f"{config.site_id}:{config.api_key}".encode()).decode()
    answers: list[str] = []
    transport = httpx.HTTPTransport(verify=_SSL)
    with httpx.Client(base_url=emulator.url, timeout=10, transport=transport) as client:
        for request in case["expected"]:
            parts = urlsplit(request["url"])
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
            body = _with_ulid_event_ids(parts.path, request.get("body"))
            content = json.dumps(body).encode() if body is not None else None
            response = client.request(request["method"], target, content=content, headers=headers)
            answers.append(
                f"{request['method']} {target} -> {response.status_code} {response.text[:300]}"
            )
    return answers


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$", re.IGNORECASE)
_EVENT_ACTIONS = frozenset({"event", "page", "screen"})


def ulid_from(text: str) -> str:
    """A ULID standing for the peer's non-ULID dedupe id: the same id always gives the same ULID,
    so the peer's deduplication is kept."""
    number = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")
    return "".join(_CROCKFORD[(number >> shift) & 31] for shift in range(125, -1, -5))


def _with_ulid_event_ids(path: str, body: Any) -> Any:
    """The peer's body with every event dedupe id that is not a ULID replaced by `ulid_from` it.

    Customer.io requires event ids to be ULIDs (ref §8) and the emulator rejects others; Segment
    sends its `messageId` (a UUID). Dedupe ids are not compared, so this keeps the comparison about
    the rest of the call.
    """
    if not isinstance(body, dict):
        return body
    if path.endswith("/api/v2/batch") and isinstance(body.get("batch"), list):
        return {**body, "batch": [_with_ulid_event_ids("/api/v2/entity", i) for i in body["batch"]]}
    v1_event = path == "/api/v1/events" or path.endswith("/events")
    v2_event = path.endswith("/api/v2/entity") and body.get("action") in _EVENT_ACTIONS
    event_id = body.get("id")
    if (v1_event or v2_event) and isinstance(event_id, str) and not _ULID.match(event_id):
        return {**body, "id": ulid_from(event_id)}
    return body


# -- the comparison ---------------------------------------------------------------------------


def _when(value: Any) -> Any:
    """A time the workspace filled in itself (none was sent) becomes UNSET."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return UNSET if value >= WALL_CLOCK_FROM else value
    return value


def _profile_value(value: Any) -> Any:
    """Profile attributes as Customer.io shows them: every scalar as a string, at any depth."""
    if isinstance(value, dict):
        return {str(k): _profile_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_profile_value(v) for v in value]
    return as_string(value)


def _activity(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": entry["type"],
        "name": entry["name"],
        "data": entry["data"],
        "timestamp": _when(entry["timestamp"]),
    }


def canonical(emulator: CustomerIOEmulator) -> dict[str, Any]:
    """The effect of everything applied to the workspace, without internal or clock values."""
    snap = emulator.state.snapshot()
    names: dict[str, str] = {}
    for person in snap["people"]:
        if person["id"] is not None:
            names[person["cio_id"]] = f"id:{person['id']}"
        elif person["email"] is not None:
            names[person["cio_id"]] = f"email:{person['email'].lower()}"
        else:
            names[person["cio_id"]] = f"cio:{person['cio_id']}"

    people: dict[str, Any] = {}
    for person in snap["people"]:
        attributes = {k: _profile_value(v) for k, v in person["attributes"].items()}
        created = person["attributes"].get("created_at")
        if created == int(person["created_at"]) and created >= WALL_CLOCK_FROM:
            attributes["created_at"] = AUTO_CREATED
        people[names[person["cio_id"]]] = {
            "email": person["email"],
            "attributes": attributes,
            "activity": [_activity(a) for a in person["activity"]],
            "devices": sorted(
                (
                    {
                        "token": d["token"],
                        "platform": d["platform"],
                        "last_used": _when(d["last_used"]),
                        "attributes": _profile_value(d["attributes"]),
                    }
                    for d in person["devices"]
                ),
                key=lambda d: str(d["token"]),
            ),
            "relationships": sorted(
                (
                    [r["object_type_id"], r["object_id"], _profile_value(r["attributes"])]
                    for r in person["relationships"]
                ),
                key=lambda r: (r[0], r[1]),
            ),
            "anonymous_ids": sorted(person["anonymous_ids"]),
        }
    objects: dict[str, Any] = {}
    for obj in snap["objects"]:
        objects[f"{obj['object_type_id']}/{obj['object_id']}"] = {
            "attributes": {k: _profile_value(v) for k, v in obj["attributes"].items()},
            "relationships": {
                names.get(r["cio_id"], r["cio_id"]): _profile_value(r["attributes"])
                for r in obj["relationships"]
            },
        }
    return {
        "people": people,
        "anonymous_activity": {
            anon: [_activity(a) for a in entries] for anon, entries in snap["anonymous"].items()
        },
        "activity_without_anonymous_id": [_activity(a) for a in snap["invites"]],
        "objects": objects,
        # The secondary person is gone after a merge; the primary (and its merged data) is what
        # remains, so a merge is recorded by who absorbed it.
        "merges": sorted(names.get(m["primary"], "<deleted>") for m in snap["merges"]),
        "suppressed": sorted(
            [kind, value]
            for kind, value in snap["suppressed"]
            if not (kind == "cio_id" and _GENERATED_CIO.match(value))
        ),
        "delivery_metrics": {
            key: [{"name": e["name"], "attributes": e["attributes"]} for e in entries]
            for key, entries in snap["deliveries"].items()
        },
    }


def dropped(emulator: CustomerIOEmulator) -> list[str]:
    """Calls the workspace accepted but did not apply (for diagnostics only)."""
    return [f"{d.reason}: {d.operation} {d.detail}" for d in emulator.state.dropped]


def differences(turnout: Any, peer: Any, path: str = "") -> list[str]:
    """Where two canonical views differ; UNSET on either side matches anything."""
    if turnout == UNSET or peer == UNSET:
        return []
    if isinstance(turnout, dict) and isinstance(peer, dict):
        found: list[str] = []
        for key in sorted(set(turnout) | set(peer), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in turnout:
                found.append(f"{where}: only the peer has {_short(peer[key])}")
            elif key not in peer:
                found.append(f"{where}: only Turnout has {_short(turnout[key])}")
            else:
                found.extend(differences(turnout[key], peer[key], where))
        return found
    if isinstance(turnout, list) and isinstance(peer, list):
        if len(turnout) != len(peer):
            return [f"{path}: Turnout {_short(turnout)} vs peer {_short(peer)}"]
        found = []
        for index, (mine, theirs) in enumerate(zip(turnout, peer, strict=True)):
            found.extend(differences(mine, theirs, f"{path}[{index}]"))
        return found
    if turnout != peer:
        return [f"{path}: Turnout {_short(turnout)} vs peer {_short(peer)}"]
    return []


def _short(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def is_empty(view: dict[str, Any]) -> bool:
    return not any(view.values())
