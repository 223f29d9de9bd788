"""Playbook functions: Python the configuration file's author writes for what rules cannot say.

`function = "functions/orders.py:split_order"` names a file (relative to the configuration
file's directory) and a callable in it. The file is loaded when the playbook is compiled, so a
missing file or a syntax error stops the playbook from loading instead of failing messages later.
The function runs in Turnout's own process with its rights: only the configuration file may name
one (a playbook saved through the management API or the dashboard may not).

The function is called with the message as a dict and returns the message (changed or not),
None (drop it for this connection) or a list of messages (zero or more, to split one call into
several). Anything it raises, or any other return, is reported with its traceback and the lane
dead-letters the message.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

Function = Callable[[dict[str, Any]], Any]


def load_function(spec: str, base_dir: Path) -> Function:
    """The callable named by `spec` (`path/to/file.py:name`); ValueError saying what is wrong."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f'expected "path/to/file.py:function_name", got {spec!r}')
    file_text, _, name = spec.rpartition(":")
    if not file_text.endswith(".py"):
        raise ValueError(f"{file_text!r} is not a .py file (functions are loaded from files)")
    if not name.isidentifier():
        raise ValueError(f"{name!r} is not a Python function name")
    path = (base_dir / file_text).resolve()
    if not path.is_file():
        raise ValueError(f"no file {path}")
    module_name = "turnout_playbook_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"{path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(module_spec)
    # Registered while it runs, as an import would: dataclasses and typing look a module up.
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ValueError(f"loading {path} failed:\n{user_traceback(exc)}") from None
    function = getattr(module, name, None)
    if function is None:
        raise ValueError(f"{path} has no {name!r}")
    if not callable(function):
        raise ValueError(f"{name!r} in {path} is not a function")
    return function


def user_traceback(exc: BaseException) -> str:
    """The traceback from the user's code on: the engine's own frames say nothing to them."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and _ours(tb):
        tb = tb.tb_next
    if tb is None:  # nothing of theirs ran (a syntax error): the error says where
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def _ours(tb: TracebackType) -> bool:
    """A frame of Turnout or of Python's import machinery, not of the user's file."""
    name = tb.tb_frame.f_globals.get("__name__", "")
    return name.startswith("turnout.") or tb.tb_frame.f_code.co_filename.startswith("<frozen")
