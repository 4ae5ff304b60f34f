"""azure-core interop: the official chat clients send our token; Entra-mode wiring of the exchanger."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.communication.chat import ChatClient
from azure.communication.chat.aio import ChatClient as AsyncChatClient
from azure.core.credentials import AccessToken, AccessTokenInfo, SupportsTokenInfo, TokenCredential
from azure.core.credentials_async import AsyncSupportsTokenInfo, AsyncTokenCredential
from azure.core.pipeline.transport import (
    AsyncHttpResponse,
    AsyncHttpTransport,
    HttpResponse,
    HttpTransport,
)
from token_credential_helpers import EPOCH, AsyncCredential, FakeClock, Flavor, make_jwt
from token_credential_helpers import SyncCredential as CommunicationTokenCredential

ENDPOINT = "https://contoso.communication.azure.com"
HOUR = 3600.0


class _NoContent(HttpResponse):
    def __init__(self, request: Any) -> None:
        super().__init__(request, None)
        self.status_code = 204
        self.headers: dict[str, str] = {}
        self.reason = "No Content"
        self.content_type = None

    def body(self) -> bytes:
        return b""


class _AsyncNoContent(AsyncHttpResponse):
    def __init__(self, request: Any) -> None:
        super().__init__(request, None)
        self.status_code = 204
        self.headers: dict[str, str] = {}
        self.reason = "No Content"
        self.content_type = None

    def body(self) -> bytes:
        return b""


class RecordingTransport(HttpTransport):  # type: ignore[type-arg]
    """Records each request and answers 204 without touching the network."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def send(self, request: Any, **kwargs: Any) -> _NoContent:
        self.requests.append(request)
        return _NoContent(request)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __exit__(self, *args: Any) -> None:
        pass


class AsyncRecordingTransport(AsyncHttpTransport):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def send(self, request: Any, **kwargs: Any) -> _AsyncNoContent:
        self.requests.append(request)
        return _AsyncNoContent(request)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def __aexit__(self, *args: Any) -> None:
        pass


def test_our_credentials_satisfy_the_azure_core_protocols() -> None:
    sync = CommunicationTokenCredential(make_jwt(EPOCH))
    assert isinstance(sync, TokenCredential)
    assert isinstance(sync, SupportsTokenInfo)
    asynchronous = AsyncCredential(make_jwt(EPOCH))
    assert isinstance(asynchronous, AsyncTokenCredential)
    assert isinstance(asynchronous, AsyncSupportsTokenInfo)


def test_chat_client_sends_our_token(clock: FakeClock) -> None:
    tokens = iter([make_jwt(EPOCH + HOUR, n=1), make_jwt(EPOCH + 2 * HOUR, n=2)])
    credential = CommunicationTokenCredential(token_refresher=lambda: next(tokens), _clock=clock)
    transport = RecordingTransport()
    ChatClient(ENDPOINT, credential, transport=transport).delete_chat_thread("19:thread")
    first = credential.get_token().token
    # The bearer policy caches on the real clock; a new client asks us again after our refresh.
    clock.set(EPOCH + HOUR - 60)
    ChatClient(ENDPOINT, credential, transport=transport).delete_chat_thread("19:thread")
    second = credential.get_token().token
    assert [r.headers["Authorization"] for r in transport.requests] == [
        f"Bearer {first}",
        f"Bearer {second}",
    ]
    assert first != second
    assert transport.requests[0].url.startswith(f"{ENDPOINT}/chat/threads/19%3Athread")


async def test_async_chat_client_sends_our_token(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)

    async def refresher() -> str:
        return token

    credential = AsyncCredential(token_refresher=refresher, _clock=clock)
    transport = AsyncRecordingTransport()
    client = AsyncChatClient(ENDPOINT, credential, transport=transport)
    await client.delete_chat_thread("19:thread")
    await client.delete_chat_thread("19:thread")
    assert [r.headers["Authorization"] for r in transport.requests] == [f"Bearer {token}"] * 2
    await credential.close()


