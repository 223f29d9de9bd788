"""The `when` condition language: Segment's destination-filter / Actions trigger syntax, parsed by
lark and compiled once into plain Python closures (no `eval`, nothing parsed per message).

    type = "track" and (event = "Order Completed" or properties.total >= 100)
    not exists(userId) or match(context.page.url, "https://staging.*")

Values: field paths (a missing field reads as null), double-quoted strings with JSON's backslash
escapes, numbers, `true`, `false`, `null`. Comparisons: `=` `!=` `<` `<=` `>` `>=`; `and` binds
tighter than `or`, `not` tighter than both. Functions: `contains(path, "text")` (a substring of a
string, or an item of a list), `match(path, "glob*")` (fnmatch, case-sensitive), `exists(path)`
(present and not null).

Typing is strict and never raises: `=` holds only between values of the same type (numbers are
one type whether integer or not; `true` is not `1`), `!=` is its exact opposite, and `<`, `<=`,
`>`, `>=` compare two numbers as numbers or two strings as strings, and are false otherwise.
"""

from __future__ import annotations

import functools
import json
import math
import operator
from collections.abc import Callable
from typing import Any, Final

from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput
from lark import UnexpectedToken as LarkUnexpectedToken

from turnout.playbooks.paths import MISSING, Path, getter, glob_matcher, glob_shape, parse_path

Value = Callable[[dict[str, Any]], Any]
Predicate = Callable[[dict[str, Any]], bool]

MAX_DEPTH: Final = 50  # nesting of parentheses / not / and / or: deeper is surely a mistake
MAX_LENGTH: Final = 4000  # characters of one condition

_GRAMMAR: Final = r"""
?start: or_expr
?or_expr: and_expr ("or" and_expr)*
?and_expr: not_expr ("and" not_expr)*
?not_expr: "not" not_expr -> negation
         | atom
?atom: comparison | call | "(" or_expr ")"
comparison: operand COMPARATOR operand
call: PATH "(" [operand ("," operand)*] ")"
?operand: PATH -> path
        | STRING -> string
        | NUMBER -> number
        | "true" -> true
        | "false" -> false
        | "null" -> null
COMPARATOR: "=" | "!=" | "<=" | ">=" | "<" | ">"
PATH: /(?:[^\W\d]|[$@]|\\.)(?:[\w$@\-]|\\.)*(?:\.(?:[\w$@\-]|\\.)+)*/
STRING: /"(?:[^"\\\n]|\\.)*"/
NUMBER: /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/
%import common.WS
%ignore WS
"""

KEYWORDS: Final = frozenset({"and", "or", "not", "true", "false", "null"})
FUNCTIONS: Final = ("contains", "match", "exists")

# How an error message names what the parser expected (lark's terminal names are internal).
_EXPECTED: Final = {
    "PATH": "a field path",
    "STRING": "a string",
    "NUMBER": "a number",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "NOT": "not",
    "AND": "and",
    "OR": "or",
    "LPAR": "(",
    "RPAR": ")",
    "COMMA": ",",
    "COMPARATOR": "a comparison (=, !=, <, <=, >, >=)",
    "$END": "end of condition",
}


class ConditionError(ValueError):
    """A condition that cannot be compiled, with the 1-based line and column of the problem."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@functools.cache
def _parser() -> Lark:
    """Built on first use (a few milliseconds), then shared: LALR, so parsing is linear and its
    errors name the exact token."""
    return Lark(_GRAMMAR, parser="lalr", propagate_positions=True)


def compile_condition(text: str) -> Predicate:
    """The predicate for `text`; raises ConditionError for anything invalid."""
    return _predicate(_parse(text), 0)


def compile_when(text: str) -> tuple[frozenset[str] | None, Predicate | None]:
    """`text` split for speed into the call types it can match (None: any) and the predicate
    for the rest (None: nothing more to test). Most rules start with `type = "..."`, and a set
    lookup on the message's type, once per rule, is far cheaper than calling a closure."""
    tree = _parse(text)
    types = _types(tree)
    if types is None:
        return None, _predicate(tree, 0)
    if tree.data == "comparison" or (
        tree.data == "or_expr" and all(_type_test(child) for child in tree.children)
    ):
        return types, None  # the types are the whole condition
    if tree.data == "and_expr":
        rest = tuple(
            _predicate(child, 1) for child in tree.children if _type_test(child) is None
        )
        return types, (_all(rest) if len(rest) > 1 else rest[0]) if rest else None
    return types, _predicate(tree, 0)


def _parse(text: str) -> Tree[Any]:
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"longer than {MAX_LENGTH} characters", 1, MAX_LENGTH + 1)
    if not text.strip():
        raise ConditionError("empty (leave `when` out to match every message)", 1, 1)
    try:
        return _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None


