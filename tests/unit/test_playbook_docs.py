"""Every playbook in docs/playbooks.md loads, and the documented examples do what the page says."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from turnout.playbooks import Playbook, PlaybookError

DOC = Path(__file__).parents[2] / "docs" / "playbooks.md"
TEXT = DOC.read_text()
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", TEXT, re.DOTALL)
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.DOTALL)


def playbooks() -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(connection settings, rules) of every TOML example; a lone `[[connections.playbook]]`
    example, or the dashboard editor's text (`[[playbook]]`), is a connection of its own."""
    found = []
    for block in TOML_BLOCKS:
        data = tomllib.loads(block)
        if "connections" not in data:  # the dashboard editor's text: one connection's playbook
            found.append((data, data.get("playbook", [])))
            continue
        connections = data["connections"]
        for connection in [connections] if isinstance(connections, dict) else connections:
            found.append((connection, connection.get("playbook", [])))
    return found


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("config")
    (directory / "functions").mkdir()
    (directory / "functions" / "orders.py").write_text(PYTHON_BLOCKS[0])
    return directory


def compiled(connection: dict[str, Any], rules: list[dict[str, Any]], base: Path) -> Playbook:
    return Playbook.compile(
        rules,
        consent=connection.get("consent", []),
        consent_missing=connection.get("consent_missing", "deliver"),
        base_dir=base,
        allow_functions=True,
    )


def test_every_documented_playbook_loads(config_dir: Path) -> None:
    examples = playbooks()
    assert len(examples) == len(TOML_BLOCKS)  # each example is one connection's
    for connection, rules in examples:
        try:
            compiled(connection, rules, config_dir)
        except PlaybookError as error:
            raise AssertionError(f"{rules}: {error}") from None


def test_the_documented_error_messages_are_the_real_ones() -> None:
    shown = re.search(r"## Errors.*?```\n(.*?)```", TEXT, re.DOTALL)
    assert shown is not None
    cases: list[tuple[list[dict[str, Any]], dict[str, Any]]] = [
        ([{"transform": {"traits.phone": "sha1"}}], {}),
        ([{"set": {"messageId": "x"}}], {}),
        ([{"sample": 1.5}], {}),
        ([{"drop": True, "set": {"a": 1}}], {}),
        ([], {"consent_missing": "allow"}),
    ]
    numbers = [2, 1, 3, 4, None]
    for (rules, options), number in zip(cases, numbers, strict=True):
        padded = [{"drop": True}] * ((number or 1) - 1) + rules
        with pytest.raises(PlaybookError) as caught:
            Playbook.compile(padded, **options)
        assert str(caught.value) + "\n" in shown.group(1)


def test_the_split_function_example(config_dir: Path) -> None:
    rules = [{"when": 'type = "track" and event = "Order Completed"',
              "function": "functions/orders.py:split_order"}]  # fmt: skip
    playbook = Playbook.compile(rules, base_dir=config_dir, allow_functions=True)
    order = {
        "type": "track", "messageId": "m-1", "event": "Order Completed", "userId": "u-1",
        "properties": {"order_id": "o-1", "products": [{"sku": "a"}, {"sku": "b"}]},
    }  # fmt: skip
    shaped = playbook.apply(order)
    assert [(m["messageId"], m["event"], m["properties"]) for m in shaped.messages] == [
        ("m-1", "Order Completed", order["properties"]),
        ("m-1-product-0", "purchased_product", {"sku": "a", "order_id": "o-1"}),
        ("m-1-product-1", "purchased_product", {"sku": "b", "order_id": "o-1"}),
    ]
