"""Emptying a SQLite WAL file, so that no old page image of deleted data stays in it.

A SQLite database in WAL mode keeps every changed page in its `-wal` file until a checkpoint
copies it back and the file is reset; the page images written before a deletion are still
there. A TRUNCATE checkpoint copies everything and truncates the file to zero bytes, but only
once no reader is using an older snapshot, so it is retried for a while.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

ATTEMPTS = 100
PAUSE = 0.05  # seconds between attempts while readers hold the WAL


def truncate_wal(connect: Callable[[], sqlite3.Connection]) -> bool:
    """Checkpoint and empty the WAL through a connection of its own; False if it stayed busy."""
    conn = connect()
    try:
        for _ in range(ATTEMPTS):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return True
            time.sleep(PAUSE)
        return False
    finally:
        conn.close()
