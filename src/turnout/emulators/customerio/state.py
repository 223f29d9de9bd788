"""The read model: what the workspace looks like after Customer.io has processed the calls.

Every operation, from v1 or v2, is applied here by one ``apply`` dispatch, so the result does not
depend on the API version. Lookups go through dict indexes (id, lowercased email, cio_id, object
key), so applying a call costs the same however many people exist. One lock guards mutations and
reads because the server thread applies while a test thread inspects.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from typing import Any

from . import operations as ops
from .config import EmulatorConfig
from .identifiers import Ident, classify
from .model import Activity, CustomObject, Device, Dropped, MergeRecord, ObjectKey, Person

_SUBSCRIPTION_PREFIX = "cio_subscription_preferences."
_DROPPED_KEPT = 1000


class WorkspaceState:
    """People, anonymous activity, objects, merges and suppressions of one emulated workspace."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self._clear()

    def _clear(self) -> None:
        self._by_cio: dict[str, Person] = {}
        self._by_id: dict[str, Person] = {}
        self._by_email: dict[str, Person] = {}
        self._anonymous: dict[str, list[Activity]] = defaultdict(list)
        # anonymous_id -> (person cio_id, time of the identify that claimed it)
        self._claims: dict[str, tuple[str, float]] = {}
        self._dedupe: set[str] = set()
        self._dedupe_order: deque[tuple[float, str]] = deque()  # only used with a dedupe window
        self._objects: dict[ObjectKey, CustomObject] = {}
        self._objects_by_cio: dict[str, CustomObject] = {}
        # suppressed identifier key -> every key suppressed with it (unsuppress frees them together)
        self._suppressed: dict[tuple[str, str], frozenset[tuple[str, str]]] = {}
        self.merges: list[MergeRecord] = []
        self.invites: list[Activity] = []  # anonymous events without an anonymous_id (ref §4.4)
        self.deliveries: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.delivery_recipients: dict[str, str] = {}  # delivery id -> person cio_id (tests set it)
        self.unsubscribed_deliveries: dict[str, float] = {}
        self.dropped: deque[Dropped] = deque(maxlen=_DROPPED_KEPT)
        self.counters: Counter[str] = Counter()
        self._next_cio = 0x3000000
        self._next_object = 0x1000000

    def reset(self) -> None:
        with self.lock:
            self._clear()

    # ---- reading ---------------------------------------------------------------------------

    def person(self, identifier: str | Ident) -> Person | None:
        """Find a person by id, email or ``cio_`` id (classified by shape, like a v1 path)."""
        who = classify(identifier) if isinstance(identifier, str) else identifier
        with self.lock:
            found = self._lookup(who)
            if found is None and isinstance(identifier, str) and who.kind != "id":
                found = self._by_id.get(identifier)  # an id that merely looks like an email
            return found

    @property
    def people(self) -> list[Person]:
        with self.lock:
            return list(self._by_cio.values())

    def anonymous_activity(self, anonymous_id: str) -> list[Activity]:
        """Anonymous events of `anonymous_id` not (yet) merged into a person."""
        with self.lock:
            return list(self._anonymous.get(anonymous_id, ()))

    @property
    def objects(self) -> dict[ObjectKey, CustomObject]:
        with self.lock:
            return dict(self._objects)

    def object(self, object_type_id: str, object_id: str) -> CustomObject | None:
        with self.lock:
            return self._objects.get((str(object_type_id), str(object_id)))

    @property
    def suppressed(self) -> set[tuple[str, str]]:
        """Suppressed identifiers as (kind, value) pairs, e.g. ``("id", "user-1")``."""
        with self.lock:
            return set(self._suppressed)

    def is_suppressed(self, identifier: str | Ident) -> bool:
        who = classify(identifier) if isinstance(identifier, str) else identifier
        return who.key() in self._suppressed

    def register_delivery(self, delivery_id: str, identifier: str) -> None:
        """Tell the emulator who received a delivery, so ``/unsubscribe/{id}`` can find them."""
        with self.lock:
            person = self.person(identifier)
            if person is not None:
                self.delivery_recipients[delivery_id] = person.cio_id

    def snapshot(self) -> dict[str, Any]:
        """The whole read model as JSON-ready data (for ``GET /_emulator/state``)."""
        with self.lock:
            return {
                "people": [p.to_dict() for p in self._by_cio.values()],
                "anonymous": {
                    k: [a.to_dict() for a in v] for k, v in self._anonymous.items() if v
                },
                "anonymous_claims": {
                    k: {"cio_id": c, "at": t} for k, (c, t) in self._claims.items()
                },
                "invites": [a.to_dict() for a in self.invites],
                "objects": [o.to_dict() for o in self._objects.values()],
                "merges": [{"primary": m.primary, "secondary": m.secondary, "at": m.at}
                           for m in self.merges],
                "suppressed": sorted([k, v] for k, v in self._suppressed),
                "deliveries": dict(self.deliveries),
                "unsubscribed_deliveries": dict(self.unsubscribed_deliveries),
                "dropped": [{"reason": d.reason, "operation": d.operation, "detail": d.detail,
                             "at": d.at} for d in self.dropped],
                "counters": dict(self.counters),
            }

    # ---- applying --------------------------------------------------------------------------

    def apply(self, op: ops.Operation, now: float | None = None) -> None:
        """Apply one accepted operation, as Customer.io's asynchronous processing would."""
        at = time.time() if now is None else now
        handler = self._handlers[type(op)]
        with self.lock:
            self.counters[type(op).__name__] += 1
            handler(self, op, at)

    def _drop(self, reason: str, op: ops.Operation, detail: str, at: float) -> None:
        self.counters[f"dropped:{reason}"] += 1
        self.dropped.append(Dropped(reason, type(op).__name__, detail, at))

    def _lookup(self, who: Ident) -> Person | None:
        if who.kind == "id":
            return self._by_id.get(who.value)
        if who.kind == "email":
            return self._by_email.get(who.value.lower())
        return self._by_cio.get(who.value)

    def _blocked(self, *idents: Ident | None) -> bool:
        return bool(self._suppressed) and any(
            i is not None and i.key() in self._suppressed for i in idents
        )

    def _create(self, who: Ident, at: float, ts: float | None = None) -> Person:
        """A new person named by `who`. Default attributes carry the update time of the call
        (`ts`) so the call's own attributes, e.g. an explicit ``created_at``, still apply."""
        stamp = at if ts is None else ts
        self._next_cio += 1
        person = Person(cio_id=f"{self._next_cio:08x}", id=None, email=None, created_at=at)
        if self.config.activity_limit is not None:
            person.activity = deque(maxlen=self.config.activity_limit)
        self._by_cio[person.cio_id] = person
        if who.kind == "id":
            self._set_id(person, who.value)
        elif who.kind == "email":
            self._set_email(person, who.value)
            person.attributes["email"] = who.value
            person.attribute_times["email"] = stamp
        person.attributes["created_at"] = int(at)
        person.attribute_times["created_at"] = stamp
        self.counters["people_created"] += 1
        return person

    def _set_id(self, person: Person, value: str | None) -> None:
        if person.id is not None:
            self._by_id.pop(person.id, None)
        person.id = value
        if value is not None:
            self._by_id[value] = person

    def _set_email(self, person: Person, value: str | None) -> None:
        if person.email is not None:
            self._by_email.pop(person.email.lower(), None)
        person.email = value
        if value is not None:
            self._by_email[value.lower()] = person

    def _remove(self, person: Person) -> None:
        self._by_cio.pop(person.cio_id, None)
        self._set_id(person, None)
        self._set_email(person, None)
        for key in person.relationships:
            obj = self._objects.get(key)
            if obj is not None:
                obj.relationships.pop(person.cio_id, None)

    def _person_for_activity(self, who: Ident, op: ops.Operation, at: float) -> Person | None:
        """The person an event/device/relationship call is for, creating them if configured."""
        if self._blocked(who):
            self._drop("suppressed", op, str(who), at)
            return None
        person = self._lookup(who)
        if person is not None:
            return person
        if who.kind == "cio_id":
            self._drop("unknown_cio_id", op, str(who), at)
            return None
        if self.config.unknown_person_events == "drop":
            self._drop("unknown_person", op, str(who), at)
            return None
        return self._create(who, at)

    def _set_attributes(
        self, target: Person | CustomObject, attributes: dict[str, Any], ts: float
    ) -> set[str]:
        """Merge attributes into `target` unless a newer update already set them; ``null``
        removes. Returns the names that were applied."""
        applied: set[str] = set()
        values, times = target.attributes, target.attribute_times
        for name, value in attributes.items():
            previous = times.get(name)
            if previous is not None and ts < previous:
                continue
            times[name] = ts
            applied.add(name)
            if name.startswith(_SUBSCRIPTION_PREFIX):
                _set_path(values, name.split("."), value)
            elif value is None:
                values.pop(name, None)
            else:
                values[name] = value
        return applied

    def _identify(self, op: ops.Identify, at: float) -> None:
        attrs = dict(op.attributes)
        body_id = attrs.pop("id", None)
        body_id = None if body_id is None else str(body_id)
        body_email = attrs.get("email")
        email_ident = Ident("email", body_email) if isinstance(body_email, str) else None
        id_ident = Ident("id", body_id) if body_id is not None else None
        if self._blocked(op.who, email_ident, id_ident):
            self._drop("suppressed", op, str(op.who), at)
            return
        person = self._lookup(op.who)
        if person is None and op.who.kind == "cio_id":
            self._drop("unknown_cio_id", op, str(op.who), at)
            return
        if person is None:
            # Path unknown: a body identifier that belongs to someone picks that person (ref §4.2).
            owners = {p.cio_id: p for p in (
                self._by_id.get(body_id) if body_id is not None and op.who.kind != "id" else None,
                self._by_email.get(body_email.lower())
                if isinstance(body_email, str) and op.who.kind != "email" else None,
            ) if p is not None}
            if len(owners) > 1:
                self._drop("attribute_update_failure", op,
                           "identifiers belong to different people", at)
                return
            if owners:
                person = next(iter(owners.values()))
                current = person.id if op.who.kind == "id" else person.email
                if current is not None:
                    self._drop("attribute_update_failure", op,
                               f"{op.who.kind} of the matched person is already set", at)
                    return
                if op.who.kind == "id":
                    self._set_id(person, op.who.value)
                else:
                    self._set_email(person, op.who.value)
        ts = float(op.timestamp) if op.timestamp is not None else at
        if person is None:
            if op.update_only:
                self._drop("update_only_unknown", op, str(op.who), at)
                return
            person = self._create(op.who, at, ts)

        # Identifier changes carried in the body.
        if body_id is not None and body_id != person.id:
            other = self._by_id.get(body_id)
            if other is not None and other is not person:
                self._drop("attribute_update_failure", op,
                           f"id {body_id} belongs to someone else", at)
                return
            if person.id is not None and op.who.kind != "cio_id":
                self._drop("attribute_update_failure", op, "id can only change via cio_id", at)
                return
            self._set_id(person, body_id)
        if "email" in attrs and (body_email is None or isinstance(body_email, str)):
            changes = body_email is None or person.email is None or (
                body_email.lower() != person.email.lower())
            if changes:
                other = self._by_email.get(body_email.lower()) if body_email else None
                if other is not None and other is not person:
                    self._drop("attribute_update_failure", op,
                               f"email {body_email} belongs to someone else", at)
                    return
                allowed = (person.email is None or op.who.kind != "id"
                           or self.config.allow_email_update_by_id)
                if not allowed:
                    self._drop("attribute_update_failure", op,
                               "email can only change via cio_id", at)
                    return
                previous = person.attribute_times.get("email")
                if previous is None or ts >= previous:
                    self._set_email(person, body_email)

        self._set_attributes(person, attrs, ts)
        if op.relationships:
            self._relate_person(person, op.relationships, op.relationship_action, at)
        if op.anonymous_id is not None:
            self._claim(person, op.anonymous_id, at)

    def _claim(self, person: Person, anonymous_id: str, at: float) -> None:
        """Attach an anonymous id's activity to `person`; later events follow for a window."""
        claim = self._claims.get(anonymous_id)
        if claim is not None and claim[0] != person.cio_id and claim[0] in self._by_cio:
            self.counters["anonymous_id_reused"] += 1  # single-use: the first person keeps it
            return
        self._claims[anonymous_id] = (person.cio_id, at)
        if anonymous_id not in person.anonymous_ids:
            person.anonymous_ids.append(anonymous_id)
        pending = self._anonymous.pop(anonymous_id, None)
        if pending:
            person.activity.extend(pending)
            self.counters["anonymous_merged"] += len(pending)

    def _track(self, op: ops.Track, at: float) -> None:
        if op.dedupe_id is not None and self._seen(op.dedupe_id, at):
            self.counters["duplicates"] += 1
            return
        activity = Activity(
            type=op.type, name=op.name, data=op.data,
            timestamp=float(op.timestamp) if op.timestamp is not None else at,
            received_at=at, id=op.dedupe_id, anonymous_id=op.anonymous_id,
        )
        if op.who is None:
            self._track_anonymous(op, activity, at)
        else:
            person = self._person_for_activity(op.who, op, at)
            if person is None:
                return
            person.activity.append(activity)
        self.counters[f"activity:{op.type}"] += 1
        if op.dedupe_id is not None:
            self._remember(op.dedupe_id, at)

    def _track_anonymous(self, op: ops.Track, activity: Activity, at: float) -> None:
        anonymous_id = op.anonymous_id
        if anonymous_id is None:
            self.invites.append(activity)
            return
        claim = self._claims.get(anonymous_id)
        if claim is not None and at - claim[1] <= self.config.anonymous_merge_window:
            person = self._by_cio.get(claim[0])
            if person is not None:
                person.activity.append(activity)
                self.counters["anonymous_merged"] += 1
                return
        self._anonymous[anonymous_id].append(activity)

    def _seen(self, dedupe_id: str, at: float) -> bool:
        """Whether an event id was already processed within the dedupe window. Ids are queued in
        arrival order, so forgetting expired ones only ever looks at the oldest."""
        if self.config.dedupe_window is not None:
            horizon = at - self.config.dedupe_window
            order = self._dedupe_order
            while order and order[0][0] < horizon:
                self._dedupe.discard(order.popleft()[1])
        return dedupe_id in self._dedupe

    def _remember(self, dedupe_id: str, at: float) -> None:
        self._dedupe.add(dedupe_id)
        if self.config.dedupe_window is not None:
            self._dedupe_order.append((at, dedupe_id))

    def _delete(self, op: ops.DeletePerson, at: float) -> None:
        person = self._lookup(op.who)
        if person is None:
            self.counters["delete_unknown"] += 1
            return
        self._remove(person)

    def _add_device(self, op: ops.AddDevice, at: float) -> None:
        person = self._person_for_activity(op.who, op, at)
        if person is None:
            return
        device = person.devices.get(op.token)
        last_used = op.last_used if op.last_used is not None else at
        if device is None:
            person.devices[op.token] = Device(op.token, op.platform, last_used, dict(op.attributes))
        else:
            device.platform = op.platform or device.platform
            device.last_used = last_used
            device.attributes.update(op.attributes)

    def _delete_device(self, op: ops.DeleteDevice, at: float) -> None:
        person = self._lookup(op.who)
        if person is not None and not self._blocked(op.who):
            person.devices.pop(op.token, None)

    def _suppress(self, op: ops.Suppress, at: float) -> None:
        person = self._lookup(op.who)
        keys = {op.who.key()}
        if person is not None:
            keys.add(("cio_id", person.cio_id))
            if person.id is not None:
                keys.add(("id", person.id))
            if person.email is not None:
                keys.add(("email", person.email.lower()))
            self._remove(person)
        group = frozenset(keys)
        for key in group:
            self._suppressed[key] = group

    def _unsuppress(self, op: ops.Unsuppress, at: float) -> None:
        group = self._suppressed.get(op.who.key())
        for key in group or ():
            self._suppressed.pop(key, None)

    def _merge(self, op: ops.Merge, at: float) -> None:
        primary, secondary = self._lookup(op.primary), self._lookup(op.secondary)
        if primary is None or secondary is None or primary is secondary:
            # Primary must exist (ref §4.8); without a distinct secondary there is nothing to do.
            self._drop("merge_noop", op, f"{op.primary} <- {op.secondary}", at)
            return
        for name, value in secondary.attributes.items():
            if name not in primary.attributes:
                primary.attributes[name] = value
                primary.attribute_times[name] = secondary.attribute_times.get(name, at)
        primary.activity.extend(secondary.activity)
        for token, device in secondary.devices.items():
            primary.devices.setdefault(token, device)
        self._remove(secondary)
        for key, rel in secondary.relationships.items():
            if key not in primary.relationships:
                primary.relationships[key] = rel
                obj = self._objects.get(key)
                if obj is not None:
                    obj.relationships[primary.cio_id] = rel
        for anonymous_id in secondary.anonymous_ids:
            self._claims[anonymous_id] = (primary.cio_id, self._claims[anonymous_id][1])
            if anonymous_id not in primary.anonymous_ids:
                primary.anonymous_ids.append(anonymous_id)
        # The secondary's identifiers are freed; the primary adopts those it lacks.
        if primary.id is None and secondary.id is not None:
            self._set_id(primary, secondary.id)
        if primary.email is None and secondary.email is not None:
            self._set_email(primary, secondary.email)
        self.merges.append(MergeRecord(primary.cio_id, secondary.cio_id, at))

    # ---- objects and relationships ---------------------------------------------------------

    def _object(self, ref: ops.ObjectRef, create: bool, at: float) -> CustomObject | None:
        if ref.cio_object_id is not None:
            return self._objects_by_cio.get(ref.cio_object_id)
        assert ref.object_type_id is not None
        anonymous = ref.object_id is None
        key = (ref.object_type_id,
               ref.object_id if ref.object_id is not None else f"anon:{ref.anonymous_id}")
        obj = self._objects.get(key)
        if obj is None and create:
            self._next_object += 1
            obj = CustomObject(key[0], key[1], f"{self._next_object:08x}", anonymous=anonymous)
            self._objects[key] = obj
            self._objects_by_cio[obj.cio_object_id] = obj
        return obj

    def _link(self, person: Person, obj: CustomObject, action: str,
              attrs: dict[str, Any] | None) -> None:
        if action == "delete_relationships":
            person.relationships.pop(obj.key, None)
            obj.relationships.pop(person.cio_id, None)
            return
        rel = person.relationships.setdefault(obj.key, {})
        if attrs:
            rel.update(attrs)
        obj.relationships[person.cio_id] = rel

    def _relate_person(self, person: Person, links: list[ops.Link], action: str, at: float) -> None:
        for link in links:
            assert link.obj is not None
            obj = self._object(link.obj, create=action == "add_relationships", at=at)
            if obj is not None:
                self._link(person, obj, action, link.attributes)

    def _person_relationships(self, op: ops.PersonRelationships, at: float) -> None:
        person = (self._person_for_activity(op.who, op, at) if op.action == "add_relationships"
                  else self._lookup(op.who))
        if person is not None:
            self._relate_person(person, op.links, op.action, at)

    def _relate_object(self, obj: CustomObject, links: list[ops.Link], action: str,
                       at: float) -> None:
        for link in links:
            assert link.person is not None
            person = (self._person_for_activity(link.person, ops.ObjectRelationships(
                obj=ops.ObjectRef(cio_object_id=obj.cio_object_id), action="add_relationships",
                links=[link]), at) if action == "add_relationships" else self._lookup(link.person))
            if person is not None:
                self._link(person, obj, action, link.attributes)

    def _identify_object(self, op: ops.IdentifyObject, at: float) -> None:
        obj = self._object(op.obj, create=True, at=at)
        if obj is None:
            self._drop("unknown_cio_object_id", op, str(op.obj.cio_object_id), at)
            return
        ts = float(op.timestamp) if op.timestamp is not None else at
        self._set_attributes(obj, op.attributes, ts)
        if op.links:
            self._relate_object(obj, op.links, op.relationship_action, at)

    def _delete_object(self, op: ops.DeleteObject, at: float) -> None:
        obj = self._object(op.obj, create=False, at=at)
        if obj is None:
            return
        del self._objects[obj.key]
        del self._objects_by_cio[obj.cio_object_id]
        for cio_id in obj.relationships:
            person = self._by_cio.get(cio_id)
            if person is not None:
                person.relationships.pop(obj.key, None)

    def _object_relationships(self, op: ops.ObjectRelationships, at: float) -> None:
        obj = self._object(op.obj, create=op.action == "add_relationships", at=at)
        if obj is not None:
            self._relate_object(obj, op.links, op.action, at)

    # ---- deliveries ------------------------------------------------------------------------

    def _delivery_event(self, op: ops.DeliveryEvent, at: float) -> None:
        self.deliveries[op.delivery_id].append({
            "name": op.name, "timestamp": op.timestamp if op.timestamp is not None else at,
            "attributes": op.attributes, "received_at": at,
        })

    def _unsubscribe(self, op: ops.Unsubscribe, at: float) -> None:
        self.unsubscribed_deliveries[op.delivery_id] = at
        person = self._by_cio.get(self.delivery_recipients.get(op.delivery_id, ""))
        if person is not None:
            self._set_attributes(person, {"unsubscribed": True}, at)

    _handlers: dict[type, Callable[[WorkspaceState, Any, float], None]] = {
        ops.Identify: _identify,
        ops.DeletePerson: _delete,
        ops.Track: _track,
        ops.AddDevice: _add_device,
        ops.DeleteDevice: _delete_device,
        ops.Suppress: _suppress,
        ops.Unsuppress: _unsuppress,
        ops.Merge: _merge,
        ops.PersonRelationships: _person_relationships,
        ops.IdentifyObject: _identify_object,
        ops.DeleteObject: _delete_object,
        ops.ObjectRelationships: _object_relationships,
        ops.DeliveryEvent: _delivery_event,
        ops.Unsubscribe: _unsubscribe,
    }


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    """Dot-notation update of a nested attribute, e.g. ``cio_subscription_preferences.topics.x``."""
    for part in path[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    if value is None:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
