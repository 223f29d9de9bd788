"""The settings documents analytics.js and Customer.io's fork of it fetch before sending.

Each SDK reads only its own integration key (analytics-next `"Segment.io"`, Customer.io's
cdp-analytics-browser `"Customer.io Data Pipelines"`) and points its `apiHost` back here. Both
treat a document with more than one integration key as having device-mode destinations and fetch
their `ajs-destination` code chunk from the vendor's CDN before sending anything, so each SDK gets
a document with its own key alone, at its own path:

- analytics-next: `cdnURL = <turnout>` reads `/v1/projects/{writeKey}/settings`;
- cdp-analytics-browser: `cdnURL = <turnout>/v1/customerio` reads
  `/v1/customerio/v1/projects/{writeKey}/settings`.

`remotePlugins` and `enabledMiddleware` are empty and `legacyVideoPluginsEnabled` false for the
same reason (each loads code), and `metrics.sampleRate: 0` stops both reporting their own health
to their vendor (`host` points it here in case a user turns it on again).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

SEGMENT_KEY = "Segment.io"
CUSTOMERIO_KEY = "Customer.io Data Pipelines"


def analytics_settings(
    write_key: str, public_url: str, integration: str = SEGMENT_KEY
) -> dict[str, Any]:
    parts = urlsplit(public_url)
    api_host = f"{parts.netloc}{parts.path.rstrip('/')}/v1"
    return {
        "integrations": {
            integration: {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": parts.scheme or "https",
                "addBundledMetadata": True,
                "unbundledIntegrations": [],
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0, "host": api_host},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
        "consentSettings": {"allCategories": [], "hasUnmappedDestinations": False},
    }
