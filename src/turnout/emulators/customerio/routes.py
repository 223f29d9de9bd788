"""Which Track API endpoint a request is for, read from the raw path segments.

Routing happens on segments split before percent-decoding (see
:func:`~.identifiers.path_segments`): a router working on the decoded path would read
``/customers/a%2Fb`` as three segments and answer 404 for a legitimate identifier.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import operations as ops
from . import v1
from .responses import Reply

# A handler gets the path segments and the parsed JSON body and returns an operation or a reply.
V1Handler = Callable[[list[str], Any], ops.Operation | Reply]


class Route:
    """A matched endpoint: its template (for the record), its handler, whether it needs auth."""

    __slots__ = ("auth", "endpoint", "handler", "kind")

    def __init__(self, endpoint: str, kind: str, handler: V1Handler | None = None,
                 auth: bool = True) -> None:
        self.endpoint = endpoint
        self.kind = kind  # "v1", "v2_entity", "v2_batch", "region", "auth"
        self.handler = handler
        self.auth = auth


def _r(endpoint: str, handler: V1Handler) -> Route:
    return Route(endpoint, "v1", handler)


_CUSTOMER = {
    "PUT": _r("PUT /api/v1/customers/{identifier}", lambda s, b: v1.identify(s[3], b)),
    "DELETE": _r("DELETE /api/v1/customers/{identifier}", lambda s, b: v1.delete(s[3], b)),
}
_CUSTOMER_SUB = {
    ("POST", "events"): _r("POST /api/v1/customers/{identifier}/events",
                           lambda s, b: v1.track(s[3], b)),
    ("PUT", "devices"): _r("PUT /api/v1/customers/{identifier}/devices",
                           lambda s, b: v1.add_device(s[3], b)),
    ("POST", "suppress"): _r("POST /api/v1/customers/{identifier}/suppress",
                             lambda s, b: v1.suppress(s[3], b)),
    ("POST", "unsuppress"): _r("POST /api/v1/customers/{identifier}/unsuppress",
                               lambda s, b: v1.unsuppress(s[3], b)),
}
_DELETE_DEVICE = _r("DELETE /api/v1/customers/{identifier}/devices/{device_id}",
                    lambda s, b: v1.delete_device(s[3], s[5], b))
_FIXED = {
    ("POST", "api/v1/events"): _r("POST /api/v1/events", lambda s, b: v1.track_anonymous(b)),
    ("POST", "api/v1/merge_customers"): _r("POST /api/v1/merge_customers",
                                           lambda s, b: v1.merge(b)),
    ("GET", "api/v1/accounts/region"): Route("GET /api/v1/accounts/region", "region"),
    ("GET", "auth"): Route("GET /auth", "auth"),
    ("POST", "api/v2/entity"): Route("POST /api/v2/entity", "v2_entity"),
    ("POST", "api/v2/batch"): Route("POST /api/v2/batch", "v2_batch"),
}
_UNSUBSCRIBE = Route("POST /unsubscribe/{delivery_id}", "v1",
                     lambda s, b: v1.unsubscribe(s[1], b), auth=False)


def match(method: str, segments: list[str]) -> Route | None:
    """The route for `method` and decoded `segments`, or None (answered 404)."""
    n = len(segments)
    if n >= 4 and segments[0] == "api" and segments[1] == "v1" and segments[2] == "customers":
        if not segments[3]:
            return None
        if n == 4:
            return _CUSTOMER.get(method)
        if n == 5:
            return _CUSTOMER_SUB.get((method, segments[4]))
        if n == 6 and method == "DELETE" and segments[4] == "devices" and segments[5]:
            return _DELETE_DEVICE
        return None
    if n == 2 and segments[0] == "unsubscribe" and method == "POST":
        return _UNSUBSCRIBE
    return _FIXED.get((method, "/".join(segments)))
