"""Request bodies of the management API. Their constraints are the API's contract (they appear in
the OpenAPI description), so bounds here mirror what the store and the log can take."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from turnout.config import RATE_LIMIT_MAX, RATE_LIMIT_MIN_EXCLUSIVE
from turnout.destinations import registry
from turnout.manage.names import NAME_PATTERN, WRITE_KEY_PATTERN

Name = Annotated[str, Field(pattern=NAME_PATTERN, examples=["web"])]
WriteKey = Annotated[str, Field(pattern=WRITE_KEY_PATTERN)]
# Unix seconds between 1970 and 5138: wide enough for any date, finite for SQLite and the log.
UnixTime = Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)]
RateLimit = Annotated[
    float, Field(gt=RATE_LIMIT_MIN_EXCLUSIVE, le=RATE_LIMIT_MAX, allow_inf_nan=False)
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceCreate(_Body):
    name: Name
    write_key: WriteKey | None = Field(default=None, description="Generated when omitted")


class SourceRename(_Body):
    name: Name = Field(description="The new name; connections follow the rename")


class SourceRotate(_Body):
    write_key: WriteKey | None = Field(
        default=None, description="The new key; generated when omitted. The old key stops working."
    )


class ConnectionCreate(_Body):
    name: Name = Field(description="Unique among connections")
    destination: str = Field(
        default=registry.DEFAULT, max_length=64, description="A name from GET /destinations"
    )
    sources: list[Name] = Field(default_factory=list, max_length=1000)
    settings: dict[str, Any] = Field(
        description="The destination's settings (see GET /destinations); secrets are encrypted"
    )
    enabled: bool = True
    rate_limit: RateLimit | None = Field(
        default=None, description="Requests per second; the destination's default when null"
    )
    deliver_history: bool = Field(
        default=False,
        description="Also deliver the calls the log still holds; otherwise only new calls",
    )


class ConnectionUpdate(_Body):
    settings: dict[str, Any] | None = Field(
        default=None,
        description="Replaces the settings; a secret left empty or sent back masked is kept,"
        " unless an address setting (e.g. track_url) changes: then it must be sent again",
    )
    sources: list[Name] | None = Field(default=None, max_length=1000)
    enabled: bool | None = None
    rate_limit: RateLimit | None = Field(
        default=None, description="Requests per second; send null to use the default"
    )


class CredentialsCheck(_Body):
    destination: str = Field(
        default=registry.DEFAULT, max_length=64, description="A name from GET /destinations"
    )
    settings: dict[str, Any]
    stored_from: Name | None = Field(
        default=None,
        description="A saved connection whose secrets fill in empty ones, provided its address"
        " settings (e.g. track_url) are the same",
    )


class Redeliver(_Body):
    since: UnixTime = Field(description="Unix seconds: everything received from then on is resent")


class ReplayFilter(_Body):
    connection: Name
    reason: str | None = Field(default=None, max_length=500, description="Substring of the reason")
    since: UnixTime | None = None
    until: UnixTime | None = None
    message_id: str | None = Field(default=None, max_length=500)


class PrivacyRequestCreate(_Body):
    """A privacy request (the route checks it itself, to answer 400 naming the field)."""

    action: Literal["suppress", "unsuppress", "delete", "suppress_and_delete"]
    user_ids: list[str] = Field(default_factory=list, max_length=5000)
    anonymous_ids: list[str] = Field(default_factory=list, max_length=5000)


class PrivacyStep(BaseModel):
    name: str = Field(description="suppress, unsuppress, log or store")
    status: Literal["pending", "done", "failed"]
    count: int = Field(description="Ids listed, or calls and records removed")
    detail: str
    at: float


class PrivacyConnection(BaseModel):
    name: str
    lane: Literal["done"] = Field(description="The connection's lane withholds their calls")
    destination: Literal["pending", "retrying", "done", "failed", "not_supported"] = Field(
        description="Whether the destination itself was told to delete, suppress or unsuppress"
        " the people: pending (queued behind their calls), retrying, done, failed (detail says"
        " why), not_supported (the destination has no such notion)"
    )
    count: int = Field(description="People the destination has confirmed")
    detail: str
    at: float


class PrivacyRequestView(BaseModel):
    id: str
    action: str
    status: Literal["pending", "done", "failed"]
    requested_by: Literal["api", "cli", "dashboard"]
    created_at: float
    finished_at: float | None
    user_ids: int = Field(description="How many userIds the request named")
    anonymous_ids: int
    ids_stored_as: Literal["sealed", "hashed"]
    log_head: int = Field(description="The log's newest offset when the request was accepted")
    steps: list[PrivacyStep]
    connections: list[PrivacyConnection]
