"""The tracking API described as OpenAPI 3.1, served at `/v1/openapi.json`.

Written by hand rather than derived from the routes: the routes take raw bytes (the hot path
decodes with msgspec, not a framework), so the description is where the accepted shapes, every
answer and its reason are stated for users and for schema-driven fuzzing (schemathesis).
"""

from __future__ import annotations

from typing import Any

from turnout.spec.message import CALL_TYPES

_ID = {"type": ["string", "integer", "number", "null"], "maxLength": 1000}
_TEXT = {"type": ["string", "null"]}
# An id that counts as present: null and "" count as absent.
_PRESENT = {"type": ["string", "integer", "number"], "minLength": 1, "maxLength": 1000}
_OBJECT = {"type": ["object", "null"], "additionalProperties": True}  # null: absent
_TIME = {"type": ["string", "null"], "format": "date-time", "minLength": 1}

_COMMON: dict[str, Any] = {
    "userId": {**_ID, "description": "userId or anonymousId is required"},
    "anonymousId": _ID,
    "messageId": {
        "type": ["string", "integer", "null"],
        "maxLength": 100,
        "description": "generated when missing; used to deduplicate",
    },
    "timestamp": {**_TIME, "description": "when the call happened (device clock)"},
    "originalTimestamp": _TIME,
    "sentAt": {**_TIME, "description": "when the device sent it: corrects its clock skew"},
    "context": {**_OBJECT, "description": "context.ip is filled from the request if absent"},
    "integrations": _OBJECT,
    "writeKey": {**_TEXT, "description": "instead of Basic auth"},
    "type": {**_TEXT, "description": "on a single-call route the route decides it"},
    "receivedAt": {**_TEXT, "description": "the server's: overwritten"},
    "source": {**_TEXT, "description": "the server's: overwritten"},
}
# Fields that belong to one call type are still typed on every other: a `name` sent with a
# group is decoded (and refused when it is not text) even though group ignores it.
_ANY_CALL: dict[str, Any] = {
    "event": _TEXT,
    "name": _TEXT,
    "category": _TEXT,
    "groupId": _ID,
    "previousId": _ID,
    "traits": _OBJECT,
    "properties": _OBJECT,
}

_REQUIRED = {
    "identify": [],
    "track": ["event"],
    "page": [],
    "screen": [],
    "group": ["groupId"],
    "alias": ["previousId", "userId"],
}
_IDENTIFIED = {
    "anyOf": [
        {"required": ["userId"], "properties": {"userId": _PRESENT}},
        {"required": ["anonymousId"], "properties": {"anonymousId": _PRESENT}},
    ]
}
_SPECIFIC: dict[str, dict[str, Any]] = {
    "identify": {"traits": _OBJECT},
    "track": {"event": {"type": "string", "minLength": 1}, "properties": _OBJECT},
    "page": {"name": _TEXT, "category": _TEXT, "properties": _OBJECT},
    "screen": {"name": _TEXT, "category": _TEXT, "properties": _OBJECT},
    "group": {"groupId": _PRESENT, "traits": _OBJECT},
    "alias": {"previousId": _PRESENT, "userId": _PRESENT},
}


def _call_schema(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**_COMMON, **_ANY_CALL, **_SPECIFIC[kind]},
        "required": _REQUIRED[kind],
        **_IDENTIFIED,
        "additionalProperties": True,
    }


def _valid_call() -> dict[str, Any]:
    return {
        "oneOf": [
            {
                "allOf": [
                    {"$ref": f"#/components/schemas/{kind.capitalize()}"},
                    {"properties": {"type": {"const": kind}}, "required": ["type"]},
                ]
            }
            for kind in CALL_TYPES
        ]
    }


