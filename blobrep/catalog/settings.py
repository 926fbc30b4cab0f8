"""Settings: small named values the deployment keeps beside its metadata (text to text)."""

from __future__ import annotations

import sqlite3


def get_setting(connection: sqlite3.Connection, key: str) -> str | None:
    """The value stored under ``key``, or None if it was never set."""
    row = connection.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row["value"])


def set_setting(connection: sqlite3.Connection, key: str, value: str) -> None:
    """Store ``value`` under ``key``, replacing what was there."""
    connection.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
