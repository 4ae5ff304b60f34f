"""The official ``azure-communication-identity`` client's own results feed the credential, unchanged.

The identity client (sync and aio) talks to the in-process emulator and returns
``AccessToken(token, "2026-12-02T20:16:31.0000000+00:00")``: an ISO 8601 **string** expiry. Each README
scenario (static token; refresher; refresher with an initial token; proactive refresh) gets exactly what the
client returns, and the credential must report the token's own ``exp`` claim as its expiry.

The credential runs on a fake clock (through the helpers' private seam) that starts at the real time: the
emulator checks the identity client's ``x-ms-date`` against the real clock, so only the credential's time is
moved. Tokens issued after a move still expire 24 hours after the *real* time, which the assertions allow for.

Also here: a token that never expires (``expires_on=inf``) is published as a far-future whole number, so
azure-core's real bearer policy calls the credential once, not on every request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.communication.identity import CommunicationIdentityClient
from azure.communication.identity.aio import CommunicationIdentityClient as AsyncIdentityClient
from azure.core.credentials import AccessToken, AccessTokenInfo, AzureKeyCredential
from azure.core.pipeline import AsyncPipeline, Pipeline
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy
from azure.core.pipeline.transport import AioHttpTransport, RequestsTransport
from azure.core.rest import HttpRequest
from token_credential_helpers import FakeClock, Flavor, ManualScheduler

from acs_emulator import Emulator
from azure.communication.common._jwt import read_jwt
from azure.communication.common._refresh import ON_DEMAND_WINDOW, PROACTIVE_WINDOW
from azure.communication.common._tokens import NEVER_EXPIRES_PUBLIC

SCOPES = ["chat"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    # The real time: the emulator issues tokens on it, and the credential's clock starts there.
    return FakeClock(time.time())


@pytest.fixture
def scheduler(clock: FakeClock) -> ManualScheduler:
    return ManualScheduler(clock)


@pytest.fixture(params=["sync", "aio"])
def flavor(request: pytest.FixtureRequest, clock: FakeClock, scheduler: ManualScheduler) -> Flavor:
    return Flavor(request.param, clock, scheduler)


def _exp(token: str) -> int:
    exp = read_jwt(token).expires_on
    assert exp is not None
    return int(exp)


class Identity:
    """The official identity client in the flavour's shape; ``issued`` records every AccessToken it returned."""

    def __init__(self, flavor: Flavor, emulator: Emulator, secret_registry: Any) -> None:
        self.flavor = flavor
        self.registry = secret_registry
        credential = AzureKeyCredential(emulator.access_key)
        self.sync = CommunicationIdentityClient(emulator.endpoint, credential)
        self.aio: AsyncIdentityClient | None = (
            AsyncIdentityClient(emulator.endpoint, credential) if flavor.is_async else None
        )
        self.issued: list[AccessToken] = []
        self.user = None

    def _keep(self, token: AccessToken) -> AccessToken:
        self.registry.register(token.token, "a token from the official identity client")
        self.issued.append(token)
        return token

    async def create_user_and_token(self) -> AccessToken:
        if self.aio is not None:
            self.user, token = await self.aio.create_user_and_token(SCOPES)
        else:
            self.user, token = self.sync.create_user_and_token(SCOPES)
        return self._keep(token)

    async def get_token(self) -> AccessToken:
        if self.user is None:
            self.user = self.sync.create_user()
        if self.aio is not None:
            return self._keep(await self.aio.get_token(self.user, SCOPES))
        return self._keep(self.sync.get_token(self.user, SCOPES))

    def refresher(self) -> Callable[[], Any]:
        """``lambda: identity.get_token(user, ["chat"])``, sync or ``async``, returning the client's result."""
        if self.user is None:
            self.user = self.sync.create_user()
        user = self.user
        if self.aio is not None:
            aio = self.aio

            async def refresh() -> AccessToken:
                return self._keep(await aio.get_token(user, SCOPES))

            return refresh
        return lambda: self._keep(self.sync.get_token(user, SCOPES))

    async def close(self) -> None:
        # The sync client has no close(); its requests session is closed when it is collected.
        if self.aio is not None:
            await self.aio.close()