# -- Entra mode -------------------------------------------------------------------------------------------


class FakeExchanger:
    """Stands in for EntraTokenExchanger / AsyncEntraTokenExchanger."""

    def __init__(self, is_async: bool, *args: Any, **kwargs: Any) -> None:
        self.is_async = is_async
        self.args = args
        self.kwargs = kwargs
        self.calls = 0
        self.closed = 0

    def _next(self) -> AccessTokenInfo:
        self.calls += 1
        return AccessTokenInfo(f"acs-{self.calls}", int(EPOCH + HOUR * self.calls))

    def __call__(self) -> Any:
        if not self.is_async:
            return self._next()

        async def exchange() -> AccessTokenInfo:
            return self._next()

        return exchange()

    def close(self) -> Any:
        self.closed += 1
        if not self.is_async:
            return None

        async def close() -> None:
            return None

        return close()


async def test_entra_mode_wires_the_exchanger(flavor: Flavor, clock: FakeClock) -> None:
    made: list[FakeExchanger] = []

    def factory(*args: Any, **kwargs: Any) -> FakeExchanger:
        made.append(FakeExchanger(flavor.is_async, *args, **kwargs))
        return made[0]

    entra = object()
    credential = flavor.cls(
        resource_endpoint="https://contoso.communication.azure.com/",
        token_credential=entra,
        scopes=["https://communication.azure.com/clients/VoIP"],
        retry_total=0,
        _clock=clock,
        _exchanger_factory=factory,
    )
    exchanger = made[0]
    assert exchanger.args == (
        "https://contoso.communication.azure.com/",
        entra,
        ["https://communication.azure.com/clients/VoIP"],
    )
    assert exchanger.kwargs == {"retry_total": 0}
    assert exchanger.calls == 0  # lazy
    assert "mode='entra'" in repr(credential)
    assert (await flavor.get(credential)).token == "acs-1"
    assert (await flavor.get(credential)).token == "acs-1"
    assert exchanger.calls == 1
    clock.set(EPOCH + HOUR - 120)  # the on-demand window, no proactive refresh
    assert (await flavor.get(credential)).token == "acs-2"
    assert flavor.scheduler.entries == []
    await flavor.close(credential)
    await flavor.close(credential)
    assert exchanger.closed == 1


