"""Nothing outside `destinations/` names a particular destination: the registry is the one place
that does, so a new destination needs no change in the dashboard, the API, the CLI or delivery."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "turnout"
TESTS = Path(__file__).resolve().parents[1]
NAMED = re.compile(r"customer\.?io", re.IGNORECASE)
GENERIC = [SRC / "web", SRC / "delivery", SRC / "cli.py", SRC / "app.py"]


def _files() -> list[Path]:
    found: list[Path] = []
    for place in GENERIC:
        found += [place] if place.is_file() else sorted(p for p in place.rglob("*") if p.is_file())
    return [p for p in found if "__pycache__" not in p.parts]


def test_the_generic_parts_never_name_a_destination() -> None:
    files = _files()
    assert any(p.suffix == ".html" for p in files)  # templates are covered
    assert any(p.suffix == ".css" for p in files)  # and static files
    named = [
        f"{path.relative_to(SRC)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if NAMED.search(line)
    ]
    assert named == []


def test_init_offers_every_registered_destination_a_plugin_s_too(tmp_path: Path) -> None:
    target = tmp_path / "turnout.toml"
    env = {"TURNOUT_DESTINATION_MODULES": "support_destinations.echo", "PYTHONPATH": str(TESTS)}
    result = subprocess.run(
        [sys.executable, "-m", "turnout", "init", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_base_env(), **env},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "destinations in it: customerio, echo, webhook"
    text = target.read_text()
    assert text.count("\n[[connections]]\n") == 1  # the first destination: active
    assert text.count("\n# [[connections]]\n") == 2  # the others: to uncomment
    assert '# destination = "echo"' in text
    assert '# Token (required). Written with each line.\n# token = "env:ECHO_TOKEN"\n' in text
    assert "# Labels: name = value pairs. Added to each line.\n" in text
    assert "# [connections.settings.labels]\n" in text


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "TURNOUT_DESTINATION_MODULES"}
