"""End to end: CommunicationTokenCredential in Entra mode, sync and async, against the scripted server."""

from __future__ import annotations

import time
from typing import Any

from entra_support import ACS_TOKEN_LIFETIME, ENTRA_TOKENS, Flavour, ScriptedServer

from azure.communication.common._credential import CommunicationTokenCredential, _create
from azure.communication.common.aio._credential import (
    CommunicationTokenCredential as AsyncCommunicationTokenCredential,
)

ENTRA_PATH = "/access/entra/:exchangeAccessToken?api-version=2025-03-02-preview"


class FakeClock:
    """Seconds since the epoch, moved only by :meth:`advance`."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def _get_token(flavour: Flavour, credential: Any) -> Any:
    if flavour.is_async:
        return await credential.get_token()
    return credential.get_token()


async def _close(flavour: Flavour, credential: Any) -> None:
    if flavour.is_async:
        await credential.close()
    else:
        credential.close()


def _credential(flavour: Flavour, server: ScriptedServer, entra: Any, clock: FakeClock, transport: Any) -> Any:
    cls = AsyncCommunicationTokenCredential if flavour.is_async else CommunicationTokenCredential
    # The private factory: the public signature has no clock seam.
    return _create(
        cls,
        resource_endpoint=server.url + "/",
        token_credential=entra,
        transport=transport,
        retry_backoff_factor=0,
        _clock=clock,
    )


async def test_credential_exchanges_once_caches_and_re_exchanges_when_expired(
    flavour: Flavour, server: ScriptedServer
) -> None:
    clock = FakeClock()
    server.clock = clock
    entra = flavour.credential(ENTRA_TOKENS[0])
    transport = flavour.transport()
    credential = _credential(flavour, server, entra, clock, transport)
    try:
        await _check_exchange_and_cache(flavour, server, entra, clock, credential)
    finally:
        await _close(flavour, credential)
    assert transport.session is None  # closing the credential closed the exchanger's transport


async def _check_exchange_and_cache(
    flavour: Flavour, server: ScriptedServer, entra: Any, clock: FakeClock, credential: Any
) -> None:
    assert server.requests == []  # lazy: nothing at construction

    first = await _get_token(flavour, credential)
    again = await _get_token(flavour, credential)

    assert first.token == server.issued[0].token
    assert again.token == first.token
    assert len(server.requests) == 1  # the second call was served from the cache
    assert len(entra.calls) == 1  # and did not consult the Entra credential
    assert [r.target for r in server.requests] == [ENTRA_PATH]

    # Past the ACS token's expiry the credential exchanges again, with the Entra token of that moment.
    entra.token = ENTRA_TOKENS[1]
    clock.advance(ACS_TOKEN_LIFETIME + 60)
    renewed = await _get_token(flavour, credential)

    assert renewed.token == server.issued[1].token != first.token
    assert server.requests[1].headers["authorization"] == f"Bearer {ENTRA_TOKENS[1]}"
