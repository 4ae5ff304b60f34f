"""SQLite storage of identities, custom ids, revocation times and Teams-extension / Entra assignments.

:class:`IdentityStore` owns one connection and is only ever used from one thread: the single worker of
:class:`StoreWorker`. That serialises every write (so concurrent requests cannot lose updates) and keeps
blocking database work off the event loop. ``None`` as the path gives an in-memory database (every
``:memory:`` connection is its own database, hence one owning connection); a file path gives a WAL-mode
database that survives restarts and tolerates another process reading it.

Opening checks the file: ``PRAGMA quick_check`` and the schema of this module's tables (other modules'
tables, such as Chat's ``chat_*``, are theirs to check). A problem is a :class:`StorageError` whose one-line
message names the path and what is wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeVar

from ._chat_store import create_chat_tables

__all__ = ["AssignmentRecord", "IdentityRecord", "IdentityStore", "StorageError", "StoreWorker"]

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
CREATE TABLE IF NOT EXISTS deleted_identities (
    id TEXT PRIMARY KEY,
    deleted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    object_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    client_ids TEXT,
    PRIMARY KEY (kind, scope, object_id)
);
"""

#: The tables this module owns, checked at open.
_TABLES: Final = ("identities", "meta", "deleted_identities", "assignments")

#: How long a write waits for another process's lock before the request fails with a 503.
DEFAULT_BUSY_TIMEOUT: Final = 5.0


class StorageError(Exception):
    """The database file cannot be used: its one-line message names the path and what is wrong."""


def _expected_columns() -> dict[str, list[tuple[str, str, int, int]]]:
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        return {table: _columns(db, table) for table in _TABLES}
    finally:
        db.close()


def _columns(db: sqlite3.Connection, table: str) -> list[tuple[str, str, int, int]]:
    # (name, declared type, not null, primary key position) of each column.
    return [(str(r[1]), str(r[2]).upper(), int(r[3]), int(r[5])) for r in db.execute(f'PRAGMA table_info("{table}")')]


_EXPECTED: Final = _expected_columns()

_COLUMNS: Final = "id, custom_id, created_at, last_token_issued_at, revoked_at"


