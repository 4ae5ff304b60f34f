"""SQLite storage of identities, custom ids and revocation times.

:class:`IdentityStore` owns one connection and is only ever used from one thread: the single worker of
:class:`StoreWorker`. That serialises every write (so concurrent requests cannot lose updates) and keeps
blocking database work off the event loop. ``None`` as the path gives an in-memory database (every
``:memory:`` connection is its own database, hence one owning connection); a file path gives a WAL-mode
database that survives restarts and tolerates another process reading it.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeVar

__all__ = ["IdentityRecord", "IdentityStore", "StoreWorker"]

T = TypeVar("T")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS identities (
    id TEXT PRIMARY KEY,
    custom_id TEXT UNIQUE,
    created_at REAL NOT NULL,
    last_token_issued_at REAL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_COLUMNS: Final = "id, custom_id, created_at, last_token_issued_at, revoked_at"


@dataclass(frozen=True)
class IdentityRecord:
    """One stored identity."""

    id: str
    custom_id: str | None
    created_at: float
    last_token_issued_at: float | None
    revoked_at: float | None


class IdentityStore:
    """The identity table behind one SQLite connection (single-threaded: see :class:`StoreWorker`).

    Args:
        path: a database file path, or None for an in-memory database.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = None if path is None else os.fspath(path)
        # Autocommit mode: single statements commit on their own, multi-statement updates use an
        # explicit BEGIN IMMEDIATE so that a second process sharing the file waits instead of failing.
        self._db = sqlite3.connect(":memory:" if self.path is None else self.path, isolation_level=None)
        if self.path is not None:
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable against application crashes in WAL mode; FULL would add an fsync
            # per request for power-loss durability an emulator does not need.
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._db.close()

    def resource_id(self, default: str, *, override: bool) -> str:
        """Return the resource id stored with the database, storing ``default`` when there is none.

        Args:
            default: the id to store when the database has none (or always, with ``override``).
            override: replace a stored id (the caller chose one explicitly).
        """
        verb = "INSERT OR REPLACE" if override else "INSERT OR IGNORE"
        self._db.execute(f"{verb} INTO meta (key, value) VALUES ('resource_id', ?)", (default,))
        row = self._db.execute("SELECT value FROM meta WHERE key = 'resource_id'").fetchone()
        return str(row[0])

    def create(self, new_id: str, custom_id: str | None, now: float, *, with_token: bool) -> IdentityRecord:
        """Create an identity, or return the one that already has ``custom_id``.

        Args:
            new_id: the id to use when a new identity is created.
            custom_id: the caller's custom id, if any.
            now: the creation time.
            with_token: a token is issued with it (sets ``last_token_issued_at``).
        """
        issued = now if with_token else None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if custom_id is not None:
                row = self._db.execute(
                    f"SELECT {_COLUMNS} FROM identities WHERE custom_id = ?",  # noqa: S608
                    (custom_id,),
                ).fetchone()
                if row is not None:
                    if with_token:
                        self._db.execute(
                            "UPDATE identities SET last_token_issued_at = ? WHERE id = ?",
                            (now, row[0]),
                        )
                        row = (*row[:3], now, row[4])
                    self._db.execute("COMMIT")
                    return IdentityRecord(*row)
            self._db.execute(
                "INSERT INTO identities (id, custom_id, created_at, last_token_issued_at) VALUES (?, ?, ?, ?)",
                (new_id, custom_id, now, issued),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return IdentityRecord(new_id, custom_id, now, issued, None)

    def get(self, identity_id: str) -> IdentityRecord | None:
        """Return the identity, or None when it is unknown or deleted."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM identities WHERE id = ?",  # noqa: S608
            (identity_id,),
        ).fetchone()
        return None if row is None else IdentityRecord(*row)

    def record_issue(self, identity_id: str, now: float) -> bool:
        """Record a token issued now; False when the identity does not exist."""
        cursor = self._db.execute("UPDATE identities SET last_token_issued_at = ? WHERE id = ?", (now, identity_id))
        return cursor.rowcount > 0

    def ensure(self, identity_id: str, now: float) -> None:
        """Create the identity if needed (Entra users) and record a token issued now."""
        self._db.execute(
            "INSERT INTO identities (id, created_at, last_token_issued_at) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET last_token_issued_at = excluded.last_token_issued_at",
            (identity_id, now, now),
        )

    def revoke(self, identity_id: str, now: float) -> bool:
        """Revoke every token issued up to now; False when the identity does not exist."""
        cursor = self._db.execute("UPDATE identities SET revoked_at = ? WHERE id = ?", (now, identity_id))
        return cursor.rowcount > 0

    def delete(self, identity_id: str) -> bool:
        """Delete the identity (its custom id becomes free); False when it does not exist."""
        cursor = self._db.execute("DELETE FROM identities WHERE id = ?", (identity_id,))
        return cursor.rowcount > 0

    def rows(self) -> list[IdentityRecord]:
        """Every stored identity, ordered by id (a test accessor: compare before/after snapshots)."""
        return [
            IdentityRecord(*row)
            for row in self._db.execute(
                f"SELECT {_COLUMNS} FROM identities ORDER BY id"  # noqa: S608
            ).fetchall()
        ]


class StoreWorker:
    """Runs :class:`IdentityStore` calls on one dedicated thread, for the event loop and for other threads.

    Args:
        path: the database path (None for in-memory).
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="acs-emulator-db")
        self._closed = False
        try:
            self._store: IdentityStore = self._executor.submit(IdentityStore, path).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("The emulator's database is closed.")

    async def call(self, fn: Callable[[IdentityStore], T]) -> T:
        """Run ``fn(store)`` on the database thread without blocking the event loop."""
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, self._store)

    def call_sync(self, fn: Callable[[IdentityStore], T]) -> T:
        """Run ``fn(store)`` on the database thread and wait for it (for code outside the loop)."""
        self._check_open()
        return self._executor.submit(fn, self._store).result()

    def close(self) -> None:
        """Close the connection and stop the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self._store.close).result()
        self._executor.shutdown(wait=True)
