"""The settings document analytics.js (and Customer.io's fork of it) fetch before sending.

Each SDK reads its own integration key: analytics-next `"Segment.io"`, Customer.io's
cdp-analytics-browser `"Customer.io Data Pipelines"`. Both point back at this server. Neither SDK
loads an integration as device-mode code unless it is marked as a browser component
(`type: "browser"` or `versionSettings.componentTypes`), so carrying both keys, unmarked, makes
neither fetch code from elsewhere; `remotePlugins` is empty for the same reason, and
`metrics.sampleRate: 0` stops analytics-next reporting its own metrics to its vendor.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def analytics_settings(write_key: str, public_url: str) -> dict[str, Any]:
    parts = urlsplit(public_url)
    api = {
        "apiKey": write_key,
        "apiHost": f"{parts.netloc}{parts.path.rstrip('/')}/v1",
        "protocol": parts.scheme or "https",
    }
    return {
        "integrations": {"Segment.io": dict(api), "Customer.io Data Pipelines": dict(api)},
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
