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
    config = load(path, environ={"CIO_API_KEY": "from-env"})
    assert config.connections[0].settings["api_key"] == "from-env"
    assert config.delivery.retry_window_hours == 72


def test_a_missing_secret_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CIO_API_KEY", raising=False)
    path = tmp_path / "turnout.toml"
    path.write_text(SAMPLE)
    with pytest.raises(ConfigError, match="CIO_API_KEY is not set"):
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
        ("0", "Expected `float` > 0.0"),
        ("-1", "Expected `float` > 0.0"),
        ("2e6", "Expected `float` <= 1000000.0"),
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
    assert str(raised.value) == f"configuration: {problem} - at `$.connections[0].rate_limit`"
