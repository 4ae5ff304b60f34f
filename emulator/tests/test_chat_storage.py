"""Chat data in the SQLite store: across a restart with a database file, and a foreign schema refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from acs_emulator import Emulator
from acs_emulator._store import StorageError
from chat_support import create_user, identifier, issue_token, request, thread_path, with_version

VERSION = "2025-03-15"


def test_threads_and_messages_survive_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "acs.db"
    emu = Emulator(database=database)
    with emu:
        alice, bob = create_user(emu), create_user(emu)
        token = issue_token(emu, alice)
        body = {"topic": "Kept", "participants": [{"communicationIdentifier": identifier(bob)}], "metadata": {"a": "b"}}
        created = request(emu, "POST", with_version("/chat/threads", VERSION), body, token=token)
        assert created.status == 201
        thread_id = created.json()["chatThread"]["id"]
        for text in ("one", "two"):
            sent = request(
                emu, "POST", with_version(thread_path(thread_id, "/messages"), VERSION), {"content": text}, token=token
            )
            assert sent.status == 201
        before = emu._require_store().call_sync(lambda s: s.chat.snapshot())
    # Another emulator process on the same file: a new signing key, so new tokens, same data.
    with Emulator(database=database) as again:
        assert again._require_store().call_sync(lambda s: s.chat.snapshot()) == before
        bob_token = issue_token(again, bob)
        listed = request(again, "GET", with_version(thread_path(thread_id, "/messages"), VERSION), token=bob_token)
        assert listed.status == 200
        texts = [m["content"]["message"] for m in listed.json()["value"] if m["type"] == "text"]
        assert texts == ["two", "one"]
        props = request(again, "GET", with_version(thread_path(thread_id), VERSION), token=bob_token).json()
        assert props["metadata"] == {"a": "b"}
        assert props["topic"] == "Kept"
        # The old run's token was signed by another key: refused.
        assert request(again, "GET", with_version("/chat/threads", VERSION), token=token).status == 401


def test_a_chat_table_with_another_schema_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "foreign.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE chat_messages (thread_id TEXT, body TEXT)")
    db.close()
    with pytest.raises(StorageError, match="chat_messages"):
        Emulator(database=database).start()
