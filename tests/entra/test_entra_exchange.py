"""The Entra token exchange, sync and async, against a real scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import pickle
from datetime import datetime, timezone
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo, AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from entra_support import (
    ENTRA_TOKENS,
    AsyncFakeEntraCredential,
    FakeEntraCredential,
    Flavour,
    Reply,
    ScriptedServer,
    assert_hides,
)

from azure.communication.common import parse_client_arguments
from azure.communication.common._entra import (
    DEFAULT_SCOPES,
    ENTRA_SCOPE_PREFIX,
    TEAMS_EXTENSION_SCOPE_PREFIXES,
    EntraTokenExchanger,
    ExchangeTarget,
)
from azure.communication.common._timestamps import parse_timestamp
from azure.communication.common._version import VERSION
from azure.communication.common.aio._entra import AsyncEntraTokenExchanger

ENTRA_PATH = "/access/entra/:exchangeAccessToken?api-version=2025-03-02-preview"
TEAMS_PATH = "/access/teamsExtension/:exchangeAccessToken?api-version=2025-06-30"
# 2031-05-06T07:08:09Z, computed by the standard library rather than written as a number.
EXPIRY = int(datetime(2031, 5, 6, 7, 8, 9, tzinfo=timezone.utc).timestamp())


def _acs_reply(token: str, expires_on: Any) -> Reply:
    return Reply.json(200, {"accessToken": {"token": token, "expiresOn": expires_on}})


# ---------------------------------------------------------------------------------------------------------
# Routing, request shape, response
# ---------------------------------------------------------------------------------------------------------


async def test_default_scope_goes_to_the_entra_endpoint(flavour: Flavour, server: ScriptedServer) -> None:
    credential = flavour.credential()
    exchanger = flavour.make(server.url, credential)

    result = await flavour.call(exchanger)

    assert credential.calls == [DEFAULT_SCOPES]
    assert [r.target for r in server.requests] == [ENTRA_PATH]
    issued = server.issued[0]
    assert isinstance(result, AccessTokenInfo)
    assert result.token == issued.token
    assert result.expires_on == math.floor(parse_timestamp(issued.expires_on))
    assert exchanger.scopes == DEFAULT_SCOPES


@pytest.mark.parametrize(
    ("scopes", "path"),
    [
        ([f"{TEAMS_EXTENSION_SCOPE_PREFIXES[0]}.default"], TEAMS_PATH),
        ([f"{TEAMS_EXTENSION_SCOPE_PREFIXES[1]}.default"], TEAMS_PATH),
        (
            [f"{TEAMS_EXTENSION_SCOPE_PREFIXES[0]}Teams.ManageCalls", f"{TEAMS_EXTENSION_SCOPE_PREFIXES[1]}x"],
            TEAMS_PATH,
        ),
        ([f"{ENTRA_SCOPE_PREFIX}VoIP", f"{ENTRA_SCOPE_PREFIX}Chat"], ENTRA_PATH),
        ((f"{ENTRA_SCOPE_PREFIX}.default",), ENTRA_PATH),
    ],
)
async def test_scopes_choose_endpoint_and_api_version(
    flavour: Flavour, server: ScriptedServer, scopes: list[str], path: str
) -> None:
    credential = flavour.credential()
    exchanger = flavour.make(server.url, credential, scopes)

    await flavour.call(exchanger)

    assert [r.target for r in server.requests] == [path]
    # The Entra credential is asked for exactly the configured scopes.
    assert credential.calls == [tuple(scopes)]


async def test_request_method_headers_and_body(flavour: Flavour, server: ScriptedServer) -> None:
    exchanger = flavour.make(server.url, flavour.credential("entra-token-secret-1"))

    await flavour.call(exchanger)

    (request,) = server.requests
    assert request.method == "POST"
    assert request.headers["authorization"] == "Bearer entra-token-secret-1"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {}
    assert request.headers["user-agent"].startswith(f"azsdk-python-communication-common/{VERSION} ")


async def test_pipeline_kwargs_reach_the_policies(flavour: Flavour, server: ScriptedServer) -> None:
    exchanger = flavour.make(
        server.url,
        headers={"x-ms-client-request-id": "req-42"},
        user_agent="my-app/2.0",
        sdk_moniker="someone-else/9",
        # A bearer-policy option callers pass for loopback endpoints: accepted (plain http needs nothing).
        enforce_https=False,
    )

    await flavour.call(exchanger)

    (request,) = server.requests
    assert request.headers["x-ms-client-request-id"] == "req-42"
    # The application id comes first; our moniker is not replaced by a caller's.
    assert request.headers["user-agent"].startswith(f"my-app/2.0 azsdk-python-communication-common/{VERSION} ")


async def test_trailing_slash_of_the_endpoint_is_dropped(flavour: Flavour, server: ScriptedServer) -> None:
    exchanger = flavour.make(server.url + "/")

    await flavour.call(exchanger)

    assert [r.target for r in server.requests] == [ENTRA_PATH]
    assert exchanger.resource_endpoint == server.url


@pytest.mark.parametrize("path", ["/tenant-a", "/tenant-a/", "//"])
async def test_endpoint_with_a_path_is_rejected_before_anything_is_sent(
    flavour: Flavour, server: ScriptedServer, path: str
) -> None:
    # DESIGN section 4: a resource endpoint has no path beyond "/" (the one endpoint validator's rule).
    credential = flavour.credential()
    with pytest.raises(ValueError, match="Invalid resource_endpoint: it must not have a path"):
        flavour.make(server.url + path, credential)

    assert server.requests == []
    assert credential.calls == []


async def test_nothing_is_sent_at_construction(flavour: Flavour, server: ScriptedServer) -> None:
    credential = flavour.credential()
    flavour.make(server.url, credential)

    assert server.requests == []
    assert credential.calls == []


async def test_each_call_asks_for_the_entra_token_and_exchanges_it_anew(
    flavour: Flavour, server: ScriptedServer
) -> None:
    credential = flavour.credential("entra-token-secret-1")
    exchanger = flavour.make(server.url, credential)

    first = await flavour.call(exchanger)
    credential.token = "entra-token-secret-2"
    second = await flavour.call(exchanger)

    assert len(credential.calls) == 2
    assert [r.headers["authorization"] for r in server.requests] == [
        "Bearer entra-token-secret-1",
        "Bearer entra-token-secret-2",
    ]
    assert [first.token, second.token] == [i.token for i in server.issued]
    assert first.token != second.token


@pytest.mark.parametrize(
    ("expires_on", "expected"),
    [
        ("2031-05-06T07:08:09.9999999Z", EXPIRY),
        ("2031-05-06T09:08:09+02:00", EXPIRY),
        (EXPIRY + 0.75, EXPIRY),
        (EXPIRY, EXPIRY),
    ],
)
async def test_expiry_is_read_and_rounded_down(
    flavour: Flavour, server: ScriptedServer, expires_on: Any, expected: int
) -> None:
    server.play(_acs_reply("acs-token-secret-x", expires_on))
    exchanger = flavour.make(server.url)

    result = await flavour.call(exchanger)

    assert (result.token, result.expires_on) == ("acs-token-secret-x", expected)


async def test_default_transport_is_used_without_a_transport_argument(flavour: Flavour, server: ScriptedServer) -> None:
    # The remaining pipeline kwargs go to the default transport too; they must not upset it.
    exchanger = flavour.exchanger_class()(
        server.url,
        flavour.credential(),
        use_env_settings=False,
        retry_total=1,
        headers={"x-test": "default-transport"},
        connection_timeout=5,
    )

    first = await flavour.call(exchanger)
    second = await flavour.call(exchanger)
    await flavour.close(exchanger)

    assert [first.token, second.token] == [i.token for i in server.issued]
    assert [r.headers["x-test"] for r in server.requests] == ["default-transport"] * 2


def test_async_default_transport_survives_a_new_event_loop(server: ScriptedServer) -> None:
    """Repeated ``asyncio.run`` with one exchanger: the default transport is not bound to a dead loop."""
    exchanger = AsyncEntraTokenExchanger(server.url, AsyncFakeEntraCredential(), use_env_settings=False)

    first = asyncio.run(exchanger())
    second = asyncio.run(exchanger())
    asyncio.run(exchanger.close())

    assert [first.token, second.token] == [i.token for i in server.issued]


# ---------------------------------------------------------------------------------------------------------
# Retries and errors
# ---------------------------------------------------------------------------------------------------------


async def test_503_with_retry_after_is_retried(flavour: Flavour, server: ScriptedServer) -> None:
    server.play(Reply(503, b"busy", {"Retry-After": "7"}))
    transport = flavour.transport()
    exchanger = flavour.make(server.url, transport=transport)

    result = await flavour.call(exchanger)

    assert len(server.requests) == 2
    # Retry-After is honoured (the sleep is recorded, not slept), and the retry succeeds.
    assert transport.sleeps == [7.0]
    assert result.token == server.issued[0].token
    assert server.requests[1].headers["authorization"] == server.requests[0].headers["authorization"]


async def test_503_until_retries_run_out_is_an_http_response_error(flavour: Flavour, server: ScriptedServer) -> None:
    server.play(*[Reply(503, b"busy", {"Retry-After": "0"})] * 3)
    exchanger = flavour.make(server.url, retry_total=2)

    with pytest.raises(HttpResponseError) as raised:
        await flavour.call(exchanger)

    assert raised.value.status_code == 503
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_entra_token_is_a_client_authentication_error(
    flavour: Flavour, server: ScriptedServer, status: int
) -> None:
    server.play(Reply.json(status, {"error": {"code": "InvalidToken", "message": "The Entra token is not valid."}}))
    exchanger = flavour.make(server.url)

    with pytest.raises(ClientAuthenticationError) as raised:
        await flavour.call(exchanger)

    assert raised.value.status_code == status
    assert "The Entra token is not valid." in str(raised.value)
    assert len(server.requests) == 1  # not retried
    assert_hides(raised.value, *ENTRA_TOKENS)


@pytest.mark.parametrize("status", [400, 404, 500])
async def test_other_failures_are_http_response_errors(flavour: Flavour, server: ScriptedServer, status: int) -> None:
    server.play(Reply.json(status, {"error": {"code": "Oops", "message": f"failure {status}"}}))
    exchanger = flavour.make(server.url, retry_total=0)

    with pytest.raises(HttpResponseError) as raised:
        await flavour.call(exchanger)

    assert not isinstance(raised.value, ClientAuthenticationError)
    assert raised.value.status_code == status
    assert f"failure {status}" in str(raised.value)


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"acs-token-secret-raw not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'["acs-token-secret-list"]', "'accessToken'"),
        (b'{"token": "acs-token-secret-flat"}', "'accessToken'"),
        (b'{"accessToken": "acs-token-secret-str"}', "'accessToken'"),
        (b'{"accessToken": {"expiresOn": "2031-05-06T07:08:09Z"}}', "'accessToken.token'"),
        (b'{"accessToken": {"token": "", "expiresOn": "2031-05-06T07:08:09Z"}}', "'accessToken.token'"),
        (b'{"accessToken": {"token": 42, "expiresOn": "2031-05-06T07:08:09Z"}}', "'accessToken.token'"),
        (b'{"accessToken": {"token": "acs-token-secret-a"}}', "'accessToken.expiresOn'"),
        (b'{"accessToken": {"token": "acs-token-secret-b", "expiresOn": true}}', "'accessToken.expiresOn'"),
        (b'{"accessToken": {"token": "acs-token-secret-c", "expiresOn": "tomorrow"}}', "RFC 3339"),
        (b'{"accessToken": {"token": "acs-token-secret-d", "expiresOn": NaN}}', "not finite"),
    ],
)
async def test_malformed_success_body_is_a_clear_error_without_the_token(
    flavour: Flavour, server: ScriptedServer, body: bytes, what: str, secret_registry: Any
) -> None:
    secret_registry.register_all(
        ["acs-token-secret-raw", "acs-token-secret-list", "acs-token-secret-flat", "acs-token-secret-str"]
        + [f"acs-token-secret-{c}" for c in "abcd"]
    )
    server.play(Reply(200, body, {"Content-Type": "application/json"}))
    exchanger = flavour.make(server.url)

    with pytest.raises(HttpResponseError) as raised:
        await flavour.call(exchanger)

    assert "malformed" in str(raised.value)
    assert what in str(raised.value)
    assert raised.value.status_code == 200
    assert_hides(raised.value, "acs-token-secret", *ENTRA_TOKENS)


async def test_entra_credential_error_propagates_and_nothing_is_sent(flavour: Flavour, server: ScriptedServer) -> None:
    credential = flavour.credential()
    credential.error = ClientAuthenticationError("Entra sign-in required")
    exchanger = flavour.make(server.url, credential)

    with pytest.raises(ClientAuthenticationError, match="Entra sign-in required") as raised:
        await flavour.call(exchanger)

    assert raised.value is credential.error
    assert server.requests == []


@pytest.mark.parametrize(
    ("result", "error"),
    [
        ("entra-token-secret-bare", TypeError),
        (AccessToken("", 0), TypeError),
        (AccessToken("   ", 0), TypeError),
        (AccessToken("entra-token-secret\r\nX-Injected: 1", 0), ValueError),
    ],
)
async def test_unusable_entra_token_is_rejected_before_sending(
    flavour: Flavour, server: ScriptedServer, result: Any, error: type[Exception], secret_registry: Any
) -> None:
    secret_registry.register("entra-token-secret-bare")
    credential = flavour.credential()
    credential.result = result
    exchanger = flavour.make(server.url, credential)

    with pytest.raises(error) as raised:
        await flavour.call(exchanger)

    assert server.requests == []
    assert_hides(raised.value, "entra-token-secret")


async def test_async_exchanger_needs_an_async_credential(server: ScriptedServer) -> None:
    exchanger = AsyncEntraTokenExchanger(server.url, FakeEntraCredential())

    with pytest.raises(TypeError, match="AsyncTokenCredential"):
        await exchanger()

    await exchanger.close()
    assert server.requests == []


# ---------------------------------------------------------------------------------------------------------
# Secrets, close, misc
# ---------------------------------------------------------------------------------------------------------


async def test_repr_names_endpoint_and_scopes_but_no_token(flavour: Flavour, server: ScriptedServer) -> None:
    exchanger = flavour.make(server.url, flavour.credential("entra-token-secret-1"))
    result = await flavour.call(exchanger)

    text = repr(exchanger)

    assert server.url in text
    assert DEFAULT_SCOPES[0] in text
    assert "closed=False" in text
    assert "entra-token-secret-1" not in text
    assert result.token not in text
    assert_hides(exchanger, *ENTRA_TOKENS, result.token)


async def test_http_logging_redacts_the_authorization_header(
    flavour: Flavour, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    exchanger = flavour.make(server.url, flavour.credential("entra-token-secret-1"))

    with caplog.at_level(logging.DEBUG):
        result = await flavour.call(exchanger)

    http_logs = [r for r in caplog.records if r.name.endswith("http_logging_policy")]
    assert http_logs, "the HTTP logging policy should have logged the exchange"
    assert any("REDACTED" in r.getMessage() for r in http_logs)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "entra-token-secret-1" not in everything
    assert result.token not in everything


async def test_close_closes_the_transport_and_stops_the_exchanger(flavour: Flavour, server: ScriptedServer) -> None:
    transport = flavour.transport()
    exchanger = flavour.make(server.url, transport=transport)
    await flavour.call(exchanger)
    assert transport.session is not None

    await flavour.close(exchanger)
    await flavour.close(exchanger)  # idempotent

    assert transport.session is None
    assert "closed=True" in repr(exchanger)
    with pytest.raises(RuntimeError, match="closed"):
        await flavour.call(exchanger)
    assert len(server.requests) == 1


async def test_context_manager_closes(flavour: Flavour, server: ScriptedServer) -> None:
    transport = flavour.transport()
    exchanger = flavour.make(server.url, transport=transport)

    if flavour.is_async:
        async with exchanger as entered:
            result = await entered()
    else:
        with exchanger as entered:
            result = entered()

    assert entered is exchanger
    assert result.token == server.issued[0].token
    assert transport.session is None
    with pytest.raises(RuntimeError, match="closed"):
        await flavour.call(exchanger)


@pytest.mark.parametrize("exchanger_class", [EntraTokenExchanger, AsyncEntraTokenExchanger])
def test_exchanger_cannot_be_pickled_or_copied(exchanger_class: type[Any]) -> None:
    exchanger = exchanger_class("https://example.invalid", FakeEntraCredential(), transport=object())

    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(exchanger)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.copy(exchanger)


# ---------------------------------------------------------------------------------------------------------
# Argument validation (nothing is sent, so no server)
# ---------------------------------------------------------------------------------------------------------

EXCHANGERS = [EntraTokenExchanger, AsyncEntraTokenExchanger]


@pytest.mark.parametrize("exchanger_class", EXCHANGERS)
@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("ftp://acs.example", "http"),
        ("https://", "http"),
        ("not a url", "http"),
        ("", "http"),
        ("acs.example.com", "http"),
        ("https://acs.example:0", "http"),
        ("https://acs.example:99999", "port"),
        ("https://acs.example?x=1", "query"),
        ("https://acs.example/?", "query"),
        ("https://acs.example/#frag", "fragment"),
        ("https://acs ex.example", "spaces"),
        ("https://acs.example/a\tb", "spaces"),
    ],
)
def test_invalid_endpoint_is_a_value_error(exchanger_class: type[Any], endpoint: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        exchanger_class(endpoint, FakeEntraCredential(), transport=object())


@pytest.mark.parametrize("exchanger_class", EXCHANGERS)
@pytest.mark.parametrize(
    "endpoint",
    [
        "endpoint=https://res.communication.azure.com/;accesskey=U0VDUkVUS0VZU0VDUkVUS0VZ",
        "ftp://admin:hunter2-password@acs.example",
        "https://admin:hunter2-password@acs.example/path?q#f",
        "not a url U0VDUkVUS0VZU0VDUkVUS0VZ hunter2-password",
    ],
)
def test_invalid_endpoint_message_never_quotes_the_value(exchanger_class: type[Any], endpoint: str) -> None:
    """A connection string or a URL with a password passed as the endpoint is not echoed (DESIGN section 5)."""
    with pytest.raises(ValueError, match="Invalid resource_endpoint") as raised:
        exchanger_class(endpoint, FakeEntraCredential(), transport=object())

    assert_hides(raised.value, "U0VDUkVUS0VZU0VDUkVUS0VZ", "hunter2", "acs.example", "res.communication")
    if "accesskey=" in endpoint:
        assert "looks like a connection string" in str(raised.value)


@pytest.mark.parametrize("exchanger_class", EXCHANGERS)
@pytest.mark.parametrize(
    "endpoint",
    [
        "https://acs.example/path",
        "https://acs.example:0",
        "https://user@acs.example",
        "https://acs ex.example",
        "endpoint=https://acs.example/;accesskey=U0VDUkVUS0VZ",
    ],
)
def test_entra_and_client_arguments_share_one_endpoint_validator(exchanger_class: type[Any], endpoint: str) -> None:
    with pytest.raises(ValueError) as from_client_arguments:
        parse_client_arguments(endpoint, AzureKeyCredential("a2V5"))
    with pytest.raises(ValueError) as from_exchanger:
        exchanger_class(endpoint, FakeEntraCredential(), transport=object())

    # Same rule broken, named the same way; only the argument's name and the advice differ.
    rule = str(from_client_arguments.value).split(": ", 1)[1].split(";", 1)[0]
    assert str(from_exchanger.value).startswith(f"Invalid resource_endpoint: {rule};")


@pytest.mark.parametrize("exchanger_class", EXCHANGERS)
def test_endpoint_user_info_is_rejected_without_quoting_it(exchanger_class: type[Any]) -> None:
    with pytest.raises(ValueError, match="user info") as raised:
        exchanger_class("https://admin:hunter2-password@acs.example", FakeEntraCredential(), transport=object())

    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("exchanger_class", EXCHANGERS)
@pytest.mark.parametrize("endpoint", [None, b"https://acs.example", 42])
def test_endpoint_of_another_type_is_a_type_error(exchanger_class: type[Any], endpoint: Any) -> None:
    with pytest.raises(TypeError, match="resource_endpoint must be a str"):
        exchanger_class(endpoint, FakeEntraCredential(), transport=object())


@pytest.mark.parametrize("exchanger_class", EXCHANGERS)
@pytest.mark.parametrize(
    ("scopes", "problem"),
    [
        ([], "no scope was given"),
        ((), "no scope was given"),
        (["https://graph.microsoft.com/.default"], "'https://graph.microsoft.com/.default' has none"),
        (["https://communication.azure.com//.default"], "'https://communication.azure.com//.default' has none"),
        ([f"{ENTRA_SCOPE_PREFIX}.default", f"{TEAMS_EXTENSION_SCOPE_PREFIXES[0]}.default"], "are mixed"),
        ([f"{TEAMS_EXTENSION_SCOPE_PREFIXES[1]}.default", "https://example.com/.default"], "example.com"),
        (["HTTPS://COMMUNICATION.AZURE.COM/CLIENTS/.default"], "has none of the allowed prefixes"),
    ],
)
def test_empty_mixed_or_other_scopes_are_a_value_error_naming_the_prefixes(
    exchanger_class: type[Any], scopes: list[str], problem: str
) -> None:
    with pytest.raises(ValueError, match="Scopes validation failed") as raised:
        exchanger_class("https://acs.example", FakeEntraCredential(), scopes, transport=object())

    assert problem in str(raised.value)
    for prefix in (*TEAMS_EXTENSION_SCOPE_PREFIXES, ENTRA_SCOPE_PREFIX):
        assert prefix in str(raised.value)


@pytest.mark.parametrize("exchanger_class", EXCHANGERS)
@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        (f"{ENTRA_SCOPE_PREFIX}.default", "sequence of str"),
        ({f"{ENTRA_SCOPE_PREFIX}.default"}, "sequence of str"),
        (42, "sequence of str"),
        ([f"{ENTRA_SCOPE_PREFIX}.default", None], "Each scope must be a str"),
        ([b"https://communication.azure.com/clients/.default"], "Each scope must be a str"),
    ],
)
def test_scopes_of_another_type_are_a_type_error(exchanger_class: type[Any], scopes: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        exchanger_class("https://acs.example", FakeEntraCredential(), scopes, transport=object())


@pytest.mark.parametrize("exchanger_class", EXCHANGERS)
@pytest.mark.parametrize("credential", [None, "entra-token", object()])
def test_credential_without_get_token_is_a_type_error(exchanger_class: type[Any], credential: Any) -> None:
    with pytest.raises(TypeError, match="token_credential must be an azure-core"):
        exchanger_class("https://acs.example", credential, transport=object())


def test_exchange_target_is_shared_by_both_flavours() -> None:
    target = ExchangeTarget.create("https://ACS.example.com/", [f"{TEAMS_EXTENSION_SCOPE_PREFIXES[1]}.default"])

    assert target.resource_endpoint == "https://ACS.example.com"
    assert target.url == "https://ACS.example.com" + TEAMS_PATH
    # The URL is derived, so it stays out of the repr (it repeats the endpoint).
    assert "url=" not in repr(target)


def test_default_transport_is_built_without_sending(server: ScriptedServer) -> None:
    """The sync default transport is a RequestsTransport given the remaining pipeline kwargs."""
    from azure.core.pipeline.transport import RequestsTransport

    exchanger = EntraTokenExchanger(server.url, FakeEntraCredential(), use_env_settings=False)
    try:
        transport = exchanger._pipeline._transport
        assert isinstance(transport, RequestsTransport)
        assert transport._use_env_settings is False
    finally:
        exchanger.close()
    assert server.requests == []
