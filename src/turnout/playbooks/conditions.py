"""The `when` condition language: Segment's destination-filter / Actions trigger syntax, parsed by
lark once, checked, and written as one Python expression per condition (see codegen.py: no
`eval`, no user text in the source, nothing parsed per message).

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
from dataclasses import dataclass
from typing import Any, Final

from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput
from lark import UnexpectedToken as LarkUnexpectedToken

from turnout.playbooks.codegen import Source
from turnout.playbooks.pathcode import found_and, read
from turnout.playbooks.paths import MISSING, Path, glob_matcher, glob_shape, parse_path

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
        return None  # an invalid string: _expression reports it
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


# -- the parsed condition ---------------------------------------------------------------------
#
# `_expression` checks a tree (raising ConditionError at the place of any problem) and makes it
# one of these: field paths parsed, literals decoded, comparisons of two literals decided, and a
# literal on the left turned round (`"x" = event` is `event = "x"`). `emit` writes it as code.


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class Field:
    path: Path


@dataclass(frozen=True, slots=True)
class Compare:
    """`field OP literal` or `field OP field`."""

    op: str
    left: Field
    right: Literal | Field


@dataclass(frozen=True, slots=True)
class Known:
    """A comparison of two literals, decided when the condition is compiled."""

    value: bool


@dataclass(frozen=True, slots=True)
class Function:
    """`exists(path)` (text unused), `contains(path, "text")`, `match(path, "glob")`."""

    name: str
    path: Path
    text: str


@dataclass(frozen=True, slots=True)
class Not:
    inner: Expression


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Expression, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Expression, ...]


Expression = Compare | Known | Function | Not | AllOf | AnyOf


def fields_read(condition: Expression) -> frozenset[str]:
    """The top-level fields of a message that `condition` reads (the first key of each path):
    a lane builds only those of the message into the dict its playbook reads."""
    if isinstance(condition, Compare):
        paths = [condition.left.path]
        if isinstance(condition.right, Field):
            paths.append(condition.right.path)
        return frozenset(path.keys[0] for path in paths)
    if isinstance(condition, Function):
        return frozenset((condition.path.keys[0],))
    if isinstance(condition, Not):
        return fields_read(condition.inner)
    if isinstance(condition, AllOf | AnyOf):
        return frozenset().union(*(fields_read(part) for part in condition.parts))
    return frozenset()


def compile_condition(text: str) -> Predicate:
    """The predicate for `text`; raises ConditionError for anything invalid."""
    return predicate(_expression(_parse(text), 0))


def parse_when(text: str) -> tuple[frozenset[str] | None, Expression | None]:
    """`text` split for speed into the call types it can match (None: any) and the condition on
    the rest (None: nothing more to test). Most rules start with `type = "..."`, and a rule that
    cannot match a call type is left out of the code run for that type altogether."""
    tree = _parse(text)
    types = _types(tree)
    if types is None:
        return None, _expression(tree, 0)
    if tree.data == "comparison" or (
        tree.data == "or_expr" and all(_type_test(child) for child in tree.children)
    ):
        return types, None  # the types are the whole condition
    if tree.data == "and_expr":
        rest = tuple(
            _expression(child, 1) for child in tree.children if _type_test(child) is None
        )
        return types, (AllOf(rest) if len(rest) > 1 else rest[0]) if rest else None
    return types, _expression(tree, 0)


def compile_when(text: str) -> tuple[frozenset[str] | None, Predicate | None]:
    """`parse_when`, with the rest of the condition as a predicate."""
    types, rest = parse_when(text)
    return types, None if rest is None else predicate(rest)


def _expression(node: Tree[Any], depth: int) -> Expression:
    if depth > MAX_DEPTH:
        raise _error_at(node, f"nested more than {MAX_DEPTH} levels deep")
    kind = node.data
    if kind in ("or_expr", "and_expr"):
        parts = tuple(_expression(child, depth + 1) for child in node.children)
        return AnyOf(parts) if kind == "or_expr" else AllOf(parts)
    if kind == "negation":
        return Not(_expression(node.children[0], depth + 1))
    if kind == "comparison":
        return _comparison(node)
    if kind == "call":
        return _call(node)
    raise _error_at(node, f"unexpected {kind}")  # the grammar allows nothing else here


def _operand(node: Tree[Any]) -> Literal | Field:
    """A field path, or a literal's value."""
    kind = node.data
    token = node.children[0] if node.children else Token("NONE", "")
    assert isinstance(token, Token)  # operands are single tokens (or none, for true/false/null)
    if kind == "path":
        if token.value in KEYWORDS:
            raise _error_at(token, f"{token.value!r} is a keyword, not a field path")
        try:
            return Field(parse_path(token.value))
        except ValueError as exc:
            raise _error_at(token, str(exc)) from None
    if kind == "string":
        try:
            return Literal(json.loads(token.value))
        except ValueError:
            raise _error_at(token, f"invalid escape in string {token.value}") from None
    if kind == "number":
        text = token.value
        number = float(text) if any(c in text for c in ".eE") else int(text)
        if isinstance(number, float) and math.isinf(number):
            raise _error_at(token, f"number {text} is out of range")
        return Literal(number)
    return Literal({"true": True, "false": False, "null": None}[kind])


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