def _batch_items() -> dict[str, Any]:
    """Items are checked one by one: invalid ones are reported in the answer's `rejected` and
    the valid ones kept. So a batch is a valid request when it *contains* one valid call (the
    rest may be anything), and it is refused only when no item is valid."""
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": 2500,
        "items": {
            "description": "A call with its `type` (see the Identify ... Alias schemas); an"
            " invalid item is listed in `rejected`, the others are kept."
        },
        "contains": _valid_call(),
    }


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _answers() -> dict[str, Any]:
    retry_after = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}
    return {
        "200": {
            "description": "committed to the log; for a batch, `rejected` lists invalid items",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Success"}}},
        },
        "400": _error("the request can never succeed: the message names the field"),
        "401": _error("write key missing or not recognised"),
        "413": _error("over the message, request or batch-length limit"),
        "415": _error("a Content-Encoding other than gzip"),
        "500": _error("an unexpected fault; nothing was committed: retry"),
        "503": {
            **_error("shedding load (log over its bound, disk full): retry"),
            "headers": retry_after,
        },
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "description": "JSON; sent as text/plain too (analytics-next, to avoid a CORS preflight)"
        " and read the same way",
        "content": {"application/json": {"schema": schema}},
    }


def tracking_openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for kind in CALL_TYPES:
        for path in (kind, kind[0]):
            paths[f"/v1/{path}"] = {
                "post": {
                    "operationId": f"{kind}_{'short' if len(path) == 1 else 'long'}",
                    "summary": f"{kind} call"
                    + (" (analytics.js short form)" if path != kind else ""),
                    "requestBody": _body({"$ref": f"#/components/schemas/{kind.capitalize()}"}),
                    "responses": _answers(),
                }
            }
    batch_schema = {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": _batch_items(),
            "context": _OBJECT,
            "integrations": _OBJECT,
            "sentAt": _TIME,
            "writeKey": _TEXT,
        },
    }
    for path in ("batch", "b"):
        paths[f"/v1/{path}"] = {
            "post": {
                "operationId": f"batch_{'short' if path == 'b' else 'long'}",
                "summary": "several calls; each item may carry its own writeKey",
                "requestBody": _body(batch_schema),
                "responses": _answers(),
            }
        }
    paths["/v1/m"] = {
        "post": {
            "operationId": "client_metrics",
            "summary": "analytics-next's own metrics: accepted and discarded",
            "security": [],
            "requestBody": {"content": {"text/plain": {"schema": {}}}},
            "responses": {"200": {"description": "discarded"}},
        }
    }
    settings_get = {
        "security": [],
        "parameters": [
            {"name": "writeKey", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "responses": {
            "200": {
                "description": "settings",
                "content": {"application/json": {"schema": _OBJECT}},
            },
            "400": {
                "description": "without `public_url`: a Host header that is not a host name"
                " (`code: invalid_host`)",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "404": {
                "description": "write key not recognised (`code` and `message`), or a path no"
                " route matches",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        },
    }
    paths["/v1/projects/{writeKey}/settings"] = {
        "get": {
            **settings_get,
            "operationId": "settings_analytics_next",
            "summary": "analytics-next settings (cdnURL = this server)",
        }
    }
    paths["/v1/customerio/v1/projects/{writeKey}/settings"] = {
        "get": {
            **settings_get,
            "operationId": "settings_customerio",
            "summary": "cdp-analytics-browser settings (cdnURL = this server + /v1/customerio)",
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Turnout tracking API",
            "version": "1",
            "description": "Segment's HTTP tracking API, as every Segment, RudderStack, MetaRouter"
            " and Customer.io SDK speaks it. Bodies may be gzip-compressed.",
        },
        "paths": paths,
        # The header is one of three places for the key (body `writeKey`, or each batch item's),
        # so it is optional here: the empty requirement says a request may carry none.
        "security": [{"writeKey": []}, {}],
        "components": {
            "securitySchemes": {
                "writeKey": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "the write key as user, empty password; or writeKey in the body",
                }
            },
            "schemas": {
                **{kind.capitalize(): _call_schema(kind) for kind in CALL_TYPES},
                "Success": {
                    "type": "object",
                    "required": ["success"],
                    "properties": {
                        "success": {"const": True},
                        "accepted": {"type": "integer"},
                        "rejected": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Reject"},
                        },
                    },
                },
                "Reject": {
                    "type": "object",
                    "required": ["index", "code", "message"],
                    "properties": {
                        "index": {"type": ["integer", "null"]},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["success", "code", "message"],
                    "properties": {
                        "success": {"const": False},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "rejected": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Reject"},
                        },
                    },
                },
            },
        },
    }