@pytest.fixture
async def identity(flavor: Flavor, emulator: Emulator, secret_registry: Any) -> Any:
    client = Identity(flavor, emulator, secret_registry)
    yield client
    await client.close()


def _make(flavor: Flavor, *args: Any, **kwargs: Any) -> Any:
    # The helpers' seamed class, without Flavor.make's wrapping of plain refreshers: the identity refreshers
    # are already in the flavour's shape (sync, or async def).
    return flavor.cls(*args, _clock=flavor.clock, _scheduler=flavor.scheduler, _jitter=lambda: 0.0, **kwargs)


async def _check_reports(flavor: Flavor, credential: Any, issued: AccessToken) -> None:
    token = await flavor.get(credential)
    info = await flavor.get_info(credential)
    assert token.token == info.token == issued.token
    assert token.expires_on == info.expires_on == _exp(issued.token)


def test_the_official_client_returns_a_string_expiry_that_matches_exp(emulator: Emulator) -> None:
    # The precondition of every test here: what the identity client really hands out.
    client = CommunicationIdentityClient(emulator.endpoint, AzureKeyCredential(emulator.access_key))
    _, token = client.create_user_and_token(SCOPES)
    assert isinstance(token, AccessToken)
    assert isinstance(token.expires_on, str)
    assert token.expires_on.endswith(("Z", "+00:00"))


@pytest.mark.parametrize("source", ["get_token", "create_user_and_token"])
async def test_static_token_from_the_official_client(flavor: Flavor, identity: Identity, source: str) -> None:
    issued = await (identity.get_token() if source == "get_token" else identity.create_user_and_token())
    credential = flavor.make(issued)
    await _check_reports(flavor, credential, issued)
    # A static credential keeps its token, even past expiry (JS and Python behaviour).
    flavor.clock.set(_exp(issued.token) + 10)
    assert (await flavor.get(credential)).token == issued.token
    await flavor.close(credential)


async def test_refresher_returning_the_official_clients_result(flavor: Flavor, identity: Identity) -> None:
    credential = _make(flavor, token_refresher=identity.refresher())
    assert identity.issued == []  # lazy: nothing is fetched at construction
    await flavor.get(credential)
    assert len(identity.issued) == 1
    await _check_reports(flavor, credential, identity.issued[0])
    # Into the on-demand window (stale): the next call refreshes through the official client again.
    flavor.clock.set(_exp(identity.issued[0].token) - ON_DEMAND_WINDOW / 2)
    await flavor.get(credential)
    await flavor.settle(credential)
    assert len(identity.issued) == 2
    await _check_reports(flavor, credential, identity.issued[1])
    await flavor.close(credential)


async def test_refresher_with_the_initial_token_of_create_user_and_token(flavor: Flavor, identity: Identity) -> None:
    initial = await identity.create_user_and_token()
    credential = _make(flavor, initial, token_refresher=identity.refresher())
    await _check_reports(flavor, credential, initial)
    assert len(identity.issued) == 1  # fresh: the initial token is used, the refresher is not called
    flavor.clock.set(_exp(initial.token) - ON_DEMAND_WINDOW / 2)
    await flavor.get(credential)
    await flavor.settle(credential)
    assert len(identity.issued) == 2
    await _check_reports(flavor, credential, identity.issued[-1])
    await flavor.close(credential)


async def test_proactive_refresh_with_the_official_client(flavor: Flavor, identity: Identity) -> None:
    initial = await identity.create_user_and_token()
    credential = _make(flavor, initial, token_refresher=identity.refresher(), proactive_refresh=True)
    await _check_reports(flavor, credential, initial)
    info = await flavor.get_info(credential)
    assert info.refresh_on == _exp(initial.token) - PROACTIVE_WINDOW
    # The background refresh is due at refresh_on: run it on the fake clock.
    flavor.clock.set(_exp(initial.token) - PROACTIVE_WINDOW)
    assert await flavor.run_due(credential) >= 1
    assert len(identity.issued) == 2
    await _check_reports(flavor, credential, identity.issued[-1])
    # The refreshed token is the client's string-expiry AccessToken, read the same way.
    assert isinstance(identity.issued[-1].expires_on, str)
    await flavor.close(credential)


