"""Customer.io's own client libraries talk to the emulator as they would to track.customer.io.

The Python client (``customerio`` on PyPI) always builds ``https://`` URLs, so the emulator serves
TLS here with a throwaway CA from ``trustme``. The Node client (``customerio-node``) is installed
from npm into ``tests/compat/node`` when node and npm are present.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services import import_or_skip, skip_or_fail
from support import started_url
from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, run_emulator

customerio = import_or_skip("customerio")
trustme = import_or_skip("trustme")

SITE, KEY = "site-123", "key-456"
ULID = "01HZX3KBJ5Q6Y7W8E9R0T1ABCD"
NODE_DIR = Path(__file__).resolve().parents[1] / "compat" / "node"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    return str(ca_file), str(cert_file), str(key_file)


@pytest.fixture(scope="module")
def emu(tls: tuple[str, str, str]) -> Iterator[CustomerIOEmulator]:
    _, cert, key = tls
    with run_emulator(
        EmulatorConfig(site_id=SITE, api_key=KEY), certfile=cert, keyfile=key
    ) as emulator:
        yield emulator


def _trust(client: Any, ca_file: str) -> None:
    """Trust the throwaway CA. requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a
    session's ``verify``, so the environment is ignored for this session (no proxies either)."""
    session = client.http
    session.trust_env = False
    session.verify = ca_file


@pytest.fixture
def cio(emu: CustomerIOEmulator, tls: tuple[str, str, str]) -> Iterator[Any]:
    emu.reset()
    client = customerio.CustomerIO(site_id=SITE, api_key=KEY, host="127.0.0.1", port=emu.port)
    _trust(client, tls[0])
    yield client
    client.close()


def test_python_client_full_surface(cio: Any, emu: CustomerIOEmulator) -> None:
    c = cio  # the client is untyped; keep calls readable
    c.identify(id="user/1", email="User1@Example.com", plan="pro", created_at=1700000000)
    c.track(
        customer_id="user/1",
        name="purchase",
        data={"price": 9.5},
        id=ULID,
        timestamp=1700000100,
    )
    c.track(customer_id="user/1", name="purchase", data={"price": 9.5}, id=ULID)
    c.pageview("user/1", "https://example.com/pricing", referrer="google")
    c.backfill("user/1", "signed_up", 1600000000, source="import")
    c.track_anonymous("anon-9", "viewed", {"page": "/"})
    c.identify(id="user/1", anonymous_id="anon-9")
    c.add_device("user/1", "device-token", "ios", app_version="1.2")
    c.add_device("user/1", "other-token", "android")
    c.delete_device("user/1", "other-token")
    c.identify(id="second", city="Oslo")
    c.merge_customers("email", "user1@example.com", "id", "second")
    c.identify(id="spam")
    c.suppress("spam")
    c.unsuppress("spam")
    c.identify(id="temp")
    c.delete("temp")
    c.batch(
        [
            {
                "type": "person",
                "identifiers": {"id": "batch-1"},
                "action": "identify",
                "attributes": {"plan": "basic"},
            },
            {"type": "person", "identifiers": {"id": "batch-1"}, "action": "event", "name": "b"},
        ]
    )

    person = emu.state.person("user/1")
    assert person is not None and person.email == "User1@Example.com"
    assert person.attributes["plan"] == "pro" and person.attributes["city"] == "Oslo"
    assert [(a.type, a.name) for a in person.activity] == [
        ("event", "purchase"),
        ("page", "https://example.com/pricing"),
        ("event", "signed_up"),
        ("event", "viewed"),
    ]
    assert person.activity[1].data == {"referrer": "google"}
    assert set(person.devices) == {"device-token"}
    assert person.devices["device-token"].attributes == {"app_version": "1.2"}
    assert emu.state.person("second") is None and len(emu.state.merges) == 1
    assert emu.state.person("spam") is None and not emu.state.suppressed
    assert emu.state.person("temp") is None
    batch_person = emu.state.person("batch-1")
    assert batch_person is not None and [a.name for a in batch_person.activity] == ["b"]
    # Every call was authorised and addressed one identifier segment.
    assert set(emu.requests.by_status) == {200}
    assert "/api/v1/customers/user%2F1" in {r.path for r in emu.requests}


