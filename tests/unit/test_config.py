"""Configuration: the sample `turnout init` writes is valid, overrides and secrets resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.config import ConfigError, load
from turnout.sample_config import SAMPLE


def test_the_sample_configuration_loads_with_its_secret_from_the_environment(
    tmp_path: Path,
) -> None:
    path = tmp_path / "turnout.toml"
    path.write_text(SAMPLE)
    config = load(path, environ={"CUSTOMERIO_API_KEY": "from-env"})
    assert config.connections[0].settings["api_key"] == "from-env"
    assert config.delivery.retry_window_hours == 72


def test_a_missing_secret_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUSTOMERIO_API_KEY", raising=False)
    path = tmp_path / "turnout.toml"
    path.write_text(SAMPLE)
    with pytest.raises(ConfigError, match="CUSTOMERIO_API_KEY is not set"):
        load(path, environ={})


def test_environment_overrides_server_and_section_settings() -> None:
    config = load(None, environ={"TURNOUT_LISTEN": "0.0.0.0:9000", "TURNOUT_LOG_SYNC": "normal"})
    assert config.host_port == ("0.0.0.0", 9000)
    assert config.log.sync == "normal"


def test_an_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "turnout.toml"
    path.write_text("[delivery]\nlinger = 5\n")
    with pytest.raises(ConfigError, match="linger"):
        load(path, environ={})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "expected `float` > 0.0"),
        ("-1", "expected `float` > 0.0"),
        ("2e6", "expected `float` <= 1000000.0"),
    ],
)
def test_a_rate_limit_of_zero_negative_or_unbounded_is_refused_naming_it(
    tmp_path: Path, value: str, problem: str
) -> None:
    """Once silently 100 (zero) or 1 request/s (negative): now an error at start."""
    path = tmp_path / "turnout.toml"
    path.write_text(
        '[[sources]]\nname = "web"\nwrite_key = "wk"\n'
        '[[connections]]\nname = "cio"\ndestination = "customerio"\nsources = ["web"]\n'
        f"rate_limit = {value}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load(path, environ={})
    assert str(raised.value) == f"configuration: connections[0].rate_limit: {problem}"


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("max_header_bytes", "0", "expected `int` >= 1"),
        ("max_headers", "-5", "expected `int` >= 1"),
        ("max_url_bytes", "0", "expected `int` >= 1"),
        ("max_connections", "-1", "expected `int` >= 1"),
        ("header_timeout_s", "0", "expected `float` > 0.0"),
        ("body_timeout_s", "-1.5", "expected `float` > 0.0"),
        ("keep_alive_timeout_s", "0", "expected `float` > 0.0"),
    ],
)
def test_a_connection_limit_of_zero_or_less_is_refused_naming_it(
    tmp_path: Path, key: str, value: str, problem: str
) -> None:
    """0 would refuse every request or connection: an error at start, not a dead server."""
    path = tmp_path / "turnout.toml"
    path.write_text(f"[server]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as raised:
        load(path, environ={})
    assert str(raised.value) == f"configuration: server.{key}: {problem}"
    with pytest.raises(ConfigError) as raised:
        load(None, environ={f"TURNOUT_{key.upper()}": value})
    assert str(raised.value) == f"configuration: server.{key}: {problem}"


def test_connection_limits_have_defaults_and_take_environment_overrides() -> None:
    server = load(None, environ={}).server
    assert (
        server.max_header_bytes,
        server.max_headers,
        server.max_url_bytes,
        server.header_timeout_s,
        server.body_timeout_s,
        server.keep_alive_timeout_s,
        server.max_connections,
    ) == (16384, 100, 8192, 10.0, 30.0, 5.0, 1000)
    overridden = load(
        None, environ={"TURNOUT_MAX_CONNECTIONS": "50", "TURNOUT_BODY_TIMEOUT_S": "2.5"}
    ).server
    assert (overridden.max_connections, overridden.body_timeout_s) == (50, 2.5)


@pytest.mark.parametrize("where", ["file", "environment"])
def test_an_admin_token_under_32_characters_is_refused_naming_the_key(
    tmp_path: Path, where: str
) -> None:
    short = "x" * 31
    path = tmp_path / "turnout.toml"
    path.write_text(f'[server]\nadmin_token = "{short}"\n' if where == "file" else "")
    environ = {"TURNOUT_ADMIN_TOKEN": short} if where == "environment" else {}
    with pytest.raises(ConfigError) as refused:
        load(path, environ=environ)
    assert str(refused.value).startswith(
        "server.admin_token (TURNOUT_ADMIN_TOKEN): 31 characters, at least 32 are required"
    )
    assert short not in str(refused.value)
    assert load(None, environ={"TURNOUT_ADMIN_TOKEN": "x" * 32}).server.admin_token == "x" * 32


def test_sign_in_settings_have_defaults_and_take_environment_overrides() -> None:
    server = load(None, environ={}).server
    assert (server.metrics_auth, server.api_docs_public) == (False, False)
    assert (server.auth_failure_limit, server.auth_failure_window_s) == (10, 600.0)
    changed = load(
        None,
        environ={
            "TURNOUT_METRICS_AUTH": "true",
            "TURNOUT_API_DOCS_PUBLIC": "true",
            "TURNOUT_AUTH_FAILURE_LIMIT": "3",
            "TURNOUT_AUTH_FAILURE_WINDOW_S": "60",
        },
    ).server
    assert (changed.metrics_auth, changed.api_docs_public) == (True, True)
    assert (changed.auth_failure_limit, changed.auth_failure_window_s) == (3, 60.0)
    with pytest.raises(ConfigError, match="auth_failure_limit"):
        load(None, environ={"TURNOUT_AUTH_FAILURE_LIMIT": "0"})
