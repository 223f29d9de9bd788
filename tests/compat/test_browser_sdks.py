"""analytics.js in a real browser, configured with nothing but Turnout's settings URL.

The page and the SDK's own bundle come from a local web server on another origin than Turnout
(as a shop's site would). The visitor views a page before logging in, logs in (identify), then
acts (track): the page view must end up on the person in Customer.io (anonymousId merge), and the
browser must not have asked any other host for anything: no vendor CDN, no metrics, no code.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from support import WRITE_KEY, TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator

pytestmark = [pytest.mark.compat, pytest.mark.browser]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
PAGE = """<!doctype html>
<html><head><title>Shop</title><script src="/sdk/index.js"></script></head>
<body><h1>Pricing</h1>
<script>
  window.visit = async (cdnURL, writeKey, userId) => {
    const analytics = AnalyticsNext.AnalyticsBrowser.load({ writeKey, cdnURL })
    await analytics.page('Pricing', { plan: 'pro' })
    await analytics.identify(userId, { email: userId + '@example.com', plan: 'pro' })
    await analytics.track('Signed Up', { trial: true })
    const [instance] = await analytics
    return instance.user().anonymousId()
  }
</script></body></html>
"""

SDKS = {
    # name: (npm package folder, cdnURL suffix on Turnout)
    "analytics-next": ("@segment/analytics-next/dist/umd", ""),
    "cdp-analytics-browser": ("@customerio/cdp-analytics-browser/dist/umd", "/v1/customerio"),
}


class _Site(SimpleHTTPRequestHandler):
    """`/` is the shop's page; `/sdk/...` the SDK's published UMD bundle, from node_modules."""

    bundle: Path

    def translate_path(self, path: str) -> str:
        if path.startswith("/sdk/"):
            return str(self.bundle / path.removeprefix("/sdk/").split("?")[0])
        return super().translate_path(path)

    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def site(node_sdks: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    package, _ = SDKS[request.param]
    handler = type("Site", (_Site,), {"bundle": node_sdks / "node_modules" / package})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(node_sdks)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("site", list(SDKS), indirect=True)
def test_browser_sdk_page_identify_track_reach_the_person_and_nothing_else_is_fetched(
    browser: Any,
    site: str,
    turnout: TurnoutProcess,
    emulator: CustomerIOEmulator,
    request: pytest.FixtureRequest,
) -> None:
    from playwright.sync_api import Route

    sdk = request.node.callspec.params["site"]
    user = f"browser-{sdk}"
    requested: list[str] = []

    def only_local(route: Route) -> None:
        url = route.request.url
        requested.append(f"{route.request.method} {url}")
        if urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            route.abort()  # recorded above; never let the test reach the internet

    context = browser.new_context()  # a fresh profile: no cookies or storage from other tests
    try:
        page = context.new_page()
        page.route("**/*", only_local)
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.goto(site + "/")
        anonymous_id = page.evaluate(
            "([cdn, key, user]) => window.visit(cdn, key, user)",
            [turnout.url + SDKS[sdk][1], WRITE_KEY, user],
        )
        person = wait_until(
            lambda: (p := emulator.state.person(user)) and len(p.activity) >= 2 and p,
            what=f"{user} with the page view and the event",
        )
        page.wait_for_timeout(500)  # anything sent late (metrics, retries) is seen too
    finally:
        context.close()

    assert person.email == f"{user}@example.com"
    assert anonymous_id in person.anonymous_ids
    assert [(a.type, a.name) for a in person.activity] == [
        ("page", "Pricing"),
        ("event", "Signed Up"),
    ]
    elsewhere = [r for r in requested if urlsplit(r.split(" ", 1)[1]).hostname not in LOCAL_HOSTS]
    assert elsewhere == [], f"the browser asked other hosts: {elsewhere}\nconsole: {console}"
    turnout_calls = [r for r in requested if r.split(" ", 1)[1].startswith(turnout.url)]
    assert any("/settings" in r for r in turnout_calls), requested
