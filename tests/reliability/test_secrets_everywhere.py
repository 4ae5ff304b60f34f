"""Representative operations of every module, with known secrets, and a scan of all they logged, raised and
printed, and of the ``repr``/``str`` of every object they built.

Modules: the credential (sync and asyncio: static, refresher, failing refresher, Entra mode), the token
parser, the HMAC policy (with azure-core's HTTP logging at DEBUG), connection strings and client arguments,
the httpx and requests adapters, the emulator (good and bad requests) and the CLI (``sign``, ``request``,
``token inspect``). The secrets: an access key, the connection string holding it, user access tokens, an
Entra ID token, the text of a refresher's exception, and a key with a zero-width space pasted into it (whose
decoding error would carry the whole key in its exception chain). The session-wide scan of tests/conftest.py checks
the same log records again at the end of the session.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import httpx as httpx_lib
import pytest
import requests as requests_lib
from azure.core.credentials import AccessToken, AccessTokenInfo, AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import HttpLoggingPolicy, RetryPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest
from reliability_faults import FakeClock

import azure.communication.common as common
import azure.communication.common.aio as common_aio
from acs_emulator import Emulator
from azure.communication.common import _tokens
from azure.communication.common._cli import main as cli_main
from azure.communication.common._credential import _create
from azure.communication.common.httpx import AccessKeyAuth as HttpxAuth
from azure.communication.common.requests import AccessKeyAuth as RequestsAuth

API = "api-version=2023-10-01"


def _jwt(claims: dict[str, Any]) -> str:
    def seg(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{seg({'alg': 'RS256', 'typ': 'JWT'})}.{seg(claims)}.{secrets.token_urlsafe(32)}"


class Evidence:
    """Everything the operations produced that could hold a secret."""

    def __init__(self) -> None:
        self.objects: list[object] = []
        self.errors: list[BaseException] = []
        self.output: list[str] = []

    def keep(self, *objects: object) -> None:
        self.objects.extend(objects)

    def expect(
        self, call: Callable[[], Any], expected: type[BaseException], *more: type[BaseException]
    ) -> BaseException:
        with pytest.raises((expected, *more)) as info:
            call()
        self.errors.append(info.value)
        return info.value

    async def aexpect(
        self, call: Callable[[], Any], expected: type[BaseException], *more: type[BaseException]
    ) -> BaseException:
        with pytest.raises((expected, *more)) as info:
            await call()
        self.errors.append(info.value)
        return info.value

    def cli(self, *argv: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        with redirect_stdout(out), redirect_stderr(err):
            code = cli_main(list(argv))
        self.output.append(out.getvalue() + err.getvalue())
        return code, out.getvalue()


@pytest.fixture
def known() -> dict[str, str]:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return {
        "key": key,
        # The same key with a zero-width space pasted into it: encoding it fails inside the decoder, whose
        # UnicodeEncodeError holds the whole key in .object (the library must not chain it).
        "pasted_key": key[:8] + "\u200b" + key[8:],
        "user_token": _jwt({"exp": time.time() + 3600, "skypeid": "acs:x"}),
        "expired_token": _jwt({"exp": time.time() - 10}),
        "opaque_token": "opaque-" + secrets.token_urlsafe(24),
        "entra_token": _jwt(
            {"tid": "00000000-0000-0000-0000-0000000000aa", "oid": "00000000-0000-0000-0000-0000000000bb"}
        ),
        "refresher_error_text": "upstream said: " + secrets.token_urlsafe(24),
    }


@pytest.fixture
def emulator(known: dict[str, str]) -> Iterator[Emulator]:
    with Emulator(access_key=known["key"]) as emu:
        yield emu


class LeakyError(RuntimeError):
    """A refresher error whose text holds a secret: the library may re-raise it, never log its text."""


def test_every_module_keeps_its_secrets(
    known: dict[str, str],
    emulator: Emulator,
    secret_registry: Any,
    kept_log_records: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in known.items():
        secret_registry.register(value, f"the known {name}")
    connection_string = emulator.connection_string
    secret_registry.register(connection_string, "the known connection string")
    first_record = len(kept_log_records.records)
    ev = Evidence()

    _credential_sync(known, emulator, ev)
    asyncio.run(_credential_async(known, emulator, ev))
    _token_parser(known, ev)
    issued = _policy_and_adapters(known, emulator, ev)
    secret_registry.register_all(issued)
    _connection_strings(known, connection_string, ev)
    _pasted_keys(known, ev)
    _emulator(known, emulator, ev)
    issued_by_cli = _cli(known, connection_string, emulator, ev, monkeypatch)
    secret_registry.register_all(issued_by_cli)

    # The refresher's own error is re-raised unchanged to callers (its text is the caller's own); it must
    # never reach a log record, which the scan below checks. Every other error is ours.
    ours = [e for e in ev.errors if not isinstance(e, LeakyError)]
    assert len(ours) >= 20
    # For exceptions this walks the whole chain (__cause__, __context__) and each exception's attributes.
    secret_registry.assert_clean(*ours, *ev.objects)
    for text in ev.output:
        for name in ("key", "entra_token", "refresher_error_text"):
            assert known[name] not in text, f"the CLI printed the {name}"
    records = kept_log_records.records[first_record:]
    assert len(records) >= 10, "nothing was logged: the scan would prove nothing"
    loggers = {r.logger for r in records}
    assert {"azure.communication.common", "acs_emulator.access"} <= loggers
    findings = kept_log_records.scan(secret_registry, start=first_record)
    assert not findings, "\n".join(map(str, findings))


def _credential_sync(known: dict[str, str], emulator: Emulator, ev: Evidence) -> None:
    static = common.CommunicationTokenCredential(known["user_token"])
    ev.keep(static, static.get_token(), static.get_token_info())
    opaque = common.CommunicationTokenCredential(known["opaque_token"])
    ev.keep(opaque, opaque.get_token())
    static.close()
    ev.expect(static.get_token, RuntimeError)

    calls = iter([LeakyError(known["refresher_error_text"]), known["user_token"], known["expired_token"]])

    def refresher() -> str:
        item = next(calls)
        if isinstance(item, BaseException):
            raise item
        return item

    # A clock that stands still: the second call is inside the failure gap however slow the machine is.
    refreshing = _create(
        common.CommunicationTokenCredential,
        token_refresher=refresher,
        _clock=FakeClock(time.time()),
        _monotonic=FakeClock(1_000.0),
    )
    ev.expect(refreshing.get_token, LeakyError)  # no token yet: the refresher's error, unchanged
    ev.expect(refreshing.get_token, LeakyError)  # within the failure gap: the same error, not logged again
    refreshing.close()
    ev.keep(refreshing)

    with common.CommunicationTokenCredential(token_refresher=lambda: known["expired_token"]) as expired:
        ev.expect(expired.get_token, ValueError)

    with common.CommunicationTokenCredential(
        token=AccessToken(known["user_token"], int(time.time()) + 30),
        token_refresher=lambda: (_ for _ in ()).throw(LeakyError(known["refresher_error_text"])),
        proactive_refresh=True,
    ) as stale:
        ev.keep(stale, stale.get_token())  # stale: the refresh fails, logged by type only

    for bad in (
        ("user", AccessToken(known["user_token"], 0)),
        {"token": known["user_token"], "expiresOn": "x"},
        known["user_token"].encode(),
        AccessToken(known["user_token"], "soon"),  # type: ignore[arg-type]
        AccessTokenInfo(known["user_token"], float("nan")),  # type: ignore[arg-type]
    ):
        ev.expect(lambda bad=bad: common.CommunicationTokenCredential(bad), TypeError, ValueError)

    class Entra:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(known["entra_token"], int(time.time()) + 3600)

    with common.CommunicationTokenCredential(
        resource_endpoint=emulator.endpoint, token_credential=Entra(), logging_enable=True
    ) as entra:
        ev.keep(entra, entra.get_token())
    ev.expect(
        lambda: common.CommunicationTokenCredential(
            resource_endpoint=emulator.endpoint + "/wrong-path/", token_credential=Entra()
        ),
        ValueError,
    )

    class RefusedEntra:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            # Not a JWT: the emulator refuses the exchange (401), the credential raises for it.
            return AccessToken(known["opaque_token"], int(time.time()) + 3600)

    with common.CommunicationTokenCredential(
        resource_endpoint=emulator.endpoint, token_credential=RefusedEntra(), retry_total=0
    ) as refused:
        ev.expect(refused.get_token, ClientAuthenticationError)
    ev.expect(
        lambda: common.CommunicationTokenCredential(
            resource_endpoint=emulator.endpoint, token_credential=Entra(), scopes=["https://evil.example/.default"]
        ),
        ValueError,
    )


async def _credential_async(known: dict[str, str], emulator: Emulator, ev: Evidence) -> None:
    async def failing() -> str:
        raise LeakyError(known["refresher_error_text"])

    async with common_aio.CommunicationTokenCredential(token_refresher=failing) as credential:
        results = await asyncio.gather(*(credential.get_token() for _ in range(5)), return_exceptions=True)
        assert all(isinstance(r, LeakyError) for r in results)
        ev.keep(credential)

    async def returns_text() -> str:
        return known["user_token"]

    async with common_aio.CommunicationTokenCredential(token_refresher=returns_text) as credential:
        ev.keep(credential, await credential.get_token(), await credential.get_token_info())

    not_awaitable = common_aio.CommunicationTokenCredential(token_refresher=lambda: known["user_token"])  # type: ignore[arg-type, return-value]
    await ev.aexpect(not_awaitable.get_token, TypeError)
    await not_awaitable.close()
    await ev.aexpect(not_awaitable.get_token, RuntimeError)

    class Entra:
        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(known["entra_token"], int(time.time()) + 3600)

        async def close(self) -> None:
            pass

    async with common_aio.CommunicationTokenCredential(
        resource_endpoint=emulator.endpoint, token_credential=Entra(), logging_enable=True
    ) as entra:
        ev.keep(entra, await entra.get_token())


def _token_parser(known: dict[str, str], ev: Evidence) -> None:
    token = known["user_token"]
    header, payload, signature = token.split(".")
    for broken in (f"{header}.{payload}!.{signature}", f"{header}.{signature}.{payload}", f"{token}.{signature}"):
        ev.expect(lambda broken=broken: _tokens.decode_jwt_payload(broken), ValueError)
        ev.expect(lambda broken=broken: _tokens.parse_jwt_expiry(broken), ValueError)
    ev.keep(_tokens.normalize_token(token, time.time()), _tokens.TokenSnapshot.build(token, time.time() + 60, 0.0))


def _policy_and_adapters(known: dict[str, str], emulator: Emulator, ev: Evidence) -> list[str]:
    issued: list[str] = []
    policy = common.CommunicationAccessKeyCredentialPolicy(AzureKeyCredential(known["key"]))
    ev.keep(policy, common.create_communication_auth_policy(known["key"]))
    logging_policy = HttpLoggingPolicy(logging_enable=True)
    with Pipeline(RequestsTransport(), [RetryPolicy(), policy, logging_policy]) as pipeline:
        body = {"createTokenWithScopes": ["chat"]}
        response = pipeline.run(HttpRequest("POST", f"{emulator.endpoint}/identities?{API}", json=body))
        assert response.http_response.status_code == 201
        issued.append(json.loads(response.http_response.body())["accessToken"]["token"])
    bad_key = "not base64 " + known["key"][:-4] + "!!!!"
    ev.expect(lambda: common.CommunicationAccessKeyCredentialPolicy(bad_key), ValueError)
    ev.expect(lambda: common.CommunicationAccessKeyCredentialPolicy(AzureKeyCredential(bad_key)), ValueError)

    auth = HttpxAuth(known["key"])
    with httpx_lib.Client(auth=auth) as client:
        reply = client.post(f"{emulator.endpoint}/identities?{API}", json={"createTokenWithScopes": ["voip"]})
        assert reply.status_code == 201
        issued.append(reply.json()["accessToken"]["token"])
    session_auth = RequestsAuth(AzureKeyCredential(known["key"]))
    reply2 = requests_lib.post(f"{emulator.endpoint}/identities?{API}", json={}, auth=session_auth, timeout=10)
    assert reply2.status_code == 201
    ev.keep(auth, session_auth)
    ev.expect(lambda: HttpxAuth(bad_key), ValueError)
    ev.expect(lambda: RequestsAuth(bad_key), ValueError)
    return issued


def _connection_strings(known: dict[str, str], connection_string: str, ev: Evidence) -> None:
    key = known["key"]
    parsed = common.parse_connection_string(connection_string)
    ev.keep(parsed, parsed.credential)
    for bad in (
        f"accesskey={key}",
        f"endpoint=https://x/;accesskey={key};accesskey={key}",
        f"endpoint=;accesskey={key}",
        f"{key}",
        f"endpoint=https://x/;{key}",
        "endpoint=https://x/;accesskey=",
    ):
        ev.expect(lambda bad=bad: common.parse_connection_string(bad), ValueError)
        ev.expect(lambda bad=bad: common.parse_client_arguments(bad), ValueError)
    for bad in (f"endpoint=ftp://x/;accesskey={key}", f"endpoint=https://x/path;accesskey={key}"):
        ev.expect(lambda bad=bad: common.parse_client_arguments(bad), ValueError)
    ev.expect(lambda: common.parse_client_arguments(f"https://user:{key}@x/", AzureKeyCredential(key)), ValueError)
    ev.expect(lambda: common.parse_client_arguments(f"https://x/?sig={key}", AzureKeyCredential(key)), ValueError)
    ev.keep(common.parse_client_arguments(connection_string))


def _pasted_keys(known: dict[str, str], ev: Evidence) -> None:
    """A key with a non-ASCII character, everywhere a key is taken: clean errors with clean chains."""
    pasted, key = known["pasted_key"], known["key"]
    for call in (
        lambda: common.parse_connection_string(f"endpoint=https://x/;accesskey={pasted}"),
        lambda: common.parse_client_arguments(f"endpoint=https://x/;accesskey={pasted}"),
        lambda: common.CommunicationAccessKeyCredentialPolicy(pasted),
        lambda: common.CommunicationAccessKeyCredentialPolicy(AzureKeyCredential(pasted)),
        lambda: HttpxAuth(pasted),
        lambda: RequestsAuth(AzureKeyCredential(pasted)),
    ):
        error = ev.expect(call, ValueError)
        assert error.__context__ is None
        assert error.__cause__ is None
    # An endpoint value that runs on into a second accesskey= (segments split by newlines) is refused: an
    # EndpointCredential built from it would show the key in its repr.
    for runs_on in (
        f"endpoint=https://x.example/\naccesskey={key}\n;accesskey={key}",
        f"endpoint=https://x.example/ accesskey={key};accesskey={key}",
    ):
        ev.expect(lambda runs_on=runs_on: common.parse_connection_string(runs_on), ValueError)
        ev.expect(lambda runs_on=runs_on: common.parse_client_arguments(runs_on), ValueError)


def _emulator(known: dict[str, str], emulator: Emulator, ev: Evidence) -> None:
    ev.keep(emulator)
    ev.expect(lambda: Emulator(access_key="bad key " + known["key"]), ValueError)
    wrong = common.CommunicationAccessKeyCredentialPolicy(base64.b64encode(b"a wrong key").decode())
    with Pipeline(RequestsTransport(), [wrong]) as pipeline:
        response = pipeline.run(HttpRequest("POST", f"{emulator.endpoint}/identities?{API}", json={}))
        assert response.http_response.status_code == 401
        assert known["key"] not in response.http_response.text()


def _cli(
    known: dict[str, str],
    connection_string: str,
    emulator: Emulator,
    ev: Evidence,
    monkeypatch: pytest.MonkeyPatch,
) -> list[str]:
    monkeypatch.setenv("NO_COLOR", "1")
    code, _ = ev.cli("sign", "POST", f"/identities?{API}", "-d", "{}", "-c", connection_string, monkeypatch=monkeypatch)
    assert code == 0
    code, out = ev.cli(
        "request",
        "POST",
        f"/identities?{API}",
        "-d",
        '{"createTokenWithScopes": ["chat"]}',
        "-c",
        "-",
        "-v",
        stdin=connection_string,
        monkeypatch=monkeypatch,
    )
    assert code == 0
    issued = [json.loads(out[out.index("{") :])["accessToken"]["token"]]
    code, _ = ev.cli("request", "GET", "/x", "-c", f"endpoint={emulator.endpoint}", monkeypatch=monkeypatch)
    assert code != 0
    code, out = ev.cli("token", "inspect", known["user_token"], monkeypatch=monkeypatch)
    assert code == 0
    assert known["user_token"].rsplit(".", 1)[1] not in out, "token inspect printed the token's signature"
    code, _ = ev.cli("token", "inspect", "-", stdin=known["opaque_token"], monkeypatch=monkeypatch)
    return issued
