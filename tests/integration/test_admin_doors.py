"""The admin token's other doors: the management API (throttled like the sign-in form),
`/metrics` (open unless `metrics_auth`), the OpenAPI description (behind the token unless
`api_docs_public`), and the length Turnout requires of a configured token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from support import ADMIN_TOKEN, TurnoutProcess, started_url, wait_until, write_config
from turnout.emulators.customerio import CustomerIOEmulator


def _get(url: str, token: str | None = None, address: str = "127.0.0.1") -> httpx.Response:
    """As a client at `address` (uvicorn takes X-Forwarded-For from 127.0.0.1 by default)."""
    headers = {"X-Forwarded-For": address}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(url, headers=headers, timeout=10)


def test_wrong_api_tokens_are_throttled_per_address(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    config = write_config(tmp_path, started_url(emulator))
    with TurnoutProcess(config, env={"TURNOUT_AUTH_FAILURE_LIMIT": "3"}) as turnout:
        sources = turnout.url + "/api/v1/sources"
        for attempt in range(3):
            wrong = _get(sources, f"guess-{attempt}", "203.0.113.9")
            assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"
        blocked = _get(sources, "guess-3", "203.0.113.9")
        assert blocked.status_code == 429
        assert 590 <= int(blocked.headers["retry-after"]) <= 600
        body = blocked.json()
        assert body["code"] == "too_many_attempts"
        assert body["message"].startswith("too many wrong admin tokens from this address; try")
        assert _get(sources, ADMIN_TOKEN, "203.0.113.9").status_code == 429
        assert _get(sources, ADMIN_TOKEN, "198.51.100.4").status_code == 200
        # A request without a token guesses nothing: it is refused, not counted.
        for _ in range(5):
            assert _get(sources, None, "198.51.100.5").status_code == 401
        assert _get(sources, ADMIN_TOKEN, "198.51.100.5").status_code == 200

        log = wait_until(
            lambda: (text := turnout.output.read_text()).count("wrong admin token") == 3 and text,
            what="three logged failures",
        )
        assert (
            log.count("WARNING turnout.web: management API: wrong admin token from 203.0.113.9")
            == 3
        )
        assert "guess-" not in log


def test_metrics_are_open_by_default(turnout: TurnoutProcess) -> None:
    response = httpx.get(turnout.url + "/metrics", timeout=10)
    assert response.status_code == 200 and "turnout_" in response.text


def test_metrics_auth_asks_for_the_admin_token(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    config = write_config(tmp_path, started_url(emulator))
    with TurnoutProcess(config, env={"TURNOUT_METRICS_AUTH": "true"}) as turnout:
        metrics = turnout.url + "/metrics"
        for token in (None, "wrong"):
            refused = _get(metrics, token)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json() == {
                "code": "unauthorized",
                "message": "a valid admin bearer token is required",
            }
        allowed = _get(metrics, ADMIN_TOKEN)
        assert allowed.status_code == 200 and "turnout_" in allowed.text


def test_api_docs_public_opens_the_description(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    config = write_config(tmp_path, started_url(emulator))
    with TurnoutProcess(config, env={"TURNOUT_API_DOCS_PUBLIC": "true"}) as turnout:
        spec = httpx.get(turnout.url + "/api/v1/openapi.json", timeout=10)
        assert spec.status_code == 200 and "/connections" in spec.json()["paths"]
        page = httpx.get(turnout.url + "/dashboard/api-docs", timeout=10)
        assert page.status_code == 200 and 'id="swagger-ui"' in page.text
        served = httpx.get(turnout.url + "/dashboard/api-docs/openapi.json", timeout=10)
        assert served.status_code == 200 and served.json()["servers"] == [{"url": "/api/v1"}]
        # The API itself still needs the token.
        assert httpx.get(turnout.url + "/api/v1/sources", timeout=10).status_code == 401


def test_a_short_admin_token_is_refused_at_start(tmp_path: Path) -> None:
    short = "0123456789abcdefghijklmnopqrstu"  # 31 characters
    config = write_config(tmp_path, "http://127.0.0.1:9")
    config.write_text(config.read_text().replace(ADMIN_TOKEN, short))
    from_file = _serve(config, {})
    from_environment = _serve(
        write_config(tmp_path, "http://127.0.0.1:9"), {"TURNOUT_ADMIN_TOKEN": short}
    )
    for result in (from_file, from_environment):
        assert result.returncode == 2
        assert (
            "error: server.admin_token (TURNOUT_ADMIN_TOKEN): 31 characters, at least 32 are"
            " required" in result.stderr
        )
        assert short not in result.stderr + result.stdout


def _serve(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "turnout", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CIO_API_KEY": "k", **env},
    )