def _comparison(node: Tree[Any]) -> Expression:
    left_node, op_token, right_node = node.children
    op = str(op_token)
    left, right = _operand(left_node), _operand(right_node)
    if isinstance(left, Literal) and isinstance(right, Field):  # `"x" = event`: `event = "x"`
        left, right, op = right, left, _FLIPPED[op]
    if isinstance(left, Literal):
        assert isinstance(right, Literal)
        if op in ("=", "!="):
            result = equal(left.value, right.value)
        else:
            result = ordered(op, left.value, right.value)
        return Known((not result) if op == "!=" else result)
    return Compare(op, left, right)


# -- functions ---------------------------------------------------------------------------------


def _call(node: Tree[Any]) -> Expression:
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
    if not isinstance(subject, Field):
        raise _error_at(name_token, f"the first argument of {name} must be a field path: "
                        f"{signature}")
    if name == "exists":
        return Function(name, subject.path, "")
    text = _operand(args[1])
    if not isinstance(text, Literal) or type(text.value) is not str:
        raise _error_at(name_token, f"the second argument of {name} must be a string: "
                        f"{signature}")
    return Function(name, subject.path, text.value)


def _contains(value: Any, text: str) -> bool:
    if type(value) is str:
        return text in value
    if type(value) is list:
        return any(type(item) is str and item == text for item in value)
    return False


# -- code --------------------------------------------------------------------------------------
#
# A condition is written as one Python expression over the message `_m` (see codegen.py for why
# that is safe: every literal and key is a name in the namespace, never text in the source). It
# may assign the locals `_t` and `_v`, each used right after it is assigned.


def _equal_fields(left: Any, right: Any) -> bool:
    """`field = field`: a missing field reads as null."""
    return equal(None if left is MISSING else left, None if right is MISSING else right)


def _ordered_fields(op: str, left: Any, right: Any) -> bool:
    return ordered(op, None if left is MISSING else left, None if right is MISSING else right)


NAMESPACE: Final[dict[str, Any]] = {
    "_MISSING": MISSING,
    "_NUMBER": (int, float),
    "_equal_fields": _equal_fields,
    "_ordered_fields": _ordered_fields,
    "_contains": _contains,
}
_OPERATORS: Final = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}  # written from this table


def predicate(condition: Expression) -> Predicate:
    """A function of the message that says whether `condition` holds."""
    source = Source(NAMESPACE)
    with source.block("def when(_m)"):
        source.line(f"return {emit(condition, source)}")
    return source.function("when")


def emit(condition: Expression, source: Source) -> str:
    """`condition` as a Python expression over `_m` that evaluates to True or False."""
    if isinstance(condition, AllOf | AnyOf):
        joiner = " and " if isinstance(condition, AllOf) else " or "
        return "(" + joiner.join(emit(part, source) for part in condition.parts) + ")"
    if isinstance(condition, Not):
        return f"(not {emit(condition.inner, source)})"
    if isinstance(condition, Known):
        return "True" if condition.value else "False"
    if isinstance(condition, Function):
        return _emit_function(condition, source)
    return _emit_comparison(condition, source)


def _emit_comparison(condition: Compare, source: Source) -> str:
    op, path, right = condition.op, condition.left.path, condition.right
    if isinstance(right, Field):
        value = read(path, source)
        other = read(right.path, source)  # `_t` is free again once `value` is read
        if op == "=":
            return f"_equal_fields({value}, {other})"
        if op == "!=":
            return f"(not _equal_fields({value}, {other}))"
        return f"_ordered_fields({source.name(op, 'op')}, {value}, {other})"
    constant = right.value
    name = source.name(constant)
    if op in ("=", "!="):
        if type(constant) is str:
            test = found_and(path, source, lambda value: f"{value} == {name}")
        elif constant is None:  # the one test a missing field passes
            test = f"((_v := {read(path, source)}) is None or _v is _MISSING)"
        elif type(constant) is bool:
            test = found_and(path, source, lambda value: f"{value} is {name}")
        else:
            test = found_and(
                path, source, lambda value: f"(_v := {value}).__class__ in _NUMBER and _v == {name}"
            )
        return test if op == "=" else f"(not {test})"
    compare = _OPERATORS[op]
    if type(constant) is str:
        return found_and(
            path, source, lambda value: f"(_v := {value}).__class__ is str and _v {compare} {name}"
        )
    if _is_number(constant):
        return found_and(
            path, source,
            lambda value: f"(_v := {value}).__class__ in _NUMBER and _v {compare} {name}",
        )  # fmt: skip
    return "False"  # `< true`, `> null`: nothing is ordered against these


def _emit_function(condition: Function, source: Source) -> str:
    path = condition.path
    if condition.name == "exists":
        return found_and(
            path, source, lambda value: f"(_v := {value}) is not None and _v is not _MISSING"
        )
    text = source.name(condition.text)
    if condition.name == "contains":  # a string read inline; a list by `_contains`
        return found_and(
            path, source, lambda value: f"({text} in _v if (_v := {value}).__class__ is str else "
            f"(_v.__class__ is list and _contains(_v, {text})))",
        )  # fmt: skip
    kind, body = glob_shape(condition.text)  # the usual shapes as string methods
    if kind == "prefix":
        test = f"_v.startswith({source.name(body)})"
    elif kind == "suffix":
        test = f"_v.endswith({source.name(body)})"
    elif kind == "infix":
        test = f"{source.name(body)} in _v"
    else:
        test = f"{source.name(glob_matcher(condition.text), 'glob')}(_v)"
    return found_and(path, source, lambda value: f"(_v := {value}).__class__ is str and {test}")
