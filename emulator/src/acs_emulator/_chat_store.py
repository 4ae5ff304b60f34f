"""SQLite storage of chat threads, participants, messages and read receipts (tables ``chat_*``).

:class:`ChatTables` shares the identity store's connection and its single database thread (see
``_store.StoreWorker``), so every chat operation runs serialised, and the caller's identity (deleted?
revoked?) is checked in the same call that reads or writes the thread. Each operation checks everything it
can refuse *before* its first write and writes inside one transaction: a refused request leaves the
database unchanged.

Messages get the service's ids: the creation time in milliseconds (made unique per thread), with a
per-thread ``sequenceId``. System messages (``participantAdded``, ``topicUpdated``, ``participantRemoved``)
are written by the operations that cause them, as the service does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Final

from ._chat_validation import ChatError, CreateThread, ParticipantIn, SendMessage, UpdateMessage, UpdateThread
from ._user_auth import Caller, CallerRefused, identity_verdict

__all__ = [
    "ChatTables",
    "InvalidParticipant",
    "MessageRecord",
    "ParticipantRecord",
    "ReadReceiptRecord",
    "ThreadItemRecord",
    "ThreadRecord",
    "create_chat_tables",
]

#: Each table's columns (name and type, in order) and its key.
_TABLES: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "chat_threads": (
        (
            "id TEXT",
            "topic TEXT NOT NULL",
            "created_on REAL NOT NULL",
            "created_by TEXT NOT NULL",
            "metadata TEXT",
            "retention TEXT",
            "last_message_on REAL NOT NULL",
            "last_seq INTEGER NOT NULL",
            "last_message_id INTEGER NOT NULL",
        ),
        "id",
    ),
    "chat_participants": (
        (
            "thread_id TEXT NOT NULL",
            "raw_id TEXT NOT NULL",
            "display_name TEXT",
            "share_history_time REAL",
            "metadata TEXT",
            "joined_on REAL NOT NULL",
            "position INTEGER NOT NULL",
        ),
        "thread_id, raw_id",
    ),
    "chat_messages": (
        (
            "thread_id TEXT NOT NULL",
            "id INTEGER NOT NULL",
            "seq INTEGER NOT NULL",
            "type TEXT NOT NULL",
            "sender TEXT",
            "sender_display_name TEXT",
            "message TEXT",
            "topic TEXT",
            "participants TEXT",
            "initiator TEXT",
            "metadata TEXT",
            "created_on REAL NOT NULL",
            "edited_on REAL",
            "deleted_on REAL",
            "version INTEGER NOT NULL",
        ),
        "thread_id, id",
    ),
    "chat_read_receipts": (
        (
            "thread_id TEXT NOT NULL",
            "raw_id TEXT NOT NULL",
            "message_id INTEGER NOT NULL",
            "read_on REAL NOT NULL",
        ),
        "thread_id, raw_id",
    ),
    "chat_repeatability": (
        ("caller TEXT NOT NULL", "request_id TEXT NOT NULL", "thread_id TEXT NOT NULL", "result TEXT NOT NULL"),
        "caller, request_id",
    ),
}
_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS chat_messages_by_seq ON chat_messages (thread_id, seq)",
    "CREATE INDEX IF NOT EXISTS chat_participants_by_user ON chat_participants (raw_id)",
)

_MESSAGE_COLUMNS: Final = (
    "id, seq, type, sender, sender_display_name, message, topic, participants, initiator, metadata, "
    "created_on, edited_on, deleted_on, version"
)


def create_chat_tables(db: sqlite3.Connection) -> ChatTables:
    """Create the ``chat_*`` tables (when missing), check their schema and return the accessor.

    Raises:
        sqlite3.DatabaseError: a ``chat_*`` table exists with other columns (a database written by
            another version of the emulator).
    """
    for name, (columns, key) in _TABLES.items():
        db.execute(f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(columns)}, PRIMARY KEY ({key}))")
        found = [(row[1], row[2]) for row in db.execute(f"PRAGMA table_info({name})")]
        expected = [tuple(column.split()[:2]) for column in columns]
        if found != expected:
            raise sqlite3.DatabaseError(
                f"The database's {name} table has columns {found}, expected {expected}: it was written by "
                "another version of the emulator; use another --database path."
            )
    for statement in _INDEXES:
        db.execute(statement)
    return ChatTables(db)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class ThreadRecord:
    """A thread's properties."""

    id: str
    topic: str
    created_on: float
    created_by: str
    metadata: dict[str, str] | None
    retention: dict[str, Any] | None