def _type_test(node: Tree[Any] | Token) -> str | None:
    """X when `node` is exactly `type = "X"` (either way round), else None."""
    if not isinstance(node, Tree) or node.data != "comparison":
        return None
    left, op, right = node.children
    if str(op) != "=":
        return None
    if left.data == "string":
        left, right = right, left
    if left.data != "path" or str(left.children[0]) != "type" or right.data != "string":
        return None
    try:
        value = json.loads(str(right.children[0]))
    except ValueError:
        return None  # an invalid string: _predicate reports it
    return value if isinstance(value, str) else None


def _types(node: Tree[Any]) -> frozenset[str] | None:
    """The call types a condition can match at most, when it says (None: it does not)."""
    single = _type_test(node)
    if single is not None:
        return frozenset({single})
    if node.data == "and_expr":
        known = [found for child in node.children if (found := _types(child)) is not None]
        return frozenset.intersection(*known) if known else None
    if node.data == "or_expr":
        each = [_types(child) for child in node.children]
        if all(found is not None for found in each):
            return frozenset().union(*each)  # type: ignore[arg-type]
    return None


def _syntax_error(exc: UnexpectedInput, text: str) -> ConditionError:
    line, column = max(exc.line, 1), max(exc.column, 1)
    if isinstance(exc, UnexpectedCharacters):
        position = exc.pos_in_stream or 0
        char = text[position] if position < len(text) else ""
        if char == '"':
            return ConditionError("unterminated string (a \" without its closing \")", line, column)
        return ConditionError(f"unexpected character {char!r}", line, column)
    if isinstance(exc, LarkUnexpectedToken | UnexpectedEOF):
        token = getattr(exc, "token", None)
        found = _describe_token(token)
        if found == "end of condition" and token is not None:
            line, column = _end_position(text)
        expected = sorted({_EXPECTED.get(name, name.lower()) for name in exc.expected})
        return ConditionError(
            f"unexpected {found}; expected {_one_of(expected)}", line, column
        )
    return ConditionError(str(exc).splitlines()[0], line, column)


