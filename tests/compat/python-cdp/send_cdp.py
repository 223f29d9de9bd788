"""Send one person's calls through Customer.io's Data Pipelines SDK for Python, pointed at
Turnout by `host` alone.

Run in its own process with `packages/` and `tests/compat` on the path: the SDK installs a
top-level `customerio` package that replaces the Track API client of the same name, so the two
cannot share one environment. Usage: python send_cdp.py <turnout url> <write key> <user id>
"""

from __future__ import annotations

import sys
from typing import Any

from customerio.analytics import Client
from sdk_calls import send_everything


def main() -> None:
    url, write_key, user = sys.argv[1:4]
    errors: list[Any] = []
    client = Client(write_key, host=url, on_error=lambda error, batch: errors.append(error))
    send_everything(client, user)
    if errors:
        sys.exit(f"errors: {errors!r}")


if __name__ == "__main__":
    main()