@dataclass(frozen=True)
class AssignmentRecord:
    """One Teams-extension (``kind="teamsExtension"``) or Entra (``kind="entra"``) assignment."""

    kind: str
    tenant_id: str
    object_id: str
    principal_type: str
    client_ids: tuple[str, ...] | None

    @property
    def scope(self) -> str:
        """The key's tenant part: Teams-extension assignments are per tenant, Entra ones per resource."""
        return self.tenant_id if self.kind == "teamsExtension" else ""


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
        busy_timeout: seconds a write waits for another process's lock.

    Raises:
        StorageError: the file cannot be opened, is not a SQLite database, fails the integrity check, or
            has one of this module's tables with another schema.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = None if path is None else os.fspath(path)
        if self.path is not None and os.path.isdir(self.path):
            raise StorageError(f"The database {self.path} is a directory; give a file path.")
        try:
            # Autocommit mode: single statements commit on their own, multi-statement updates use an
            # explicit BEGIN IMMEDIATE so that a second process sharing the file waits instead of failing.
            self._db = sqlite3.connect(":memory:" if self.path is None else self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(self._describe(exc)) from None
        try:
            if self.path is not None:
                self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                # Checked before anything writes: a refused file is left exactly as it was.
                self._check()
                self._db.execute("PRAGMA journal_mode = WAL")
                # NORMAL is durable against application crashes in WAL mode; FULL would add an fsync
                # per request for power-loss durability an emulator does not need.
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
            self.chat = create_chat_tables(self._db)
        except sqlite3.Error as exc:
            self._db.close()
            raise StorageError(self._describe(exc)) from None
        except StorageError:
            self._db.close()
            raise

    def _describe(self, exc: sqlite3.Error) -> str:
        text = str(exc)
        if "unable to open" in text:
            folder = os.path.dirname(os.path.abspath(self.path or "."))
            hint = "its folder does not exist" if not os.path.isdir(folder) else "check that it is writable"
            return f"Cannot open the database {self.path}: {text} ({hint})."
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return f"The database {self.path} is not a valid SQLite database ({text}); use another file."
        if "readonly" in text or "read-only" in text:
            return f"The database {self.path} is read-only ({text}); the emulator needs to write it."
        return f"The database {self.path} cannot be used: {type(exc).__name__}: {text}."

    def _check(self) -> None:
        result = [str(row[0]) for row in self._db.execute("PRAGMA quick_check(1)")]
        if result != ["ok"]:
            raise StorageError(
                f"The database {self.path} failed its integrity check ({'; '.join(result)[:200]}); use another file."
            )
        existing = {str(row[0]) for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in _TABLES:
            if table in existing and _columns(self._db, table) != _EXPECTED[table]:
                names = ", ".join(column[0] for column in _columns(self._db, table))
                raise StorageError(
                    f"The database {self.path} has a table {table!r} with another schema (columns: {names}); "
                    "it was not written by this emulator: use another file."
                )

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
        """Create the identity if needed (Entra users) and record a token issued now.

        An identity re-created after a delete starts revoked at its deletion time, so tokens issued
        before the delete stay revoked.
        """
        self._db.execute(
            "INSERT INTO identities (id, created_at, last_token_issued_at, revoked_at) "
            "VALUES (?, ?, ?, (SELECT deleted_at FROM deleted_identities WHERE id = ?)) "
            "ON CONFLICT (id) DO UPDATE SET last_token_issued_at = excluded.last_token_issued_at",
            (identity_id, now, now, identity_id),
        )

    def revoke(self, identity_id: str, now: float) -> bool:
        """Revoke every token issued up to now; False when the identity does not exist."""
        cursor = self._db.execute("UPDATE identities SET revoked_at = ? WHERE id = ?", (now, identity_id))
        return cursor.rowcount > 0

    def delete(self, identity_id: str, now: float | None = None) -> bool:
        """Delete the identity (its custom id becomes free); False when it does not exist.

        With ``now``, the deletion time is kept so that a later re-creation of the same id (an Entra
        exchange derives it from the user) does not revive the tokens issued before.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cursor = self._db.execute("DELETE FROM identities WHERE id = ?", (identity_id,))
            deleted = cursor.rowcount > 0
            if deleted and now is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO deleted_identities (id, deleted_at) VALUES (?, ?)", (identity_id, now)
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return deleted

    # -- assignments -------------------------------------------------------------------------------

    @staticmethod
    def _assignment(row: tuple[object, ...]) -> AssignmentRecord:
        kind, tenant_id, object_id, principal_type, client_ids = row
        ids = None if client_ids is None else tuple(json.loads(str(client_ids)))
        return AssignmentRecord(str(kind), str(tenant_id), str(object_id), str(principal_type), ids)

    def get_assignment(self, kind: str, tenant_id: str | None, object_id: str) -> AssignmentRecord | None:
        """Return one assignment (``tenant_id`` None for Entra ones, which are keyed by object id only)."""
        row = self._db.execute(
            "SELECT kind, tenant_id, object_id, principal_type, client_ids FROM assignments "
            "WHERE kind = ? AND scope = ? AND object_id = ?",
            (kind, tenant_id or "", object_id),
        ).fetchone()
        return None if row is None else self._assignment(row)

    def put_assignment(self, record: AssignmentRecord) -> bool:
        """Create or replace an assignment; True when it was created."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            created = self._put(record)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return created

    def _put(self, record: AssignmentRecord) -> bool:
        key = (record.kind, record.scope, record.object_id)
        exists = self._db.execute(
            "SELECT 1 FROM assignments WHERE kind = ? AND scope = ? AND object_id = ?", key
        ).fetchone()
        client_ids = None if record.client_ids is None else json.dumps(list(record.client_ids))
        self._db.execute(
            "INSERT OR REPLACE INTO assignments VALUES (?, ?, ?, ?, ?, ?)",
            (*key, record.tenant_id, record.principal_type, client_ids),
        )
        return exists is None

    def delete_assignment(self, kind: str, tenant_id: str | None, object_id: str) -> bool:
        """Delete an assignment; False when there was none."""
        cursor = self._db.execute(
            "DELETE FROM assignments WHERE kind = ? AND scope = ? AND object_id = ?", (kind, tenant_id or "", object_id)
        )
        return cursor.rowcount > 0

    def list_assignments(self, kind: str) -> list[AssignmentRecord]:
        """Every assignment of a kind, ordered by object id."""
        rows = self._db.execute(
            "SELECT kind, tenant_id, object_id, principal_type, client_ids FROM assignments "
            "WHERE kind = ? ORDER BY object_id",
            (kind,),
        ).fetchall()
        return [self._assignment(row) for row in rows]

    def update_assignments(
        self, kind: str, changes: list[tuple[str, AssignmentRecord | None]]
    ) -> list[AssignmentRecord]:
        """Apply a bulk update in one transaction; return the assignments added or replaced."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            kept: list[AssignmentRecord] = []
            for object_id, record in changes:
                if record is None:
                    self._db.execute(
                        "DELETE FROM assignments WHERE kind = ? AND scope = '' AND object_id = ?", (kind, object_id)
                    )
                else:
                    self._put(record)
                    kept.append(record)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return kept

    def reset(self) -> None:
        """Delete every identity (with its tombstone), assignment and Chat row; keep the resource id."""
        tables = [
            str(row[0])
            for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'chat%'")
        ]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            # Foreign keys between the Chat tables are checked at commit, when every table is empty.
            self._db.execute("PRAGMA defer_foreign_keys = ON")
            for table in tables:
                self._db.execute(f'DELETE FROM "{table}"')  # noqa: S608 - names from sqlite_master
            self._db.execute("DELETE FROM identities")
            self._db.execute("DELETE FROM deleted_identities")
            self._db.execute("DELETE FROM assignments")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

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
        busy_timeout: seconds a write waits for another process's lock.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="acs-emulator-db")
        self._closed = False
        try:
            self._store: IdentityStore = self._executor.submit(
                lambda: IdentityStore(path, busy_timeout=busy_timeout)
            ).result()
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