# --------------------------------------------------------------------------------------------------------
# expires_on=inf: "never expires", and azure-core's bearer policy sees it so
# --------------------------------------------------------------------------------------------------------


class Counting:
    """A credential wrapper that counts the calls azure-core's bearer policy makes."""

    def __init__(self, inner: Any, *, published_expiry: int | None = None) -> None:
        self.inner = inner
        self.calls = 0
        self.published_expiry = published_expiry

    def _publish(self, info: AccessTokenInfo) -> AccessTokenInfo:
        if self.published_expiry is None:
            return info
        return AccessTokenInfo(info.token, self.published_expiry)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        token = self.inner.get_token(*scopes, **kwargs)
        return token if self.published_expiry is None else AccessToken(token.token, self.published_expiry)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.calls += 1
        return self._publish(self.inner.get_token_info(*scopes, options=options))


class AsyncCounting(Counting):
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # type: ignore[override]
        self.calls += 1
        return await self.inner.get_token(*scopes, **kwargs)  # type: ignore[no-any-return]

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:  # type: ignore[override]
        self.calls += 1
        return await self.inner.get_token_info(*scopes, options=options)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.inner.close()


REQUESTS = 5


def _send_sync(emulator: Emulator, credential: Any) -> list[str]:
    policy = BearerTokenCredentialPolicy(credential, "https://communication.azure.com//.default")
    sent: list[str] = []
    with Pipeline(RequestsTransport(use_env_settings=False), [policy]) as pipeline:
        for _ in range(REQUESTS):
            # The JWKS document: answered 200 whatever the bearer token (a 401 would clear azure-core's cache).
            response = pipeline.run(HttpRequest("GET", emulator.jwks_url), enforce_https=False)
            assert response.http_response.status_code == 200
            sent.append(response.http_request.headers["Authorization"])
    return sent


@pytest.mark.parametrize("kind", [AccessToken, AccessTokenInfo])
def test_a_token_that_never_expires_is_fetched_once_by_the_bearer_policy(
    emulator: Emulator, kind: Any, clock: FakeClock, scheduler: ManualScheduler
) -> None:
    flavor = Flavor("sync", clock, scheduler)
    credential = flavor.make(kind("never-expiring-opaque-token", math.inf))
    assert credential.get_token().expires_on == NEVER_EXPIRES_PUBLIC
    assert credential.get_token_info().refresh_on is None
    counting = Counting(credential)
    sent = _send_sync(emulator, counting)
    assert sent == ["Bearer never-expiring-opaque-token"] * REQUESTS
    assert counting.calls == 1
    # The defect this guards against: published as 0, azure-core asks again for every request.
    zero = Counting(credential, published_expiry=0)
    _send_sync(emulator, zero)
    assert zero.calls == REQUESTS


async def test_a_token_that_never_expires_is_fetched_once_by_the_async_bearer_policy(
    emulator: Emulator, clock: FakeClock, scheduler: ManualScheduler
) -> None:
    flavor = Flavor("aio", clock, scheduler)
    credential = flavor.make(AccessToken("never-expiring-opaque-token", math.inf))
    counting = AsyncCounting(credential)
    policy = AsyncBearerTokenCredentialPolicy(counting, "https://communication.azure.com//.default")
    async with AsyncPipeline(AioHttpTransport(), [policy]) as pipeline:
        for _ in range(REQUESTS):
            response = await pipeline.run(HttpRequest("GET", emulator.jwks_url), enforce_https=False)
            assert response.http_response.status_code == 200
            assert response.http_request.headers["Authorization"] == "Bearer never-expiring-opaque-token"
    assert counting.calls == 1
    await credential.close()
