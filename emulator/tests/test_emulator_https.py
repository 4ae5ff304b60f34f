"""HTTPS: the official identity client's ``from_connection_string`` works unchanged against ``--https``.

The emulator serves TLS with a certificate from a local CA made for the run; the client trusts it through
``connection_verify=emu.ca_bundle``. With a database file the CA is kept beside it, so the bundle a client
was configured with stays valid across restarts.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest
from azure.communication.identity import CommunicationIdentityClient
from azure.communication.identity.aio import CommunicationIdentityClient as AsyncCommunicationIdentityClient
from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError

from acs_emulator import ACCESS_KEY_ENV, Emulator, add_cli_arguments, run_cli
from emulator_support import read_banner

KEY = "aHR0cHMtdGVzdC1rZXktZm9yLXRoZS1lbXVsYXRvcg=="


def _skype_id(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["skypeid"])


def test_sync_official_client_from_connection_string_over_https() -> None:
    with Emulator(https=True) as emu:
        assert emu.endpoint.startswith("https://127.0.0.1:")
        assert emu.connection_string.startswith(f"endpoint={emu.endpoint}/;")
        bundle = emu.ca_bundle
        assert bundle is not None
        assert Path(bundle).read_text().startswith("-----BEGIN CERTIFICATE")
        client = CommunicationIdentityClient.from_connection_string(
            emu.connection_string, connection_verify=emu.ca_bundle
        )
        user, token = client.create_user_and_token(["chat"])
        assert _skype_id(token.token) == user.properties["id"][2:]
        again = client.get_token(user, ["voip"])
        assert _skype_id(again.token) == user.properties["id"][2:]
        client.revoke_tokens(user)
        assert emu.is_token_revoked(again.token)
        client.delete_user(user)
        with pytest.raises(ResourceNotFoundError):
            client.get_token(user, ["chat"])
        # Without the CA, the certificate is not trusted: TLS is real.
        untrusting = CommunicationIdentityClient.from_connection_string(emu.connection_string, retry_total=0)
        with pytest.raises(ServiceRequestError):
            untrusting.create_user()
        assert emu.unexpected_errors == 0
    assert not Path(bundle).exists()  # a temporary CA goes away with the emulator


async def test_async_official_client_from_connection_string_over_https() -> None:
    async with Emulator(https=True) as emu:
        assert emu.ca_bundle is not None
        async with AsyncCommunicationIdentityClient.from_connection_string(
            emu.connection_string, connection_verify=emu.ca_bundle
        ) as client:
            user, token = await client.create_user_and_token(["chat", "voip"])
            assert _skype_id(token.token) == user.properties["id"][2:]
            await client.revoke_tokens(user)
            await client.delete_user(user)
            with pytest.raises(ResourceNotFoundError):
                await client.get_token(user, ["chat"])
        assert emu.unexpected_errors == 0


def test_the_ca_is_kept_beside_the_database_across_restarts(tmp_path: Path) -> None:
    database = tmp_path / "acs.sqlite"
    with Emulator(https=True, database=database, access_key=KEY) as first:
        bundle = first.ca_bundle
        assert bundle == str(tmp_path / "acs.sqlite.ca.pem")
        pem = Path(bundle).read_bytes()
        user = CommunicationIdentityClient.from_connection_string(
            first.connection_string, connection_verify=bundle
        ).create_user()
    assert (tmp_path / "acs.sqlite.ca-key.pem").stat().st_mode & 0o077 == 0  # the CA key is private
    with Emulator(https=True, database=database, access_key=KEY) as second:
        assert second.ca_bundle == bundle
        assert Path(bundle).read_bytes() == pem
        # The same bundle still verifies the new run's certificate, and the user survived.
        token = CommunicationIdentityClient.from_connection_string(
            second.connection_string, connection_verify=bundle
        ).get_token(user, ["chat"])
        assert _skype_id(token.token) == user.properties["id"][2:]


def test_unreadable_ca_files_fail_start_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "acs.sqlite"
    (tmp_path / "acs.sqlite.ca.pem").write_text("not a certificate")
    (tmp_path / "acs.sqlite.ca-key.pem").write_text("not a key")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "acs.sqlite.ca.pem"))):
        Emulator(https=True, database=database).start()
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    args = parser.parse_args(["--port", "0", "--access-key", KEY, "--https", "--database", str(database)])
    assert run_cli(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(tmp_path / "acs.sqlite.ca.pem") in err


def test_cli_https_prints_the_ca_bundle_and_serves_tls(tmp_path: Path) -> None:
    database = tmp_path / "cli.sqlite"
    env = {**os.environ, ACCESS_KEY_ENV: KEY, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "acs_emulator", "--port", "0", "--https", "--database", str(database)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = read_banner(process)
        endpoint = re.search(r"^endpoint: +(https://127\.0\.0\.1:\d+)$", banner, re.MULTILINE)
        bundle = re.search(r"^CA bundle: +(\S+)", banner, re.MULTILINE)
        assert endpoint, banner
        assert bundle, banner
        assert bundle.group(1) == str(tmp_path / "cli.sqlite.ca.pem")
        assert KEY not in banner
        context = ssl.create_default_context(cafile=bundle.group(1))
        with urllib.request.urlopen(endpoint.group(1) + "/.well-known/jwks.json", context=context) as reply:
            assert reply.status == 200
            assert b'"keys"' in reply.read()
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(endpoint.group(1) + "/.well-known/jwks.json", timeout=10)
        client = CommunicationIdentityClient.from_connection_string(
            f"endpoint={endpoint.group(1)}/;accesskey={KEY}", connection_verify=bundle.group(1)
        )
        assert client.create_user().properties["id"].startswith("8:acs:")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err


def test_a_silent_tls_socket_is_closed_at_the_header_timeout() -> None:
    """A TLS socket that never starts its handshake is invisible to the HTTP layer; the handshake timeout
    (the header timeout) closes it."""
    import socket

    with Emulator(https=True, header_timeout=0.3) as emu:
        with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as silent:
            assert silent.recv(1) == b""  # closed by the server, well before the 10 s client timeout
        context = ssl.create_default_context(cafile=emu.ca_bundle)
        with urllib.request.urlopen(emu.jwks_url, context=context) as reply:
            assert reply.status == 200
