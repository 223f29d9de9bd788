"""The settings of one Customer.io connection: what the user configures, validated, with defaults.

Type and range errors come from msgspec and name the field (`... - at $.batch_size`); the checks
msgspec cannot express live in `__post_init__`, and their messages start with the field name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from turnout.destinations.customerio import limits

REGION_URLS: dict[str, str] = {
    "us": "https://track.customer.io",
    "eu": "https://track-eu.customer.io",
}


class CustomerIOSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Settings of a Customer.io connection (documented in docs/destinations/customerio.md)."""

    # The workspace's Track API credentials (Customer.io: Workspace Settings > API Credentials).
    site_id: Annotated[str, msgspec.Meta(min_length=1)]
    # Secret: stored encrypted and never shown unmasked (see `CustomerIO.secret_fields`).
    api_key: Annotated[str, msgspec.Meta(min_length=1)]
    # The workspace's data centre; an EU workspace must use "eu" (a US-host request from an EU
    # account is redirected through the US, and a US account calling the EU host fails).
    region: str = "us"
    # Overrides the region's base URL (a proxy, the emulator, tests). No trailing path.
    track_url: str | None = None
    # Traits per identify operation; more are sent as consecutive updates of the same person.
    max_traits_per_identify: Annotated[
        int, msgspec.Meta(ge=1, le=limits.ATTRIBUTES_PER_CALL_MAX)
    ] = 30
    # Convert ISO-8601 strings in traits and properties to unix seconds, so that Customer.io's
    # date conditions (segments, campaign filters) work on them.
    convert_timestamps: bool = True
    # The Customer.io object type that `group` calls create/update ("1" is the first type).
    object_type_id: Annotated[str, msgspec.Meta(min_length=1)] = "1"
    # "v2": many operations per `/api/v2/batch` request (fewest requests). "v1": one request per
    # operation on the classic endpoints.
    api: Literal["v2", "v1"] = "v2"
    # Operations per v2 batch request (also how many the lane hands the client at once).
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=limits.V2_BATCH_ITEMS_MAX)] = 100
    # Seconds to wait for Customer.io to answer one request before retrying it later.
    request_timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0

    def __post_init__(self) -> None:
        region = self.region.strip().lower()
        if region not in REGION_URLS:
            raise ValueError(f'region: must be "us" or "eu", got {self.region!r}')
        self.region = region
        if self.track_url is not None:
            url = self.track_url.strip().rstrip("/")
            if not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"track_url: must start with http:// or https://, got {self.track_url!r}"
                )
            self.track_url = url

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks; the API key must not.
        return (
            f"CustomerIOSettings(site_id={self.site_id!r}, api_key='***', region={self.region!r},"
            f" track_url={self.track_url!r}, api={self.api!r})"
        )

    @property
    def base_url(self) -> str:
        """Where requests go: `track_url` when set, else the region's Track API host."""
        return self.track_url or REGION_URLS[self.region]


def parse_settings(raw: dict[str, Any]) -> CustomerIOSettings:
    """Validate a settings mapping (from TOML, the store or the API); errors name the field."""
    return msgspec.convert(raw, CustomerIOSettings)
