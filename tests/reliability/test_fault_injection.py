"""The HMAC policy and the credential's Entra mode against the emulator with fault injection on.

The emulator adds latency and answers a seeded share of requests with 503 + ``Retry-After`` (0 here, so the
suite does not sleep; 1 in one case). Calls must succeed through azure-core's retry policy, and every
attempt must carry a fresh, valid signature: the policy's date comes from a clock that moves one second per
attempt, a recording policy placed after it re-verifies each attempt with the emulator's own verifier, and
the emulator verifies every attempt it does not fail on purpose (a stale or reused signature would be 401).
Statuses are counted per attempt: some 503s, every call ending in a success, no other status.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.pipeline import AsyncPipeline, Pipeline, PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncRetryPolicy, RetryPolicy, SansIOHTTPPolicy
from azure.core.pipeline.transport import AioHttpTransport, RequestsTransport
from azure.core.rest import HttpRequest

import azure.communication.common as common
import azure.communication.common.aio as common_aio
from acs_emulator import Emulator
from acs_emulator._auth import verify_hmac
from azure.communication.common import CommunicationAccessKeyCredentialPolicy
from azure.communication.common._signing import decode_access_key

API = "api-version=2023-10-01"
CALLS = 12
FAIL_RATE = 0.4
SEED = 20261127


class SteppingClock:
    """Real time plus one second per reading: every attempt is signed with a new ``x-ms-date``."""

    def __init__(self) -> None:
        self._base = time.time()
        self._steps = itertools.count()

    def __call__(self) -> float:
        return self._base + next(self._steps)


@dataclass
class Attempt:
    method: str
    url: str
    date: str
    authorization: str
    status: int = 0


@dataclass
class Recorder(SansIOHTTPPolicy[Any, Any]):
    """Placed after the signing policy: re-verifies and records every attempt as it goes on the wire."""

    key: bytes
    attempts: list[Attempt] = field(default_factory=list)

    def on_request(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        split = urlsplit(http.url)
        target = split.path + (f"?{split.query}" if split.query else "")
        headers = dict(http.headers)
        headers.setdefault("Host", split.netloc)
        body = http.content if isinstance(http.content, bytes) else (http.body or b"")
        # The emulator's own verifier, on what the transport will send; raises a 401 ApiError if invalid.
        verify_hmac(method=http.method, raw_target=target, headers=headers, body=body, key=self.key, now=time.time())
        self.attempts.append(Attempt(http.method, http.url, headers["x-ms-date"], headers["Authorization"]))

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        self.attempts[-1].status = response.http_response.status_code


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(latency=0.01, fail_rate=FAIL_RATE, retry_after=0, fault_seed=SEED) as emu:
        yield emu


def _requests(emulator: Emulator, user_ids: list[str]) -> list[HttpRequest]:
    body = {"scopes": ["chat", "voip"]}
    create = [
        HttpRequest("POST", f"{emulator.endpoint}/identities?{API}", json={"createTokenWithScopes": ["chat"]})
        for _ in range(CALLS)
    ]
    issue = [
        HttpRequest("POST", f"{emulator.endpoint}/identities/{uid}/:issueAccessToken?{API}", json=body)
        for uid in user_ids
    ]
    return create + issue


def _check_attempts(recorder: Recorder, calls: int, emulator: Emulator) -> Counter[int]:
    statuses = Counter(a.status for a in recorder.attempts)
    assert set(statuses) <= {200, 201, 503}, statuses
    assert statuses[503] > 0, "fault injection never fired: the test proves nothing"
    assert statuses[200] + statuses[201] == calls
    # Every attempt was signed anew: no two attempts share a date or a signature.
    assert len({a.date for a in recorder.attempts}) == len(recorder.attempts)
    assert len({a.authorization for a in recorder.attempts}) == len(recorder.attempts)
    assert emulator.unexpected_errors == 0
    return statuses


def test_hmac_policy_retries_through_injected_503s_sync(emulator: Emulator, secret_registry: Any) -> None:
    secret_registry.register(emulator.access_key, "the fault-injection emulator's access key")
    recorder = Recorder(decode_access_key(emulator.access_key))
    signer = CommunicationAccessKeyCredentialPolicy(AzureKeyCredential(emulator.access_key), _clock=SteppingClock())
    retry = RetryPolicy(retry_total=10, retry_status=10, retry_backoff_factor=0.01)
    with Pipeline(RequestsTransport(), [retry, signer, recorder]) as pipeline:
        created = [pipeline.run(r).http_response for r in _requests(emulator, [])]
        assert [r.status_code for r in created] == [201] * CALLS
        users = [json.loads(r.body())["identity"]["id"] for r in created]
        issued = [pipeline.run(r).http_response for r in _requests(emulator, users)[CALLS:]]
        assert [r.status_code for r in issued] == [200] * CALLS
    statuses = _check_attempts(recorder, 2 * CALLS, emulator)
    tokens = [json.loads(r.body())["token"] for r in issued]
    secret_registry.register_all(tokens)
    assert all(not emulator.is_token_revoked(t) for t in tokens)  # issued (and signed) by this emulator
    assert sorted(r.id for r in emulator._identity_rows()) == sorted(users)
    print(f"sync HMAC policy: {dict(statuses)} over {2 * CALLS} calls")


async def test_hmac_policy_retries_through_injected_503s_async(emulator: Emulator, secret_registry: Any) -> None:
    secret_registry.register(emulator.access_key, "the fault-injection emulator's access key")
    recorder = Recorder(decode_access_key(emulator.access_key))
    signer = CommunicationAccessKeyCredentialPolicy(emulator.access_key, _clock=SteppingClock())
    retry = AsyncRetryPolicy(retry_total=10, retry_status=10, retry_backoff_factor=0.01)
    async with AsyncPipeline(AioHttpTransport(), [retry, signer, recorder]) as pipeline:
        created = []
        for request in _requests(emulator, []):
            response = (await pipeline.run(request)).http_response
            await response.read()
            created.append(response)
        assert [r.status_code for r in created] == [201] * CALLS
        users = [json.loads(r.body())["identity"]["id"] for r in created]
        for request in _requests(emulator, users)[CALLS:]:
            response = (await pipeline.run(request)).http_response
            await response.read()
            assert response.status_code == 200
            secret_registry.register(json.loads(response.body())["token"])
    statuses = _check_attempts(recorder, 2 * CALLS, emulator)
    assert sorted(r.id for r in emulator._identity_rows()) == sorted(users)
    print(f"async HMAC policy: {dict(statuses)} over {2 * CALLS} calls")


def test_a_retry_after_one_second_is_honoured_and_resigned(secret_registry: Any) -> None:
    """With the real clock and Retry-After: 1, the retry is signed with a later date (one retry, ~1 s)."""
    with Emulator(fail_rate=0.5, retry_after=1, fault_seed=1) as emu:
        secret_registry.register(emu.access_key)
        recorder = Recorder(decode_access_key(emu.access_key))
        signer = CommunicationAccessKeyCredentialPolicy(emu.access_key)
        # fault_seed=1: the first random draw (0.134) fails the first attempt, the second (0.847) passes.
        with Pipeline(RequestsTransport(), [RetryPolicy(retry_total=3), signer, recorder]) as pipeline:
            response = pipeline.run(HttpRequest("POST", f"{emu.endpoint}/identities?{API}", json={})).http_response
    assert response.status_code == 201
    assert [a.status for a in recorder.attempts] == [503, 201]
    first, second = recorder.attempts
    assert first.date != second.date
    assert first.authorization != second.authorization


# -- the credential's Entra mode -----------------------------------------------------------------------------


def _entra_jwt(oid: str) -> str:
    def seg(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {"tid": "00000000-0000-0000-0000-0000000000aa", "oid": oid, "exp": int(time.time()) + 3600}
    return f"{seg({'alg': 'RS256', 'typ': 'JWT'})}.{seg(claims)}.ZW50cmEtc2lnbmF0dXJlLWZvci10ZXN0cw"


class EntraUser:
    """A fake azure-core TokenCredential (sync and async) for one Entra user."""

    def __init__(self) -> None:
        self.token = _entra_jwt(str(uuid.uuid4()))
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)

    def as_async(self) -> Any:
        user = self

        class Async:
            async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
                return user.get_token(*scopes, **kwargs)

            async def close(self) -> None:
                pass

        return Async()


class CountingTransport(RequestsTransport):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.statuses: Counter[int] = Counter()

    def send(self, request: Any, **kwargs: Any) -> Any:
        response = super().send(request, **kwargs)
        self.statuses[response.status_code] += 1
        return response


class AsyncCountingTransport(AioHttpTransport):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.statuses: Counter[int] = Counter()

    async def send(self, request: Any, **kwargs: Any) -> Any:
        response = await super().send(request, **kwargs)
        self.statuses[response.status_code] += 1
        return response


USERS = 8


def test_entra_mode_exchanges_through_injected_503s_sync(emulator: Emulator, secret_registry: Any) -> None:
    users = [EntraUser() for _ in range(USERS)]
    secret_registry.register_all(u.token for u in users)
    transport = CountingTransport()
    tokens = []
    for user in users:
        credential = common.CommunicationTokenCredential(
            resource_endpoint=emulator.endpoint,
            token_credential=user,
            transport=transport,
            retry_total=10,
            retry_status=10,
            retry_backoff_factor=0.01,
        )
        # Two calls: the second is served from the cache (the Entra credential is not asked again).
        first, second = credential.get_token(), credential.get_token()
        assert first.token == second.token
        assert user.calls == 1
        secret_registry.assert_clean(credential, first)
        tokens.append(first.token)
        # The transport is shared: closing the credential would close it for the next user.
    transport.close()
    secret_registry.register_all(tokens)
    assert transport.statuses[503] > 0, "fault injection never fired"
    assert transport.statuses[200] == USERS
    assert set(transport.statuses) == {200, 503}
    assert len(set(tokens)) == USERS
    assert all(not emulator.is_token_revoked(t) for t in tokens)
    assert len(emulator._identity_rows()) == USERS
    assert emulator.unexpected_errors == 0
    print(f"sync Entra exchange: {dict(transport.statuses)} for {USERS} users")


async def test_entra_mode_exchanges_through_injected_503s_async(emulator: Emulator, secret_registry: Any) -> None:
    users = [EntraUser() for _ in range(USERS)]
    secret_registry.register_all(u.token for u in users)
    statuses: Counter[int] = Counter()
    tokens = []
    for user in users:
        transport = AsyncCountingTransport()
        async with common_aio.CommunicationTokenCredential(
            resource_endpoint=emulator.endpoint,
            token_credential=user.as_async(),
            transport=transport,
            retry_total=10,
            retry_status=10,
            retry_backoff_factor=0.01,
        ) as credential:
            results = await asyncio.gather(*(credential.get_token() for _ in range(20)))
            assert len({r.token for r in results}) == 1, "concurrent callers caused more than one exchange"
            assert user.calls == 1
            tokens.append(results[0].token)
        statuses.update(transport.statuses)
    secret_registry.register_all(tokens)
    assert statuses[503] > 0
    assert statuses[200] == USERS
    assert set(statuses) == {200, 503}
    assert all(not emulator.is_token_revoked(t) for t in tokens)
    assert len(emulator._identity_rows()) == USERS
    print(f"async Entra exchange: {dict(statuses)} for {USERS} users")
