"""The hardening table of the fidelity issue: each attack or failure gets its status, and the database is unchanged.

Timeouts are configurable, so these tests use fractions of a second; they wait for the server's reaction
with generous deadlines (a socket closing), never assert on elapsed time.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from acs_emulator import Emulator, _tokens
from acs_emulator._cli import print_banner, run_cli
from acs_emulator._store import StorageError
from acs_emulator._tokens import TokenIssuer
from emulator_support import PREVIEW, VERSION, FakeClock, entra_jwt, path_id, read_banner, send

KEY = "aGFyZGVuaW5nLXRlc3Qta2V5LWZvci10aGUtZW11bGF0b3I="
CREATE = f"/identities?api-version={VERSION}"


def _closed_by_server(sock: socket.socket, deadline: float = 10.0) -> bool:
    """Wait until the server closes ``sock`` (EOF or reset); False if it is still open at the deadline."""
    sock.settimeout(deadline)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


@pytest.fixture
def guarded() -> Iterator[Emulator]:
    with Emulator(
        access_key=KEY, header_timeout=0.3, body_timeout=0.3, keepalive_timeout=0.3, max_connections=8
    ) as emu:
        yield emu
        assert emu.unexpected_errors == 0


def test_silent_sockets_are_closed_and_cannot_lock_clients_out(
    guarded: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    before = guarded._identity_rows()
    silent = [_connect(guarded.port) for _ in range(20)]  # more than max_connections
    try:
        # A legitimate client still gets in while the silent ones hold their sockets.
        reply = send(guarded.port, "POST", CREATE, {}, key=KEY)
        assert reply.status == 201
        assert all(_closed_by_server(sock) for sock in silent)
    finally:
        for sock in silent:
            sock.close()
    rows = guarded._identity_rows()
    assert len(rows) == len(before) + 1  # only the legitimate create
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_trickled_request_line_is_closed_at_the_header_timeout(guarded: Emulator) -> None:
    before = guarded._identity_rows()
    with _connect(guarded.port) as sock:
        sock.sendall(b"POST /identities?api-version=2023-10-01 HTTP/1.1\r\nHost: x\r\n")
        assert _closed_by_server(sock)
    assert guarded._identity_rows() == before


def test_a_half_sent_body_gets_408_and_the_connection_closes(guarded: Emulator) -> None:
    before = guarded._identity_rows()
    with _connect(guarded.port) as sock:
        sock.sendall(
            b"POST /identities?api-version=2023-10-01 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"createTo'
        )
        sock.settimeout(10)
        response = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), response[:200]
    assert json.loads(body)["error"]["code"] == "RequestTimeout"
    assert guarded._identity_rows() == before


def test_an_idle_keep_alive_connection_is_closed(guarded: Emulator) -> None:
    import http.client

    before = guarded._identity_rows()
    conn = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=10)
    try:
        conn.request("GET", "/.well-known/jwks.json")
        response = conn.getresponse()
        assert response.status == 200
        response.read()
        assert response.getheader("Connection", "keep-alive").lower() != "close"
        assert conn.sock is not None
        assert _closed_by_server(conn.sock)
    finally:
        conn.close()
    assert guarded._identity_rows() == before


def test_duplicate_scopes_are_bounded(emulator: Emulator) -> None:
    key = emulator.access_key
    created = send(emulator.port, "POST", CREATE, {}, key=key).json()["identity"]["id"]
    target = f"/identities/{path_id(created)}/:issueAccessToken?api-version={VERSION}"
    before = emulator._identity_rows()
    reply = send(emulator.port, "POST", target, {"scopes": ["chat"] * 100_000}, key=key)
    assert (reply.status, reply.code) == (400, "ValidationError")
    assert reply.json()["error"]["target"] == "Scopes"
    assert emulator._identity_rows() == before
    # A few duplicates are accepted, and the token lists each scope once.
    ok = send(emulator.port, "POST", target, {"scopes": ["chat", "voip", "chat"] * 5}, key=key)
    assert ok.status == 200
    import jwt

    assert jwt.decode(ok.json()["token"], options={"verify_signature": False})["acsScope"] == "chat,voip"


def test_the_token_cache_is_bounded_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tokens, "_CACHE_BYTES", 10_000)
    issuer = TokenIssuer("00000000-0000-0000-0000-000000000001")
    sizes = []
    for second in range(60):
        issuer.issue(skype_id=f"acs:r_{second}", scopes=["chat"], iat=second, exp=second + 3600)
        sizes.append(issuer._cache_bytes)
        assert issuer._cache_bytes <= 10_000
    assert min(sizes[10:]) < max(sizes)  # it was cleared along the way, not just capped by entries
    assert len(issuer._cache) < 60


def test_a_lone_surrogate_in_custom_id_is_a_400(emulator: Emulator) -> None:
    before = emulator._identity_rows()
    body = b'{"customId": "abc\\ud800"}'
    reply = send(emulator.port, "POST", f"/identities?api-version={PREVIEW}", body, key=emulator.access_key)
    assert (reply.status, reply.code) == (400, "ValidationError")
    assert reply.json()["error"]["target"] == "CustomId"
    # A surrogate pair written as escapes is a real character, and fine.
    paired = b'{"customId": "smile\\ud83d\\ude00"}'
    assert (
        send(emulator.port, "POST", f"/identities?api-version={PREVIEW}", paired, key=emulator.access_key).status == 201
    )
    assert len(emulator._identity_rows()) == len(before) + 1
    assert emulator.unexpected_errors == 0


def test_revocation_survives_re_creation_by_an_entra_exchange() -> None:
    clock = FakeClock()
    with Emulator(_clock=clock) as emu:

        def exchange() -> tuple[str, str]:
            token = entra_jwt(tid="72f988bf-86f1-41af-91ab-2d7cd011db47", oid="0b3f2b39-3c21-4f3c-9a4f-6f0b1b2c3d4e")
            reply = send(
                emu.port,
                "POST",
                f"/access/entra/:exchangeAccessToken?api-version={PREVIEW}",
                b"",
                unsigned=True,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert reply.status == 200, reply.body
            return reply.json()["identity"]["id"], reply.json()["accessToken"]["token"]

        raw_id, old = exchange()
        clock.advance(5)
        deleted = send(
            emu.port, "DELETE", f"/identities/{path_id(raw_id)}?api-version={VERSION}", key=emu.access_key, now=clock()
        )
        assert deleted.status == 204
        assert emu.is_token_revoked(old)
        clock.advance(5)
        again, new = exchange()
        assert again == raw_id  # the same Entra user: the same identity, re-created
        assert emu.is_token_revoked(old)  # ... but the old token stays revoked
        assert not emu.is_token_revoked(new)


def _emulator_database(path: Path) -> None:
    with Emulator(database=path, access_key=KEY) as emu:
        assert send(emu.port, "POST", CREATE, {}, key=KEY).status == 201


def test_a_corrupted_database_fails_start_naming_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database, " * 500)
    content = garbage.read_bytes()
    with pytest.raises(StorageError, match="is not a valid SQLite database") as raised:
        Emulator(database=garbage).start()
    assert str(garbage) in str(raised.value)
    assert garbage.read_bytes() == content
    # From the command line: one line naming the path, exit 1.
    assert run_cli(_args("--database", str(garbage))) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(garbage) in err
    assert "Traceback" not in err
    assert garbage.read_bytes() == content


def test_a_damaged_page_fails_the_integrity_check(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.sqlite"
    _emulator_database(damaged)
    data = bytearray(damaged.read_bytes())
    page = 4096
    assert len(data) >= 2 * page
    data[page + 8 : 2 * page] = b"\xff" * (page - 8)  # the second page (a table's b-tree) is garbage
    damaged.write_bytes(bytes(data))
    with pytest.raises(StorageError) as raised:
        Emulator(database=damaged).start()
    assert str(damaged) in str(raised.value)
    assert damaged.read_bytes() == bytes(data)


def test_a_table_with_another_schema_is_refused_but_chat_tables_are_not(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE identities (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO identities (name) VALUES ('someone else''s')")
    db.close()
    content = foreign.read_bytes()
    with pytest.raises(StorageError, match="'identities' with another schema"):
        Emulator(database=foreign).start()
    assert foreign.read_bytes() == content

    shared = tmp_path / "shared.sqlite"
    _emulator_database(shared)
    with sqlite3.connect(shared) as db:
        db.execute("CREATE TABLE chat_example (thread_id TEXT PRIMARY KEY)")
    db.close()
    with Emulator(database=shared, access_key=KEY) as emu:
        assert len(emu._identity_rows()) == 1


def test_a_storage_failure_at_run_time_is_a_503(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    with Emulator(database=path, access_key=KEY, _busy_timeout=0.05) as emu:
        assert send(emu.port, "POST", CREATE, {}, key=KEY).status == 201
        before = emu._identity_rows()
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            reply = send(emu.port, "POST", CREATE, {}, key=KEY)
            assert (reply.status, reply.code) == (503, "ServiceUnavailable")
            assert reply.headers["Retry-After"] == "1"
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert emu._identity_rows() == before
        assert send(emu.port, "POST", CREATE, {}, key=KEY).status == 201
        assert emu.unexpected_errors == 0


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: tmp / "no-such-folder" / "x.sqlite", "its folder does not exist"),
        (lambda tmp: tmp, "is a directory"),
    ],
    ids=["missing folder", "a directory"],
)
def test_database_errors_name_the_path(
    tmp_path: Path, make: object, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(StorageError, match=words) as raised:
        Emulator(database=path).start()
    assert str(path) in str(raised.value)
    assert run_cli(_args("--database", str(path))) == 1
    err = capsys.readouterr().err
    assert re.match(r"(acs-emulator: )?error: ", err)
    assert str(path) in err
    assert err.count("\n") == 1
    assert "OperationalError" not in err


def test_the_banner_masks_a_supplied_key_and_shows_a_generated_one() -> None:
    with Emulator(access_key=KEY) as supplied, Emulator(https=True, loose=True) as generated:
        out = io.StringIO()
        print_banner(supplied, out)
        assert KEY not in out.getvalue()
        assert "(masked)" in out.getvalue()
        assert "CA bundle" not in out.getvalue()
        out = io.StringIO()
        print_banner(generated, out)
        text = out.getvalue()
        assert f"accesskey={generated.access_key}" in text
        assert f"CA bundle:         {generated.ca_bundle}" in text
        assert f"inspector:         {generated.endpoint}/_emulator/ui/" in text
        assert f"control plane:     {generated.endpoint}/_emulator/" in text
        assert f"JWKS:              {generated.jwks_url}" in text
        assert "any (loose)" in text


def _args(*argv: str) -> object:
    import argparse

    from acs_emulator import add_cli_arguments

    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    return parser.parse_args(["--port", "0", "--access-key", KEY, *argv])


def test_timeouts_and_limits_are_validated() -> None:
    for kwargs in (
        {"header_timeout": 0},
        {"body_timeout": -1},
        {"keepalive_timeout": float("inf")},
        {"max_connections": 0},
    ):
        with pytest.raises(ValueError, match=r"header_timeout|body_timeout|keepalive_timeout|max_connections"):
            Emulator(**kwargs)  # type: ignore[arg-type]


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
def test_300_silent_sockets_under_a_256_descriptor_limit_lock_nobody_out() -> None:
    """The attack as reported: 300 silent sockets against an emulator limited to 256 descriptors. The default
    connection cap (half the limit) keeps accept() from ever failing with EMFILE, so a legitimate client is
    served at once and nothing is logged as a traceback."""
    import resource
    import signal
    import subprocess

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    env = {**os.environ, "ACS_EMULATOR_ACCESS_KEY": KEY, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "acs_emulator", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=limit,
    )
    silent: list[socket.socket] = []
    try:
        banner = read_banner(process)
        port = int(re.search(r"^endpoint: +http://127\.0\.0\.1:(\d+)$", banner, re.MULTILINE).group(1))  # type: ignore[union-attr]
        silent = [_connect(port) for _ in range(300)]
        reply = send(port, "POST", CREATE, {}, key=KEY)
        assert reply.status == 201
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        for sock in silent:
            sock.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    assert len(err.splitlines()) < 10, err[-2000:]
