"""What the compatibility tests need from the machine: Node.js with the SDKs, and Chromium.

They are skipped, saying why, only when the tool is missing and TURNOUT_REQUIRE_SERVICES is not
set; with it set (CI), a missing tool is a failure (`services.skip_or_fail`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from services import skip_or_fail

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="session")
def node_sdks() -> Path:
    """tests/compat/node with its packages installed (scripts/test.sh installs them)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        skip_or_fail("Node.js/npm not installed: the JavaScript SDKs cannot run")
    if not (NODE_DIR / "node_modules" / "@segment" / "analytics-next").exists():
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE_DIR,
            check=True,
            timeout=600,
        )
    return NODE_DIR
