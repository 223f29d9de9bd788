"""The settings each browser SDK fetches: pointing it back here, and making it load nothing else."""

from __future__ import annotations

import pytest
from ingest_harness import WRITE_KEY, tracking


def test_analytics_next_settings_point_at_this_host_and_carry_only_its_own_key() -> None:
    with tracking() as api:
        response = api.client.get(f"/v1/projects/{WRITE_KEY}/settings")
        assert response.status_code == 200
        settings = response.json()
        # More than one integration key makes analytics-next fetch device-mode code from its CDN.
        assert list(settings["integrations"]) == ["Segment.io"]
        segment = settings["integrations"]["Segment.io"]
        assert (segment["apiKey"], segment["apiHost"], segment["protocol"]) == (
            WRITE_KEY,
            "turnout.test/v1",
            "http",
        )
        assert settings["metrics"]["sampleRate"] == 0
        assert settings["remotePlugins"] == [] and settings["enabledMiddleware"] == {}
        assert settings["legacyVideoPluginsEnabled"] is False


def test_customerio_fork_reads_its_own_key_at_its_own_path() -> None:
    with tracking(public_url="https://events.example.com/") as api:
        settings = api.client.get(f"/v1/customerio/v1/projects/{WRITE_KEY}/settings").json()
        assert list(settings["integrations"]) == ["Customer.io Data Pipelines"]
        cio = settings["integrations"]["Customer.io Data Pipelines"]
        assert (cio["apiHost"], cio["protocol"]) == ("events.example.com/v1", "https")


def test_settings_for_an_unknown_write_key_are_404_with_code() -> None:
    with tracking() as api:
        response = api.client.get("/v1/projects/wk_unknown/settings")
        assert (response.status_code, response.json()["code"]) == (404, "unknown_write_key")


def test_openapi_description_lists_every_route() -> None:
    with tracking() as api:
        paths = api.client.get("/v1/openapi.json").json()["paths"]
        for path in ["identify", "track", "page", "screen", "group", "alias", "batch"]:
            assert f"/v1/{path}" in paths and f"/v1/{path[0]}" in paths
        assert "/v1/m" in paths and "/v1/projects/{writeKey}/settings" in paths


def test_a_document_built_from_the_host_header_is_never_kept_by_a_shared_cache() -> None:
    """`Host: evil.example` must not become every visitor's `apiHost` through a CDN."""
    with tracking() as api:
        response = api.client.get(
            f"/v1/projects/{WRITE_KEY}/settings", headers={"Host": "evil.example"}
        )
        assert response.json()["integrations"]["Segment.io"]["apiHost"] == "evil.example/v1"
        assert response.headers["cache-control"] == "private, max-age=300"
        assert response.headers["vary"] == "Host"


def test_with_public_url_the_host_header_is_ignored_and_the_document_is_public() -> None:
    with tracking(public_url="https://events.example.com") as api:
        response = api.client.get(
            f"/v1/projects/{WRITE_KEY}/settings", headers={"Host": "evil.example"}
        )
        assert response.json()["integrations"]["Segment.io"]["apiHost"] == "events.example.com/v1"
        assert response.headers["cache-control"] == "public, max-age=300"


@pytest.mark.parametrize(
    "host", ['evil.example/"><script>', "evil.example/path", "a b", "[::1", "x:port"]
)
def test_a_host_header_that_is_not_a_host_is_refused(host: str) -> None:
    with tracking() as api:
        response = api.client.get(f"/v1/projects/{WRITE_KEY}/settings", headers={"Host": host})
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_host"
        assert response.json()["message"] == (
            "Host header: not a host name with an optional port;"
            " set [server] public_url to the address clients use"
        )


@pytest.mark.parametrize("host", ["localhost:8088", "10.0.0.7", "[::1]:8088", "events.example.com"])
def test_ordinary_hosts_are_answered(host: str) -> None:
    with tracking() as api:
        response = api.client.get(f"/v1/projects/{WRITE_KEY}/settings", headers={"Host": host})
        assert response.json()["integrations"]["Segment.io"]["apiHost"] == f"{host}/v1"
