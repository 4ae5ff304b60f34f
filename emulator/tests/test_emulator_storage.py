"""Storage: persistence across restarts, custom ids, and concurrent creation that loses nothing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from azure.communication.identity import CommunicationIdentityClient
from azure.core.credentials import AzureKeyCredential

from acs_emulator import Emulator
from acs_emulator._store import IdentityStore, StoreWorker
from emulator_support import PREVIEW, VERSION, path_id, send

KEY = "ZW11bGF0b3ItdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE="


def test_a_database_file_survives_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "identities.db"
    with Emulator(KEY, database=database) as first:
        resource_id = first.resource_id
        kept = send(first.port, "POST", f"/identities?api-version={PREVIEW}", {"customId": "carol"}, key=KEY)
        dropped = send(first.port, "POST", f"/identities?api-version={VERSION}", {}, key=KEY)
        revoked = send(first.port, "POST", f"/identities?api-version={VERSION}", {}, key=KEY)
        kept_id = kept.json()["identity"]["id"]
        dropped_id = dropped.json()["identity"]["id"]
        revoked_id = revoked.json()["identity"]["id"]
        assert (
            send(first.port, "DELETE", f"/identities/{path_id(dropped_id)}?api-version={VERSION}", key=KEY).status
            == 204
        )
        target = f"/identities/{path_id(revoked_id)}/:revokeAccessTokens?api-version={VERSION}"
        assert send(first.port, "POST", target, key=KEY).status == 204
        rows_before = first._identity_rows()
    assert first.unexpected_errors == 0
    # The file is a WAL-mode SQLite database.
    with sqlite3.connect(database) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    with Emulator(KEY, database=database) as second:
        assert second.resource_id == resource_id  # stored with the database
        assert second._identity_rows() == rows_before
        assert {row.id for row in rows_before} == {kept_id, revoked_id}
        assert next(r for r in rows_before if r.id == revoked_id).revoked_at is not None
        # Same custom id again -> the same identity, after the restart too.
        again = send(second.port, "POST", f"/identities?api-version={PREVIEW}", {"customId": "carol"}, key=KEY)
        assert again.json()["identity"]["id"] == kept_id
        gone = send(second.port, "GET", f"/identities/{path_id(dropped_id)}?api-version={PREVIEW}", key=KEY)
        assert gone.status == 404


def test_an_explicit_resource_id_replaces_the_stored_one(tmp_path: Path) -> None:
    database = tmp_path / "ids.db"
    with Emulator(KEY, database=database, resource_id="11111111-2222-3333-4444-555555555555") as emu:
        assert emu.resource_id == "11111111-2222-3333-4444-555555555555"
    with Emulator(KEY, database=database, resource_id="AAAAAAAA-2222-3333-4444-555555555555") as emu:
        assert emu.resource_id == "aaaaaaaa-2222-3333-4444-555555555555"
        created = send(emu.port, "POST", f"/identities?api-version={VERSION}", {}, key=KEY)
        assert created.json()["identity"]["id"].startswith("8:acs:aaaaaaaa-2222-")


def test_custom_id_returns_the_same_identity_and_records_tokens(emulator: Emulator) -> None:
    port, key = emulator.port, emulator.access_key
    first = send(port, "POST", f"/identities?api-version={PREVIEW}", {"customId": "dave"}, key=key)
    assert first.status == 201
    assert (
        "lastTokenIssuedAt"
        not in send(
            port, "GET", f"/identities/{path_id(first.json()['identity']['id'])}?api-version={PREVIEW}", key=key
        ).json()
    )
    second = send(
        port,
        "POST",
        f"/identities?api-version={PREVIEW}",
        {"customId": "dave", "createTokenWithScopes": ["chat"]},
        key=key,
    )
    assert second.json()["identity"] == first.json()["identity"]
    assert "accessToken" in second.json()
    fetched = send(
        port, "GET", f"/identities/{path_id(first.json()['identity']['id'])}?api-version={PREVIEW}", key=key
    ).json()
    assert fetched["customId"] == "dave"
    assert fetched["lastTokenIssuedAt"].endswith("+00:00")  # the service's form: 7 digits, +00:00
    assert len(emulator._identity_rows()) == 1
    # After a delete the custom id is free again: a new identity.
    raw_id = first.json()["identity"]["id"]
    assert send(port, "DELETE", f"/identities/{path_id(raw_id)}?api-version={VERSION}", key=key).status == 204
    third = send(port, "POST", f"/identities?api-version={PREVIEW}", {"customId": "dave"}, key=key)
    assert third.json()["identity"]["id"] != raw_id


@pytest.mark.parametrize("database", [None, "file"])
def test_concurrent_creation_loses_nothing(tmp_path: Path, database: str | None) -> None:
    path = tmp_path / "concurrent.db" if database else None
    threads, per_thread = 16, 12
    with Emulator(database=path) as emu:
        client = CommunicationIdentityClient(emu.endpoint, AzureKeyCredential(emu.access_key))
        created: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()
        barrier = threading.Barrier(threads)

        def work(n: int) -> None:
            try:
                barrier.wait()
                for i in range(per_thread):
                    if i % 3 == 0:
                        # Racing creations of one custom id must all get the same identity.
                        reply = send(
                            emu.port,
                            "POST",
                            f"/identities?api-version={PREVIEW}",
                            {"customId": f"shared-{i}"},
                            key=emu.access_key,
                        )
                        raw_id = reply.json()["identity"]["id"]
                    else:
                        raw_id = client.create_user().properties["id"]
                    with lock:
                        created.append(raw_id)
            except BaseException as exc:  # collected and re-raised in the main thread
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert not errors
        rows = emu._identity_rows()
        custom_rows = {row.id: row.custom_id for row in rows if row.custom_id}
        plain = [raw for raw in created if raw not in custom_rows]
        assert set(custom_rows.values()) == {f"shared-{i}" for i in range(0, per_thread, 3)}
        # Every racing creation of one custom id got that id's single identity.
        assert {raw for raw in created if raw in custom_rows} == set(custom_rows)
        assert len(plain) == len(set(plain)) == threads * (per_thread - per_thread // 3)
        assert {row.id for row in rows} == set(created)
        assert len(rows) == len(plain) + len(custom_rows)
        assert emu.unexpected_errors == 0


def test_store_worker_refuses_calls_after_close() -> None:
    worker = StoreWorker(None)
    assert worker.call_sync(lambda store: store.rows()) == []
    worker.close()
    worker.close()  # idempotent
    with pytest.raises(RuntimeError):
        worker.call_sync(lambda store: store.rows())


def test_store_rolls_back_a_failed_creation(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "rollback.db")
    try:
        store.create("8:acs:r_1", "same", 1.0, with_token=False)
        with pytest.raises(sqlite3.IntegrityError):
            store.create("8:acs:r_1", None, 2.0, with_token=False)  # duplicate primary key
        assert [row.id for row in store.rows()] == ["8:acs:r_1"]
        # The connection is usable after the rollback.
        assert store.create("8:acs:r_2", None, 3.0, with_token=True).last_token_issued_at == 3.0
    finally:
        store.close()
