"""The `when` language: what each condition selects, and the exact error for each mistake."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.playbooks import Playbook, PlaybookError, compile_condition

MESSAGE: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "userId": "u-1",
    "properties": {
        "total": 120,
        "discount": 9.5,
        "coupon": None,
        "vip": True,
        "tags": ["sale", "gift"],
        "sku": "SKU-42",
        "a.b": "dotted",
        "products": [{"sku": "p-1"}, {"sku": "p-2"}],
    },
    "context": {"page": {"url": "https://staging.shop.example/cart"}, "library": {"name": "x"}},
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('type = "track"', True),
        ('type = "identify"', False),
        ('type = "track" and event = "Order Completed"', True),
        ('type = "identify" or event = "Order Completed"', True),
        ('not type = "track"', False),
        ('not (type = "track" and event = "x")', True),
        # `and` binds tighter than `or`; `not` tighter than both.
        ('type = "x" and event = "x" or userId = "u-1"', True),
        ('type = "x" and (event = "x" or userId = "u-1")', False),
        ('not type = "x" and userId = "u-1"', True),
        # numbers are one type, integer or not; booleans are not numbers
        ("properties.total = 120", True),
        ("properties.total = 120.0", True),
        ("properties.total > 100", True),
        ("properties.total >= 120", True),
        ("properties.total < 120", False),
        ("properties.discount <= 9.5", True),
        ("properties.total > -1e3", True),
        ("properties.vip = true", True),
        ("properties.vip = 1", False),
        ("properties.vip != 1", True),
        ("properties.vip > 0", False),
        # across types: = is false, != is its opposite, ordering is false
        ('properties.total = "120"', False),
        ('properties.total != "120"', True),
        ('properties.total < "999"', False),
        ('properties.sku > "SKU-1"', True),  # strings compare as strings
        ('properties.sku < "SKU-1"', False),
        # a missing field is null
        ("properties.missing = null", True),
        ("properties.coupon = null", True),
        ("properties.missing != null", False),
        ("userId != null", True),
        ("properties.missing < 1", False),
        ("properties.missing = properties.coupon", True),
        ("nothing.at.all = null", True),
        ('properties.sku.deeper = "x"', False),  # through a string: nothing there
        # functions
        ("exists(userId)", True),
        ("exists(anonymousId)", False),
        ("exists(properties.coupon)", False),  # present but null
        ("not exists(anonymousId)", True),
        ('contains(properties.sku, "U-4")', True),
        ('contains(properties.sku, "u-4")', False),  # case-sensitive
        ('contains(properties.tags, "gift")', True),  # an item of a list
        ('contains(properties.tags, "gif")', False),
        ('contains(properties.total, "12")', False),
        ('match(context.page.url, "https://staging.*")', True),
        ('match(context.page.url, "https://STAGING.*")', False),
        ('match(properties.sku, "SKU-[0-9]?")', True),
        ('match(properties.total, "*")', False),
        # paths: list items by index, escaped dots, literals on the left
        ('properties.products.1.sku = "p-2"', True),
        ("properties.products.2.sku = null", True),
        ('properties.a\\.b = "dotted"', True),
        ('"track" = type', True),
        ("100 < properties.total", True),
        ("properties.total = properties.total", True),
        ("properties.total > properties.discount", True),
        ("1 = 1", True),
        ('"a" = 1', False),
        # strings with escapes
        ('event != "Order \\"Completed\\""', True),
        ('context.library.name = "\\u0078"', True),
        # whitespace and lines
        ('type = "track"\n  and userId = "u-1"', True),
    ],
)
def test_condition_selects(condition: str, expected: bool) -> None:
    assert compile_condition(condition)(MESSAGE) is expected


@pytest.mark.parametrize(
    ("condition", "line", "column", "message"),
    [
        ("type =", 1, 7, "unexpected end of condition; expected one of: a field path, a number, "
         "a string, false, null, true"),
        ('type = "x" and', 1, 15, "unexpected end of condition; expected one of: (, a field path, "
         "a number, a string, false, not, null, true"),
        ('(type = "x"', 1, 12, "unexpected end of condition; expected )"),
        ('type = "x"\nand (', 2, 6, "unexpected end of condition; expected one of: (, a field "
         "path, a number, a string, false, not, null, true"),
        ('type = "track', 1, 8, 'unterminated string (a " without its closing ")'),
        ("type ~ 1", 1, 6, "unexpected character '~'"),
        ("type == 1", 1, 7, "unexpected '='; expected one of: a field path, a number, a string"),
        ("and = 1", 1, 1, "'and' is a keyword, not a field path"),
        ("type", 1, 5, "unexpected end of condition; expected one of: (, a comparison (=, !=, <, "
         "<=, >, >=)"),
        ("lower(type)", 1, 1, "unknown function 'lower' (expected one of: contains, exists, "
         "match)"),
        ('exists(type, "x")', 1, 1, "exists takes 1 argument: exists(path)"),
        ("contains(type)", 1, 1, 'contains takes 2 arguments: contains(path, "text")'),
        ('contains("a", "b")', 1, 1, 'the first argument of contains must be a field path: '
         'contains(path, "text")'),
        ("match(type, event)", 1, 1, 'the second argument of match must be a string: '
         'match(path, "text")'),
        ('x = "\\d"', 1, 5, 'invalid escape in string "\\d"'),
        ("x = 1e999", 1, 5, "number 1e999 is out of range"),
        ("  ", 1, 1, "empty (leave `when` out to match every message)"),
        ("not " * 51 + "x = 1", 1, 205, "nested more than 50 levels deep"),
    ],
)
def test_invalid_condition_is_located(condition: str, line: int, column: int, message: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        Playbook.compile([{"when": "type = \"track\"", "drop": True}, {"when": condition,
                                                                       "drop": True}])
    error = caught.value
    assert (error.rule, error.field, error.line, error.column) == (2, "when", line, column)
    assert error.message == message
    assert str(error) == f"playbook rule 2, when (line {line}, column {column}): {message}"


def test_condition_that_is_not_a_string() -> None:
    with pytest.raises(PlaybookError) as caught:
        Playbook.compile([{"when": 3, "drop": True}])
    assert str(caught.value) == "playbook rule 1, when: a condition is a string, got a number"


def test_an_overlong_condition_is_refused() -> None:
    with pytest.raises(PlaybookError) as caught:
        Playbook.compile([{"when": "x = 1 or " * 500 + "x = 1", "drop": True}])
    assert caught.value.message == "longer than 4000 characters"


def test_conditions_decide_which_rules_apply() -> None:
    playbook = Playbook.compile(
        [
            {"when": 'event = "Order Completed"', "set": {"properties.a": 1}},
            {"when": 'event = "Other"', "set": {"properties.b": 2}},
            {"set": {"properties.c": 3}},  # no `when`: every message
        ]
    )
    shaped = playbook.apply({"type": "track", "event": "Order Completed", "properties": {}})
    assert shaped.messages == [
        {"type": "track", "event": "Order Completed", "properties": {"a": 1, "c": 3}}
    ]
    assert shaped.rules_applied == ["rule 1", "rule 3"]