@dataclass(frozen=True)
class ThreadItemRecord:
    """A thread as ``list_chat_threads`` shows it."""

    id: str
    topic: str
    last_message_on: float


@dataclass(frozen=True)
class ParticipantRecord:
    """One participant of a thread."""

    raw_id: str
    display_name: str | None
    share_history_time: float | None
    metadata: dict[str, str] | None


@dataclass(frozen=True)
class MessageRecord:
    """One message (user or system)."""

    id: int
    seq: int
    type: str
    sender: str | None
    sender_display_name: str | None
    message: str | None
    topic: str | None
    participants: list[dict[str, Any]] | None
    initiator: str | None
    metadata: dict[str, str] | None
    created_on: float
    edited_on: float | None
    deleted_on: float | None
    version: int


@dataclass(frozen=True)
class ReadReceiptRecord:
    """A participant's latest read receipt."""

    raw_id: str
    message_id: int
    read_on: float


@dataclass(frozen=True)
class InvalidParticipant:
    """A participant a create or add request could not add (reported, not failed)."""

    raw_id: str
    code: str
    message: str


def _forbidden(message: str = "Permissions check failed.") -> ChatError:
    return ChatError(403, "Forbidden", message)


def _not_found(what: str, target: str) -> ChatError:
    return ChatError(404, "NotFound", f"The {what} was not found.", target)


def _participant_json(participant: ParticipantIn) -> dict[str, Any]:
    item: dict[str, Any] = {"rawId": participant.raw_id}
    if participant.display_name is not None:
        item["displayName"] = participant.display_name
    if participant.share_history_time is not None:
        item["shareHistoryTime"] = participant.share_history_time
    if participant.metadata is not None:
        item["metadata"] = participant.metadata
    return item


