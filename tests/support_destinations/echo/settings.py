"""The settings of an echo connection: a file to append to, and one field of every kind."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec


class EchoSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    path: Annotated[str, msgspec.Meta(min_length=1)]  # the file each call is appended to
    token: Annotated[str, msgspec.Meta(min_length=1)]  # secret: written with each line
    labels: dict[str, str] = msgspec.field(default_factory=dict)  # a table, added to each line
    style: Literal["full", "short"] = "short"  # a choice
    uppercase: bool = False  # a boolean: the event name in capitals
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=50)] = 10  # an advanced number

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"path: must be absolute, got {self.path!r}")
