"""`interface storage`: a private key-value store in sqlite3, scoped to one (plugin, connection).

Every write is its own transaction with `synchronous=FULL`, so it is on disk when the call
returns (a refresh token rotated by the plugin survives a crash one instruction later).
`compare-and-swap` runs under `BEGIN IMMEDIATE`: of two workers holding the same token, exactly
one rotates it. Quotas as in the Rust host: 1024 keys and 64 KiB per value per connection.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Callable, Optional, TypeVar

from wasmtime.component import Variant

T = TypeVar("T")

SCHEMA = """CREATE TABLE IF NOT EXISTS plugin_storage (
    plugin TEXT NOT NULL,
    connection TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (plugin, connection, key)
)"""


@dataclass(frozen=True)
class Quota:
    max_keys: int = 1024
    max_value_bytes: int = 64 * 1024


class StorageCapability:
    def __init__(self, path: str, plugin: str, connection: str, quota: Quota = Quota()):
        self.plugin, self.connection, self.quota = plugin, connection, quota
        # Autocommit mode: transactions are explicit below.
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- WIT functions: ok value bare, `storage-error` as a Variant ---------------------------

    def get(self, _store: object, key: str) -> object:
        return self._guard(lambda: self._read(key))

    def set(self, _store: object, key: str, value: str) -> object:
        return self._guard(lambda: self._in_tx(lambda: self._write(key, value)))

    def delete(self, _store: object, key: str) -> object:
        return self._guard(lambda: self._in_tx(lambda: self._write(key, None)))

    def list_keys(self, _store: object, prefix: str) -> object:
        def run() -> list[str]:
            rows = self.db.execute(
                "SELECT key FROM plugin_storage WHERE plugin = ? AND connection = ?"
                " AND substr(key, 1, length(?)) = ? ORDER BY key",
                (self.plugin, self.connection, prefix, prefix),
            )
            return [r[0] for r in rows]

        return self._guard(run)

    def compare_and_swap(
        self, _store: object, key: str, expected: Optional[str], new: Optional[str]
    ) -> object:
        def swap() -> bool:
            if self._read(key) != expected:
                return False
            self._write(key, new)
            return True

        return self._guard(lambda: self._in_tx(swap))

    # -- helpers ------------------------------------------------------------------------------

    def _guard(self, run: Callable[[], T]) -> object:
        try:
            return run()
        except QuotaExceeded as e:
            return Variant("quota-exceeded", str(e))
        except sqlite3.Error as e:
            return Variant("unavailable", f"the plugin store failed: {e}")

    def _in_tx(self, run: Callable[[], T]) -> T:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            out = run()
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return out

    def _read(self, key: str) -> Optional[str]:
        row = self.db.execute(
            "SELECT value FROM plugin_storage WHERE plugin = ? AND connection = ? AND key = ?",
            (self.plugin, self.connection, key),
        ).fetchone()
        return row[0] if row else None

    def _write(self, key: str, value: Optional[str]) -> None:
        scope = (self.plugin, self.connection)
        if value is None:
            self.db.execute(
                "DELETE FROM plugin_storage WHERE plugin = ? AND connection = ? AND key = ?",
                (*scope, key),
            )
            return
        if len(value.encode()) > self.quota.max_value_bytes:
            raise QuotaExceeded(f"a value is limited to {self.quota.max_value_bytes} bytes")
        count, exists = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(key = ?), 0) FROM plugin_storage"
            " WHERE plugin = ? AND connection = ?",
            (key, *scope),
        ).fetchone()
        if not exists and count >= self.quota.max_keys:
            raise QuotaExceeded(f"a connection is limited to {self.quota.max_keys} keys")
        self.db.execute(
            "INSERT INTO plugin_storage (plugin, connection, key, value) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (plugin, connection, key) DO UPDATE SET value = excluded.value",
            (*scope, key, value),
        )


class QuotaExceeded(Exception):
    pass
