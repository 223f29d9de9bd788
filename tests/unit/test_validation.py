"""One wording of msgspec's validation errors, "field: what is wrong", for every door."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pytest

from turnout.config import ConfigError, load
from turnout.validation import field_message


class Inner(msgspec.Struct, forbid_unknown_fields=True):
    port: Annotated[int, msgspec.Meta(ge=1)]
    extra: dict[str, Any] | None = None


class Outer(msgspec.Struct, forbid_unknown_fields=True):
    servers: list[Inner]


def error_of(raw: Any) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as raised:
        msgspec.convert(raw, Outer)
    return raised.value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"servers": [{"port": 0}]}, "servers[0].port: expected `int` >= 1"),
        ({"servers": [{}]}, "servers[0].port: required"),
        ({"servers": [{"port": 1, "colour": "red"}]}, "servers[0].colour: unknown field"),
        ({"servers": [{"port": 1, "extra": 2}]},
         "servers[0].extra: expected an object, got a number"),
        ({}, "servers: required"),
        ([], "expected `object`, got `array`"),
    ],
)  # fmt: skip
def test_errors_name_the_field_first(raw: Any, message: str) -> None:
    assert field_message(error_of(raw)) == message


def test_a_prefix_places_the_field_and_a_name_stands_for_the_whole() -> None:
    missing = error_of({"servers": [{}]})
    assert field_message(missing, "batch[2].") == "batch[2].servers[0].port: required"
    wrong = error_of([])
    assert field_message(wrong, whole="body") == "body: expected `object`, got `array`"
    assert field_message(wrong, "batch[2].") == "batch[2]: expected `object`, got `array`"


def test_the_configuration_file_words_its_errors_the_same_way(tmp_path: Any) -> None:
    path = tmp_path / "turnout.toml"
    path.write_text('[server]\ncolour = "red"\n')
    with pytest.raises(ConfigError) as raised:
        load(path, environ={})
    assert str(raised.value) == "configuration: server.colour: unknown field"
