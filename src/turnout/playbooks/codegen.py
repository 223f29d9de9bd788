"""Python source written from a parsed playbook, then compiled once: the hot loop of a lane runs
each rule's condition and actions as straight-line code, not as a chain of closures (a function
call costs about as much as the test it wraps, and a 10-rule playbook made a hundred of them per
message). `bench/playbook.py` measures the result against the Customer.io mapping.

Why generating code is safe here: the text handed to the compiler is made only of this
package's own templates, names the generator makes up (`_x`, `_o3`) and operators it picks from
its own tables. Every value that comes from a user (the strings and numbers of a condition, the
keys of a path, the constants of `set`, a rule's name, a pattern) is written as a placeholder: a
string literal the generator makes (`'\\x00k12'`), never the user's text. So no user text is ever
read as Python, whatever a playbook holds. Nothing is `eval`ed or `exec`ed: the function is made
from the compiled code object, in which each placeholder is then replaced by the object it
stands for (a constant is an index into the code's own table: cheaper to read than a global).

The templates name the few helpers and builtins they call (`dict`, `_MISSING`, `_put`) as plain
identifiers; `Source.line` writes each as a placeholder too. The pattern that finds them cannot
match inside a placeholder (a backslash escape, then letters and digits), and the templates hold
no other string that contains one of those names.

The templates test a value's type as `value.__class__ is dict`, not `type(value) is dict`: the
same answer for every value a message holds (JSON values, and any object that does not disguise
its class as a mock or a proxy does), at a fraction of the cost of calling `type` in CPython
3.11 (about 2 ns against 20 per test, a few dozen tests per message).
"""

from __future__ import annotations

import builtins
import dis
import itertools
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType, FunctionType
from typing import Any, Final

_SERIAL = itertools.count(1)
# The builtins the templates read, made constants like the registered names.
_BUILTINS: Final = ("bool", "dict", "frozenset", "id", "isinstance", "list", "set", "str", "type")
_MARK: Final = "\x00"  # starts every placeholder; no template contains it


class Source:
    """The lines of one generated function and the objects its placeholders stand for."""

    def __init__(self, namespace: dict[str, Any] | None = None) -> None:
        # The helpers the templates name (`_put`), besides a few builtins (`type`).
        self.namespace: dict[str, Any] = dict(namespace or {})
        self._symbols = re.compile(
            r"(?<![\w.])(" + "|".join(map(re.escape, (*self.namespace, *_BUILTINS)))
            + r")\b(?!\s*=[^=])"
        )  # fmt: skip
        self._lines: list[str] = []
        self._indent = 0
        self._values: dict[str, Any] = {}  # placeholder -> the object it stands for
        self._names: dict[int, str] = {}  # id of an object -> its placeholder literal
        self._count = 0

    def name(self, value: Any, hint: str = "c") -> str:
        """The expression the generated code reads `value` by: a placeholder literal (the same
        for the same object). `hint`, letters, makes the source easier to read."""
        known = self._names.get(id(value))
        if known is not None:
            return known
        assert hint.isalpha()
        self._count += 1
        placeholder = f"{_MARK}{hint}{self._count}"
        self._values[placeholder] = value  # kept alive, so its id stays its own
        literal = repr(placeholder)
        self._names[id(value)] = literal
        return literal

    def line(self, text: str) -> None:
        text = self._symbols.sub(lambda match: self._symbol(match.group(1)), text)
        self._lines.append("    " * self._indent + text)

    def _symbol(self, word: str) -> str:
        value = self.namespace[word] if word in self.namespace else getattr(builtins, word)
        return self.name(value, word.strip("_").replace("_", "") or "s")

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        """`header:` and the lines written inside the `with`, indented (`pass` if none)."""
        self.line(header + ":")
        self._indent += 1
        start = len(self._lines)
        try:
            yield
        finally:
            if len(self._lines) == start:
                self.line("pass")
            self._indent -= 1

    @contextmanager
    def guard(self, condition: str | None) -> Iterator[None]:
        """`if condition:` around the lines written inside the `with`; none when it is None."""
        if condition is None:
            yield
            return
        with self.block(f"if {condition}"):
            yield

    @property
    def text(self) -> str:
        return "\n".join(self._lines) + "\n"

    def function(self, name: str) -> Callable[..., Any]:
        """Compile the lines, which define the function `name` (no defaults, no closure), and
        return it, each placeholder replaced by its object (see the module's note)."""
        with warnings.catch_warnings():
            # `x is <placeholder>` and `<placeholder>(...)` are what the templates mean.
            warnings.simplefilter("ignore", SyntaxWarning)
            module = compile(self.text, f"<playbook code {next(_SERIAL)}>", "exec")
        for constant in module.co_consts:
            if isinstance(constant, CodeType) and constant.co_name == name:
                named = _globals_read(constant) & {*self.namespace, *_BUILTINS}
                if named:  # a helper read as a global: a template the pattern did not see
                    raise ValueError(f"generated code reads {sorted(named)} by name")
                values = self._values
                code = constant.replace(
                    co_consts=tuple(_resolve(each, values) for each in constant.co_consts)
                )
                return FunctionType(code, {"__builtins__": builtins}, name)
        raise LookupError(f"the generated source defines no function {name!r}")


class Scratch(Source):
    """A Source that keeps no lines: for writing code only to see what it would do (the
    first of the two writings `pathcode.Ownership` needs)."""

    def line(self, text: str) -> None:
        return None


def _globals_read(code: CodeType) -> set[str]:
    """The names `code` (and any code nested in it) reads as globals; attribute names, which
    share `co_names` with them, are not among them (`message.type` reads no `type`)."""
    names = {
        each.argval
        for each in dis.get_instructions(code)
        if each.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    }
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names |= _globals_read(constant)
    return names


def _resolve(constant: Any, values: dict[str, Any]) -> Any:
    """The object a constant of the compiled code stands for: a placeholder's, or, in a tuple
    the compiler folded (the keys of a dict display), each placeholder's."""
    if type(constant) is str and constant.startswith(_MARK):
        return values[constant]
    if type(constant) is tuple:
        return tuple(_resolve(each, values) for each in constant)
    return constant