class ChatTables:
    """The chat operations over one connection (used only from the store's database thread).

    Args:
        db: the identity store's connection (autocommit mode).
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- checks --------------------------------------------------------------------------------------

    def _check_caller(self, caller: Caller) -> None:
        row = self._db.execute(
            "SELECT last_token_issued_at, revoked_at FROM identities WHERE id = ?", (caller.raw_id,)
        ).fetchone()
        verdict = identity_verdict(caller, row)
        if verdict is not None:
            raise CallerRefused(verdict)

    def _enter(self, caller: Caller, thread_id: str) -> tuple[tuple[Any, ...], float]:
        """Check the caller and their membership; return the thread row and when their history starts."""
        self._check_caller(caller)
        # One statement for the thread and the caller's membership: this runs before every operation.
        row = self._db.execute(
            "SELECT t.id, t.topic, t.created_on, t.created_by, t.metadata, t.retention, t.last_seq, "
            "t.last_message_id, p.joined_on, p.share_history_time FROM chat_threads t LEFT JOIN chat_participants p "
            "ON p.thread_id = t.id AND p.raw_id = ? WHERE t.id = ?",
            (caller.raw_id, thread_id),
        ).fetchone()
        if row is None:
            raise _not_found("chat thread", "chatThreadId")
        joined_on, share_from = row[8], row[9]
        if joined_on is None:
            raise _forbidden("The caller is not a participant of this chat thread.")
        return tuple(row[:8]), joined_on if share_from is None else min(share_from, joined_on)

    @staticmethod
    def _thread_record(row: Sequence[Any]) -> ThreadRecord:
        return ThreadRecord(row[0], row[1], row[2], row[3], _load(row[4]), _load(row[5]))

    # -- writing messages ----------------------------------------------------------------------------

    def _append(
        self,
        thread_id: str,
        now: float,
        kind: str,
        *,
        sender: str | None = None,
        sender_display_name: str | None = None,
        message: str | None = None,
        topic: str | None = None,
        participants: list[dict[str, Any]] | None = None,
        initiator: str | None = None,
        metadata: dict[str, str] | None = None,
        last: tuple[int, int] | None = None,
    ) -> int:
        """Write one message; ``last`` is the thread's ``(last_seq, last_message_id)`` when the caller has it."""
        last_seq: int
        last_id: int
        if last is None:
            last = self._db.execute(
                "SELECT last_seq, last_message_id FROM chat_threads WHERE id = ?", (thread_id,)
            ).fetchone()
            assert last is not None
        last_seq, last_id = last
        message_id = max(int(now * 1000), last_id + 1)
        # The id is the creation time in whole milliseconds, bumped to stay unique; the time itself is
        # kept exact so that a message is never older than the membership it was written after.
        created_on = max(now, message_id / 1000)
        seq = last_seq + 1
        self._db.execute(
            f"INSERT INTO chat_messages (thread_id, {_MESSAGE_COLUMNS}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
            (
                thread_id,
                message_id,
                seq,
                kind,
                sender,
                sender_display_name,
                message,
                topic,
                _dump(participants),
                initiator,
                _dump(metadata),
                created_on,
                message_id,
            ),
        )
        self._db.execute(
            "UPDATE chat_threads SET last_seq = ?, last_message_id = ?, last_message_on = ? WHERE id = ?",
            (seq, message_id, created_on, thread_id),
        )
        return message_id

    def _add_participants(
        self, thread_id: str, participants: Sequence[ParticipantIn], resource_prefix: str, now: float
    ) -> tuple[list[ParticipantIn], list[InvalidParticipant]]:
        added: list[ParticipantIn] = []
        invalid: list[InvalidParticipant] = []
        (position,) = self._db.execute(
            "SELECT COALESCE(MAX(position), 0) FROM chat_participants WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        for participant in participants:
            if not participant.raw_id.startswith(resource_prefix):
                invalid.append(InvalidParticipant(participant.raw_id, "403", "Permissions check failed"))
                continue
            exists = self._db.execute("SELECT 1 FROM identities WHERE id = ?", (participant.raw_id,)).fetchone()
            if exists is None:
                invalid.append(InvalidParticipant(participant.raw_id, "404", "Not found"))
                continue
            position += 1
            # Adding someone who is already a participant updates their properties (the service's upsert).
            self._db.execute(
                "INSERT INTO chat_participants (thread_id, raw_id, display_name, share_history_time, metadata, "
                "joined_on, position) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id, raw_id) DO UPDATE SET "
                "display_name = excluded.display_name, share_history_time = excluded.share_history_time, "
                "metadata = excluded.metadata",
                (
                    thread_id,
                    participant.raw_id,
                    participant.display_name,
                    participant.share_history_time,
                    _dump(participant.metadata),
                    now,
                    position,
                ),
            )
            added.append(participant)
        return added, invalid

    # -- threads -------------------------------------------------------------------------------------

    def create_thread(
        self,
        caller: Caller,
        request: CreateThread,
        *,
        new_id: str,
        request_id: str | None,
        resource_prefix: str,
        now: float,
    ) -> tuple[ThreadRecord, list[InvalidParticipant]]:
        """Create a thread with the caller and ``request.participants`` in it (idempotent per request id)."""
        self._check_caller(caller)
        if not caller.can_manage_threads:
            raise _forbidden("A chat.join token cannot create chat threads.")
        if request_id is not None:
            row = self._db.execute(
                "SELECT result FROM chat_repeatability WHERE caller = ? AND request_id = ?",
                (caller.raw_id, request_id),
            ).fetchone()
            if row is not None:
                saved = json.loads(row[0])
                thread = ThreadRecord(**saved["thread"])
                return thread, [InvalidParticipant(**item) for item in saved["invalid"]]
        with self._transaction():
            self._db.execute(
                "INSERT INTO chat_threads (id, topic, created_on, created_by, metadata, retention, last_message_on, "
                "last_seq, last_message_id) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0)",
                (new_id, request.topic, now, caller.raw_id, _dump(request.metadata), _dump(request.retention), now),
            )
            listed = {participant.raw_id for participant in request.participants}
            creator = () if caller.raw_id in listed else (ParticipantIn(caller.raw_id, None, None, None),)
            added, invalid = self._add_participants(new_id, (*creator, *request.participants), resource_prefix, now)
            self._append(
                new_id,
                now,
                "participantAdded",
                participants=[_participant_json(p) for p in added],
                initiator=caller.raw_id,
            )
            self._append(new_id, now, "topicUpdated", topic=request.topic, initiator=caller.raw_id)
            thread = ThreadRecord(new_id, request.topic, now, caller.raw_id, request.metadata, request.retention)
            if request_id is not None:
                saved_result = {"thread": asdict(thread), "invalid": [asdict(item) for item in invalid]}
                self._db.execute(
                    "INSERT INTO chat_repeatability (caller, request_id, thread_id, result) VALUES (?, ?, ?, ?)",
                    (caller.raw_id, request_id, new_id, json.dumps(saved_result)),
                )
        return thread, invalid

    def list_threads(
        self, caller: Caller, *, start_time: float | None, after: tuple[float, str] | None, limit: int
    ) -> list[ThreadItemRecord]:
        """The caller's threads, most recent activity first, from ``start_time`` on (``limit + 1`` at most)."""
        self._check_caller(caller)
        query = (
            "SELECT t.id, t.topic, t.last_message_on FROM chat_threads t JOIN chat_participants p "
            "ON p.thread_id = t.id WHERE p.raw_id = ? AND t.last_message_on >= ?"
        )
        params: list[Any] = [caller.raw_id, -1.0 if start_time is None else start_time]
        if after is not None:
            query += " AND (t.last_message_on < ? OR (t.last_message_on = ? AND t.id < ?))"
            params += [after[0], after[0], after[1]]
        query += " ORDER BY t.last_message_on DESC, t.id DESC LIMIT ?"
        params.append(limit + 1)
        return [ThreadItemRecord(*row) for row in self._db.execute(query, params)]

    def get_thread(self, caller: Caller, thread_id: str) -> ThreadRecord:
        """The thread's properties (the caller must be a participant)."""
        thread, _ = self._enter(caller, thread_id)
        return self._thread_record(thread)

    def update_thread(self, caller: Caller, thread_id: str, update: UpdateThread, now: float) -> None:
        """Change the topic (a ``topicUpdated`` message), the metadata or the retention policy."""
        thread, _ = self._enter(caller, thread_id)
        with self._transaction():
            if update.topic is not None and update.topic != thread[1]:
                self._db.execute("UPDATE chat_threads SET topic = ? WHERE id = ?", (update.topic, thread_id))
                self._append(thread_id, now, "topicUpdated", topic=update.topic, initiator=caller.raw_id)
            if update.metadata is not None:
                self._db.execute(
                    "UPDATE chat_threads SET metadata = ? WHERE id = ?", (_dump(update.metadata), thread_id)
                )
            if update.retention is not None:
                self._db.execute(
                    "UPDATE chat_threads SET retention = ? WHERE id = ?", (_dump(update.retention), thread_id)
                )

    def delete_thread(self, caller: Caller, thread_id: str) -> None:
        """Delete the thread and everything in it (a ``chat``-scope participant only)."""
        self._enter(caller, thread_id)
        if not caller.can_manage_threads:
            raise _forbidden("A chat.join token cannot delete chat threads.")
        with self._transaction():
            for table in ("chat_messages", "chat_participants", "chat_read_receipts", "chat_repeatability"):
                self._db.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))  # noqa: S608
            self._db.execute("DELETE FROM chat_threads WHERE id = ?", (thread_id,))

    # -- messages ------------------------------------------------------------------------------------

    def send_message(self, caller: Caller, thread_id: str, request: SendMessage, now: float) -> int:
        """Append a message from the caller; return its id."""
        # Checked inside the transaction: the counters read with the thread cannot go stale before the write.
        with self._transaction():
            thread, _ = self._enter(caller, thread_id)
            return self._append(
                thread_id,
                now,
                request.type,
                last=(thread[6], thread[7]),
                sender=caller.raw_id,
                sender_display_name=request.sender_display_name,
                message=request.content,
                metadata=request.metadata,
            )

    @staticmethod
    def _message(row: Sequence[Any]) -> MessageRecord:
        return MessageRecord(
            id=row[0],
            seq=row[1],
            type=row[2],
            sender=row[3],
            sender_display_name=row[4],
            message=row[5],
            topic=row[6],
            participants=_load(row[7]),
            initiator=row[8],
            metadata=_load(row[9]),
            created_on=row[10],
            edited_on=row[11],
            deleted_on=row[12],
            version=row[13],
        )

    def list_messages(
        self, caller: Caller, thread_id: str, *, start_time: float | None, before_seq: int | None, limit: int
    ) -> list[MessageRecord]:
        """Messages the caller may see, newest first (``limit + 1`` at most)."""
        _, history_from = self._enter(caller, thread_id)
        since = history_from if start_time is None else max(start_time, history_from)
        query = f"SELECT {_MESSAGE_COLUMNS} FROM chat_messages WHERE thread_id = ? AND created_on >= ?"  # noqa: S608
        params: list[Any] = [thread_id, since]
        if before_seq is not None:
            query += " AND seq < ?"
            params.append(before_seq)
        query += " ORDER BY seq DESC LIMIT ?"
        params.append(limit + 1)
        return [self._message(row) for row in self._db.execute(query, params)]

    def _message_row(self, thread_id: str, message_id: int) -> MessageRecord:
        row = self._db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM chat_messages WHERE thread_id = ? AND id = ?",  # noqa: S608
            (thread_id, message_id),
        ).fetchone()
        if row is None:
            raise _not_found("chat message", "chatMessageId")
        return self._message(row)

    def get_message(self, caller: Caller, thread_id: str, message_id: int) -> MessageRecord:
        """One message (deleted ones come back with ``deletedOn`` and no content)."""
        _, history_from = self._enter(caller, thread_id)
        message = self._message_row(thread_id, message_id)
        if message.created_on < history_from:
            raise _not_found("chat message", "chatMessageId")
        return message

    def _own_message(self, caller: Caller, thread_id: str, message_id: int) -> MessageRecord:
        self._enter(caller, thread_id)
        message = self._message_row(thread_id, message_id)
        if message.deleted_on is not None:
            raise _not_found("chat message", "chatMessageId")
        if message.sender != caller.raw_id:
            raise _forbidden("Only the sender of a message can change or delete it.")
        return message

    def update_message(
        self, caller: Caller, thread_id: str, message_id: int, update: UpdateMessage, now: float
    ) -> None:
        """Edit the caller's own message (content and/or metadata)."""
        message = self._own_message(caller, thread_id, message_id)
        version = max(int(now * 1000), message.version + 1)
        self._db.execute(
            "UPDATE chat_messages SET message = ?, metadata = ?, edited_on = ?, version = ? "
            "WHERE thread_id = ? AND id = ?",
            (
                message.message if update.content is None else update.content,
                _dump(message.metadata if update.metadata is None else update.metadata),
                now,
                version,
                thread_id,
                message_id,
            ),
        )

    def delete_message(self, caller: Caller, thread_id: str, message_id: int, now: float) -> None:
        """Delete the caller's own message: it stays in the list with ``deletedOn`` and no content."""
        message = self._own_message(caller, thread_id, message_id)
        self._db.execute(
            "UPDATE chat_messages SET message = NULL, metadata = NULL, deleted_on = ?, version = ? "
            "WHERE thread_id = ? AND id = ?",
            (now, max(int(now * 1000), message.version + 1), thread_id, message_id),
        )

    # -- participants --------------------------------------------------------------------------------

    def list_participants(self, caller: Caller, thread_id: str, *, skip: int, limit: int) -> list[ParticipantRecord]:
        """Participants in the order they joined (``limit + 1`` at most, from ``skip``)."""
        self._enter(caller, thread_id)
        rows = self._db.execute(
            "SELECT raw_id, display_name, share_history_time, metadata FROM chat_participants "
            "WHERE thread_id = ? ORDER BY position LIMIT ? OFFSET ?",
            (thread_id, limit + 1, skip),
        )
        return [ParticipantRecord(row[0], row[1], row[2], _load(row[3])) for row in rows]

    def add_participants(
        self,
        caller: Caller,
        thread_id: str,
        participants: Sequence[ParticipantIn],
        *,
        resource_prefix: str,
        now: float,
    ) -> list[InvalidParticipant]:
        """Add participants (a ``participantAdded`` message); return the ones that could not be added."""
        self._enter(caller, thread_id)
        if not caller.can_manage_participants:
            raise _forbidden("A chat.join.limited token cannot add participants.")
        with self._transaction():
            added, invalid = self._add_participants(thread_id, participants, resource_prefix, now)
            if added:
                self._append(
                    thread_id,
                    now,
                    "participantAdded",
                    participants=[_participant_json(p) for p in added],
                    initiator=caller.raw_id,
                )
        return invalid

    def remove_participant(self, caller: Caller, thread_id: str, raw_id: str, now: float) -> None:
        """Remove a participant (a ``participantRemoved`` message); anyone may remove themselves."""
        self._enter(caller, thread_id)
        if raw_id != caller.raw_id and not caller.can_manage_participants:
            raise _forbidden("A chat.join.limited token cannot remove other participants.")
        row = self._db.execute(
            "SELECT display_name, share_history_time, metadata FROM chat_participants "
            "WHERE thread_id = ? AND raw_id = ?",
            (thread_id, raw_id),
        ).fetchone()
        if row is None:
            raise _not_found("participant", "participantCommunicationIdentifier")
        removed = ParticipantIn(raw_id, row[0], row[1], _load(row[2]))
        with self._transaction():
            self._db.execute("DELETE FROM chat_participants WHERE thread_id = ? AND raw_id = ?", (thread_id, raw_id))
            self._db.execute("DELETE FROM chat_read_receipts WHERE thread_id = ? AND raw_id = ?", (thread_id, raw_id))
            self._append(
                thread_id,
                now,
                "participantRemoved",
                participants=[_participant_json(removed)],
                initiator=caller.raw_id,
            )

    # -- read receipts and typing --------------------------------------------------------------------

    def send_read_receipt(self, caller: Caller, thread_id: str, message_id: int, now: float) -> None:
        """Record that the caller has read up to ``message_id`` (a message of this thread)."""
        _, history_from = self._enter(caller, thread_id)
        message = self._message_row(thread_id, message_id)
        if message.created_on < history_from:
            raise _not_found("chat message", "chatMessageId")
        self._db.execute(
            "INSERT INTO chat_read_receipts (thread_id, raw_id, message_id, read_on) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (thread_id, raw_id) DO UPDATE SET "
            "message_id = excluded.message_id, read_on = excluded.read_on",
            (thread_id, caller.raw_id, message_id, now),
        )

    def list_read_receipts(self, caller: Caller, thread_id: str, *, skip: int, limit: int) -> list[ReadReceiptRecord]:
        """Each participant's latest read receipt (``limit + 1`` at most, from ``skip``)."""
        self._enter(caller, thread_id)
        rows = self._db.execute(
            "SELECT raw_id, message_id, read_on FROM chat_read_receipts WHERE thread_id = ? "
            "ORDER BY read_on DESC, raw_id LIMIT ? OFFSET ?",
            (thread_id, limit + 1, skip),
        )
        return [ReadReceiptRecord(*row) for row in rows]

    def check_participant(self, caller: Caller, thread_id: str) -> None:
        """Raise unless the caller may act in the thread (typing notifications are not stored)."""
        self._enter(caller, thread_id)

    # -- inspection ----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every ``chat_*`` table, ordered (tests compare snapshots before and after)."""
        return {
            name: [tuple(row) for row in self._db.execute(f"SELECT * FROM {name} ORDER BY 1, 2")]  # noqa: S608
            for name in _TABLES
        }
