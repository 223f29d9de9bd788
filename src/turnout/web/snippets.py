"""Copy-paste snippets that point each SDK at this Turnout instead of Segment.

analytics.js fetches `{cdnURL}/v1/projects/{writeKey}/settings`, and that document (see
`ingest/settings.py`) sends its calls back here; the server SDKs take the host directly.
"""

from __future__ import annotations

import json


def public_url(configured: str, request_base: str) -> str:
    """The address SDKs should use: `server.public_url` when set, else how this page was
    reached (right for a laptop, wrong behind a proxy that hides it: set public_url there)."""
    return (configured or request_base).rstrip("/")


def snippets(write_key: str, url: str) -> list[tuple[str, str]]:
    """(title, code) pairs, in the order a web team usually needs them."""
    key, host = json.dumps(write_key), json.dumps(url)
    return [
        (
            "Browser (analytics.js / @segment/analytics-next)",
            "import { AnalyticsBrowser } from '@segment/analytics-next'\n\n"
            f"export const analytics = AnalyticsBrowser.load({{\n"
            f"  writeKey: {key},\n"
            f"  cdnURL: {host},  // settings from /v1/projects/<writeKey>/settings\n"
            "})\n\n"
            "analytics.track('Signed Up', { plan: 'pro' })",
        ),
        (
            "Python (segment-analytics-python)",
            "import segment.analytics as analytics\n\n"
            f"analytics.write_key = {key}\n"
            f"analytics.host = {host}\n\n"
            "analytics.track('user-1', 'Signed Up', {'plan': 'pro'})",
        ),
        (
            "Node.js (@segment/analytics-node)",
            "import { Analytics } from '@segment/analytics-node'\n\n"
            f"const analytics = new Analytics({{ writeKey: {key}, host: {host} }})\n\n"
            "analytics.track({\n"
            "  userId: 'user-1', event: 'Signed Up', properties: { plan: 'pro' },\n"
            "})",
        ),
        (
            "curl",
            f"curl -u '{write_key}:' {url}/v1/track \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            '  -d \'{"userId": "user-1", "event": "Signed Up",'
            ' "properties": {"plan": "pro"}}\'',
        ),
    ]