def test_python_client_retries_5xx_and_reports_4xx(cio: Any, emu: CustomerIOEmulator) -> None:
    emu.faults.fail_next(2, status=503)
    cio.identify(id="u1")
    assert emu.state.person("u1") is not None
    assert [r.status for r in emu.requests] == [503, 503, 200]
    with pytest.raises(customerio.CustomerIOException, match="event name cannot be longer"):
        cio.track(customer_id="u1", name="x" * 101)
    # Not in the client's status_forcelist, but urllib3 retries 429 (and 503) that carry
    # Retry-After, after waiting for it; without the header a 429 is final.
    emu.requests.clear()
    emu.faults.throttle_next(1, retry_after=1)
    cio.identify(id="u2")
    assert [r.status for r in emu.requests] == [429, 200]
    emu.faults.fail_next(1, status=429)
    with pytest.raises(customerio.CustomerIOException, match="429"):
        cio.identify(id="u2")
    bad = customerio.CustomerIO(site_id=SITE, api_key="wrong", host="127.0.0.1", port=emu.port)
    _trust(bad, cio.http.verify)
    with pytest.raises(customerio.CustomerIOException, match="Unauthorized request"):
        bad.identify(id="u3")


# ---- customerio-node ----------------------------------------------------------------------

NODE_SCRIPT = r"""
const { TrackClient, RegionUS } = require('customerio-node');
const url = process.argv[2];
const cio = new TrackClient('%SITE%', '%KEY%', { region: RegionUS, url: url + '/api/v1' });
(async () => {
  await cio.identify('node/1', { email: 'node@example.com', plan: 'pro' });
  await cio.track('node/1', { name: 'purchase', data: { price: 1 }, id: '%ULID%' });
  await cio.track('node/1', { name: 'purchase', data: { price: 1 }, id: '%ULID%' });
  await cio.trackPageView('node/1', '/pricing');
  await cio.trackAnonymous('anon-n', { name: 'viewed', data: { a: 1 } });
  await cio.identify('node/1', { anonymous_id: 'anon-n' });
  await cio.addDevice('node/1', 'tok-n', 'ios', { app_version: '9' });
  await cio.deleteDevice('node/1', 'tok-gone');
  await cio.identify('node-2', { city: 'Oslo' });
  await cio.mergeCustomers('id', 'node/1', 'id', 'node-2');
  await cio.suppress('node-3');
  await cio.unsuppress('node-3');
  await cio.destroy('node-4');
  await cio.batch([{ type: 'person', identifiers: { id: 'node-b' }, action: 'identify',
                     attributes: { plan: 'basic' } }]);
  let status = null;
  try {
    await cio.track('node/1', { name: 'x'.repeat(101) });
  } catch (err) {
    status = err.statusCode;
  }
  console.log(JSON.stringify({ ok: true, rejected: status }));
})().catch((err) => { console.error(err); process.exit(1); });
"""


def _node_client_ready() -> str | None:
    """Install customerio-node from tests/compat/node/package.json; None or a skip reason."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed"
    if not (NODE_DIR / "node_modules" / "customerio-node").is_dir():
        try:
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--silent"],
                cwd=NODE_DIR,
                check=True,
                timeout=300,
                capture_output=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            return f"npm install of customerio-node failed: {exc}"
    return None


def test_node_client_full_surface(tmp_path: Path) -> None:
    reason = _node_client_ready()
    if reason is not None:
        skip_or_fail(reason)
    with run_emulator(EmulatorConfig(site_id=SITE, api_key=KEY)) as emu:
        body = NODE_SCRIPT.replace("%SITE%", SITE).replace("%KEY%", KEY).replace("%ULID%", ULID)
        script_path = tmp_path / "drive.cjs"
        script_path.write_text(body)
        result = subprocess.run(
            ["node", str(script_path), started_url(emu)],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")},
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.strip().splitlines()[-1]) == {"ok": True, "rejected": 400}

        person = emu.state.person("node/1")
        assert person is not None and person.email == "node@example.com"
        assert person.attributes["city"] == "Oslo"
        assert [(a.type, a.name) for a in person.activity] == [
            ("event", "purchase"),
            ("page", "/pricing"),
            ("event", "viewed"),
        ]
        assert person.devices["tok-n"].attributes == {"app_version": "9"}
        assert emu.state.person("node-2") is None
        assert emu.state.person("node-b") is not None
        statuses = emu.requests.by_status
        assert statuses[400] == 1 and set(statuses) == {200, 400}