class _ExchangeHandler(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict[str, Any]]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        type(self).requests.append((self.path, self.headers["Authorization"], body))
        payload = json.dumps(
            {"accessToken": {"token": make_jwt(EPOCH + HOUR), "expiresOn": "2027-01-15T09:00:00Z"}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def exchange_server() -> Iterator[tuple[str, type[_ExchangeHandler]]]:
    handler = type("Handler", (_ExchangeHandler,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class _EntraCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("entra-token", int(EPOCH + HOUR))


def test_entra_mode_with_the_real_exchanger(
    exchange_server: tuple[str, type[_ExchangeHandler]], clock: FakeClock
) -> None:
    url, handler = exchange_server
    entra = _EntraCredential()
    with CommunicationTokenCredential(resource_endpoint=url + "/", token_credential=entra, _clock=clock) as credential:
        assert handler.requests == []  # nothing sent at construction
        token = credential.get_token()
        assert token.token == make_jwt(EPOCH + HOUR)
        assert token.expires_on == int(EPOCH + HOUR)  # 2027-01-15T09:00:00Z
        credential.get_token()
    assert handler.requests == [
        (
            "/access/entra/:exchangeAccessToken?api-version=2025-03-02-preview",
            "Bearer entra-token",
            {},
        )
    ]
    assert entra.scopes == [("https://communication.azure.com/clients/.default",)]
    with pytest.raises(RuntimeError, match="closed"):
        credential._exchanger()


class _AsyncEntraCredential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("async-entra-token", int(EPOCH + HOUR))


async def test_async_entra_mode_with_the_real_exchanger(
    exchange_server: tuple[str, type[_ExchangeHandler]], clock: FakeClock
) -> None:
    url, handler = exchange_server
    credential = AsyncCredential(
        resource_endpoint=url,
        token_credential=_AsyncEntraCredential(),
        scopes=["https://auth.msft.communication.azure.com/TeamsExtension.ManageCalls"],
        _clock=clock,
    )
    async with credential:
        assert handler.requests == []
        assert (await credential.get_token()).token == make_jwt(EPOCH + HOUR)
        assert (await credential.get_token_info()).expires_on == int(EPOCH + HOUR)
    assert handler.requests == [
        (
            "/access/teamsExtension/:exchangeAccessToken?api-version=2025-06-30",
            "Bearer async-entra-token",
            {},
        )
    ]
    with pytest.raises(RuntimeError, match="closed"):
        await credential.get_token()


# -- Entra mode prefers get_token_info; the async exchange follows the credential to a new event loop ------


class _InfoOnlyEntraCredential:
    """A SupportsTokenInfo credential without get_token (as azure-core's bearer policy accepts)."""

    def __init__(self) -> None:
        self.calls = 0

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.calls += 1
        return AccessTokenInfo("entra-info-token", int(EPOCH + HOUR))


class _BothEntraCredential(_InfoOnlyEntraCredential):
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise AssertionError("get_token_info is preferred")


class _AsyncInfoOnlyEntraCredential:
    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo("async-entra-info-token", int(EPOCH + HOUR))

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise AssertionError("get_token_info is preferred")


@pytest.mark.parametrize("entra_class", [_InfoOnlyEntraCredential, _BothEntraCredential])
def test_entra_mode_prefers_get_token_info(
    exchange_server: tuple[str, type[_ExchangeHandler]], clock: FakeClock, entra_class: type[Any]
) -> None:
    url, handler = exchange_server
    entra = entra_class()
    with CommunicationTokenCredential(resource_endpoint=url, token_credential=entra, _clock=clock) as credential:
        assert credential.get_token().token == make_jwt(EPOCH + HOUR)
    assert entra.calls == 1
    assert [authorization for _, authorization, _ in handler.requests] == ["Bearer entra-info-token"]


async def test_async_entra_mode_prefers_get_token_info(
    exchange_server: tuple[str, type[_ExchangeHandler]], clock: FakeClock
) -> None:
    url, handler = exchange_server
    async with AsyncCredential(
        resource_endpoint=url, token_credential=_AsyncInfoOnlyEntraCredential(), _clock=clock
    ) as credential:
        assert (await credential.get_token()).token == make_jwt(EPOCH + HOUR)
    assert [authorization for _, authorization, _ in handler.requests] == ["Bearer async-entra-info-token"]


def test_entra_credential_without_either_method_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="get_token_info or get_token"):
        CommunicationTokenCredential(resource_endpoint="https://contoso.communication.azure.com", token_credential=1)


def test_caller_supplied_aiohttp_transport_follows_the_credential_to_the_next_asyncio_run(
    exchange_server: tuple[str, type[_ExchangeHandler]], clock: FakeClock
) -> None:
    from azure.core.pipeline.transport import AioHttpTransport

    url, handler = exchange_server
    transport = AioHttpTransport()
    # What the exchanger relies on in azure-core's AioHttpTransport (pinned: a rename fails here first).
    assert {"session", "_session_owner", "_has_been_opened"} <= set(vars(transport))
    credential = AsyncCredential(
        resource_endpoint=url, token_credential=_AsyncEntraCredential(), transport=transport, _clock=clock
    )

    async def use() -> str:
        return (await credential.get_token()).token  # type: ignore[no-any-return]

    assert asyncio.run(use()) == make_jwt(EPOCH + HOUR)
    clock.advance(HOUR - 100)  # in the refresh window: the second run exchanges again, on its own loop
    assert asyncio.run(use()) == make_jwt(EPOCH + HOUR)  # was "Event loop is closed"
    assert len(handler.requests) == 2

    async def close() -> None:
        await credential.close()

    asyncio.run(close())
    assert transport.session is None