def _describe_token(token: Token | None) -> str:
    if token is None or token.type == "$END":
        return "end of condition"
    if token.type == "PATH":
        return f"field path {token.value!r}"
    return repr(token.value)


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _one_of(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return "one of: " + ", ".join(names)


def _error_at(node: Tree[Any] | Token, message: str) -> ConditionError:
    if isinstance(node, Token):
        return ConditionError(message, node.line or 1, node.column or 1)
    meta = node.meta
    return ConditionError(message, getattr(meta, "line", 1), getattr(meta, "column", 1))


# -- compiling ---------------------------------------------------------------------------------


def _predicate(node: Tree[Any], depth: int) -> Predicate:
    if depth > MAX_DEPTH:
        raise _error_at(node, f"nested more than {MAX_DEPTH} levels deep")
    kind = node.data
    if kind in ("or_expr", "and_expr"):
        parts = tuple(_predicate(child, depth + 1) for child in node.children)
        return _any(parts) if kind == "or_expr" else _all(parts)
    if kind == "negation":
        inner = _predicate(node.children[0], depth + 1)
        return lambda message: not inner(message)
    if kind == "comparison":
        return _comparison(node)
    if kind == "call":
        return _call(node)
    raise _error_at(node, f"unexpected {kind}")  # the grammar allows nothing else here


def _any(parts: tuple[Predicate, ...]) -> Predicate:
    if len(parts) == 2:
        first, second = parts
        return lambda message: first(message) or second(message)
    return lambda message: any(part(message) for part in parts)


def _all(parts: tuple[Predicate, ...]) -> Predicate:
    if len(parts) == 2:
        first, second = parts
        return lambda message: first(message) and second(message)
    return lambda message: all(part(message) for part in parts)


_CONSTANT: Final = "constant"


def _operand(node: Tree[Any]) -> tuple[str, Any, Path | None]:
    """(`"path"`, its reader, the path) for a field path, else (`"constant"`, the literal's
    value, None). The reader returns MISSING for an absent field: callers comparing two fields
    read it as null."""
    kind = node.data
    token = node.children[0] if node.children else Token("NONE", "")
    assert isinstance(token, Token)  # operands are single tokens (or none, for true/false/null)
    if kind == "path":
        if token.value in KEYWORDS:
            raise _error_at(token, f"{token.value!r} is a keyword, not a field path")
        try:
            path = parse_path(token.value)
        except ValueError as exc:
            raise _error_at(token, str(exc)) from None
        return "path", getter(path), path
    if kind == "string":
        try:
            return _CONSTANT, json.loads(token.value), None
        except ValueError:
            raise _error_at(token, f"invalid escape in string {token.value}") from None
    if kind == "number":
        text = token.value
        number = float(text) if any(c in text for c in ".eE") else int(text)
        if isinstance(number, float) and math.isinf(number):
            raise _error_at(token, f"number {text} is out of range")
        return _CONSTANT, number, None
    return _CONSTANT, {"true": True, "false": False, "null": None}[kind], None


def _nullable(read: Value) -> Value:
    return lambda message: None if (value := read(message)) is MISSING else value


# -- comparisons -------------------------------------------------------------------------------

_ORDER: Final = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_FLIPPED: Final = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def equal(left: Any, right: Any) -> bool:
    """`=`: same type and same value; integers and decimals are both numbers; null = null."""
    if _is_number(left):
        return _is_number(right) and left == right
    return type(left) is type(right) and left == right


def ordered(op: str, left: Any, right: Any) -> bool:
    """`<` and friends: numbers with numbers, strings with strings, else false."""
    if _is_number(left):
        return _is_number(right) and bool(_ORDER[op](left, right))
    return type(left) is str and type(right) is str and bool(_ORDER[op](left, right))


def _comparison(node: Tree[Any]) -> Predicate:
    left_node, op_token, right_node = node.children
    op = str(op_token)
    left, right = _operand(left_node), _operand(right_node)
    if left[0] == _CONSTANT and right[0] != _CONSTANT:  # `"x" = event` reads as `event = "x"`
        left, right, op = right, left, _FLIPPED[op]
    if left[0] == _CONSTANT:
        result = equal(left[1], right[1]) if op in ("=", "!=") else ordered(
            op, left[1], right[1]
        )
        result = (not result) if op == "!=" else result
        return lambda message: result
    read: Value = left[1]
    if right[0] == _CONSTANT:
        return _against_constant(read, left[2], op, right[1])
    read = _nullable(read)
    other: Value = _nullable(right[1])
    if op == "=":
        return lambda message: equal(read(message), other(message))
    if op == "!=":
        return lambda message: not equal(read(message), other(message))
    return lambda message: ordered(op, read(message), other(message))


def _against_constant(read: Value, path: Path | None, op: str, constant: Any) -> Predicate:
    """`path OP literal`, the usual shape, specialised so that the common cases cost one read and
    one comparison: a string literal equals only a string, `null` only null, a boolean only
    itself; a number equals only a number that is not a boolean."""
    if op in ("=", "!="):
        if type(constant) is str:
            test: Predicate = _equals_text(read, path, constant)
        elif constant is None:
            test = lambda message: (value := read(message)) is None or value is MISSING  # noqa: E731
        elif type(constant) is bool:
            test = lambda message: read(message) is constant  # noqa: E731
        else:

            def test(message: dict[str, Any]) -> bool:
                value = read(message)
                return type(value) in (int, float) and value == constant

        if op == "=":
            return test
        return lambda message: not test(message)
    compare = _ORDER[op]
    if type(constant) is str:
        return lambda message: type(value := read(message)) is str and compare(value, constant)
    if _is_number(constant):
        return lambda message: type(value := read(message)) in (int, float) and compare(
            value, constant
        )
    return lambda message: False  # `< true`, `> null`: nothing is ordered against these


def _equals_text(read: Value, path: Path | None, text: str) -> Predicate:
    """`path = "text"`, the commonest test of all, with a one- or two-key path read inline."""
    if path is not None and path.indexes == (None,):
        key = path.keys[0]
        return lambda message: message.get(key) == text
    if path is not None and path.indexes == (None, None):
        first, second = path.keys

        def equals(message: dict[str, Any]) -> bool:
            inner = message.get(first)
            return type(inner) is dict and inner.get(second) == text

        return equals
    return lambda message: read(message) == text


# -- functions ---------------------------------------------------------------------------------


def _call(node: Tree[Any]) -> Predicate:
    name_token, *arg_nodes = node.children
    name = str(name_token)
    args = [arg for arg in arg_nodes if arg is not None]
    if name not in FUNCTIONS:
        raise _error_at(name_token, f"unknown function {name!r} (expected one of: contains, "
                        "exists, match)")
    wanted = 1 if name == "exists" else 2
    signature = "exists(path)" if name == "exists" else f'{name}(path, "text")'
    if len(args) != wanted:
        raise _error_at(name_token, f"{name} takes {wanted} argument{'s' if wanted > 1 else ''}: "
                        f"{signature}")
    subject = _operand(args[0])
    if subject[0] == _CONSTANT:
        raise _error_at(name_token, f"the first argument of {name} must be a field path: "
                        f"{signature}")
    read: Value = subject[1]
    if name == "exists":
        return lambda message: (value := read(message)) is not None and value is not MISSING
    kind, text, _ = _operand(args[1])
    if kind != _CONSTANT or type(text) is not str:
        raise _error_at(name_token, f"the second argument of {name} must be a string: "
                        f"{signature}")
    if name == "contains":
        return lambda message: _contains(read(message), text)
    kind, body = glob_shape(text)  # the test written inline: no call per message for it
    if kind == "prefix":
        return lambda message: type(value := read(message)) is str and value.startswith(body)
    if kind == "suffix":
        return lambda message: type(value := read(message)) is str and value.endswith(body)
    if kind == "infix":
        return lambda message: type(value := read(message)) is str and body in value
    matches = glob_matcher(text)
    return lambda message: type(value := read(message)) is str and matches(value)


def _contains(value: Any, text: str) -> bool:
    if type(value) is str:
        return text in value
    if type(value) is list:
        return any(type(item) is str and item == text for item in value)
    return False
