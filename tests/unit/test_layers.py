"""The layers keep to their places: the web layer calls the management services and never the
running parts, the services never reach back into the web layer, and only `app.py` builds them.

Read from the source files, so an import hidden under `TYPE_CHECKING` or inside a function
counts as much as one at the top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "turnout"
SERVICES = {"Connections", "DeadLetters", "Messages", "Playbooks", "Services", "Sources"}
# What the web layer must reach only through the services: the wiring and the running parts.
NOT_FOR_WEB = (
    "turnout.app",
    "turnout.cli",
    "turnout.delivery",
    "turnout.ingest",
    "turnout.log",
    "turnout.store.postgres",
    "turnout.store.sqlite",
    "turnout.tap",
)


def _modules(folder: Path) -> list[Path]:
    found = sorted(folder.rglob("*.py"))
    assert found, folder
    return found


def _imports(path: Path) -> list[str]:
    """Every module `path` imports, anywhere in it, as dotted names (`from a import b` gives
    both `a` and `a.b`: `b` may be a module)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _offences(folder: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(SRC)}: {name}"
        for path in _modules(folder)
        for name in _imports(path)
        if _within(name, forbidden)
    ]


def test_no_web_module_imports_the_app_or_the_running_parts() -> None:
    assert _offences(SRC / "web", NOT_FOR_WEB) == []


def test_the_web_layer_reaches_the_services() -> None:
    imported = {name for path in _modules(SRC / "web") for name in _imports(path)}
    assert "turnout.manage.services.Services" in imported


def test_the_services_never_import_the_web_layer_the_cli_or_the_app() -> None:
    forbidden = ("turnout.web", "turnout.cli", "turnout.app")
    assert _offences(SRC / "manage", forbidden) == []


def test_the_services_are_built_in_app_py_alone() -> None:
    builders: list[str] = []
    for path in _modules(SRC):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if called in SERVICES:
                builders.append(f"{path.relative_to(SRC)}: {called}")
    assert sorted(set(builders)) == [f"app.py: {name}" for name in sorted(SERVICES)]


def _names_nats(name: str) -> bool:
    """`nats`, `nats.js.kv`, and the log's own NATS modules (`turnout.log.nats_ownership`)."""
    return any(part.startswith("nats") for part in name.split("."))


def test_delivery_never_imports_nats() -> None:
    """Delivery works over the log and coordinator contracts: the NATS log and its coordination
    live in `log/`, and `app.py` hands them in. Checked in the source, and in a fresh interpreter
    that imports every delivery module (an import made through another module counts too)."""
    named = [
        f"{path.relative_to(SRC)}: {name}"
        for path in _modules(SRC / "delivery")
        for name in _imports(path)
        if _names_nats(name)
    ]
    assert named == []
    script = (
        "import importlib, pkgutil, sys, turnout.delivery as d\n"
        "for m in pkgutil.iter_modules(d.__path__):\n"
        "    importlib.import_module('turnout.delivery.' + m.name)\n"
        "print(sorted(n for n in sys.modules if any(p.startswith('nats') for p in n.split('.'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == "[]"
