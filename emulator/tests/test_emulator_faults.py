"""Fault injection: a seeded 503 rate with Retry-After, added latency, and clients that retry through it."""

from __future__ import annotations

import random
import time

from azure.communication.identity import CommunicationIdentityClient
from azure.core.credentials import AzureKeyCredential

from acs_emulator import Emulator
from emulator_support import JWKS, VERSION, send


def test_every_request_fails_at_rate_one() -> None:
    with Emulator(fail_rate=1.0, retry_after=7) as emu:
        reply = send(emu.port, "POST", f"/identities?api-version={VERSION}", {}, key=emu.access_key)
        assert (reply.status, reply.code) == (503, "ServiceUnavailable")
        assert reply.headers["Retry-After"] == "7"
        # Injected before authentication: an unsigned request fails the same way.
        unsigned = send(emu.port, "POST", f"/identities?api-version={VERSION}", {}, unsigned=True)
        assert unsigned.status == 503
        # The JWKS is exempt, so a backend can still validate tokens.
        assert send(emu.port, "GET", JWKS, unsigned=True).status == 200
        assert emu._identity_rows() == []


def test_the_failure_rate_follows_the_seeded_random_source() -> None:
    requests, seed, rate = 200, 1234, 0.3
    source = random.Random(seed)
    expected = sum(source.random() < rate for _ in range(requests))
    with Emulator(fail_rate=rate, fault_seed=seed, retry_after=0) as emu:
        statuses = [
            send(emu.port, "POST", f"/identities?api-version={VERSION}", {}, key=emu.access_key).status
            for _ in range(requests)
        ]
        assert statuses.count(503) == expected
        assert statuses.count(201) == requests - expected == len(emu._identity_rows())
    assert 0.2 * requests < expected < 0.4 * requests


def test_latency_is_added_before_handling() -> None:
    with Emulator(latency=0.2) as emu:
        started = time.perf_counter()
        reply = send(emu.port, "POST", f"/identities?api-version={VERSION}", {}, key=emu.access_key)
        elapsed = time.perf_counter() - started
        assert reply.status == 201
        assert elapsed >= 0.2


def test_the_official_client_retries_through_injected_failures() -> None:
    with Emulator(fail_rate=0.5, fault_seed=7, retry_after=0) as emu:
        client = CommunicationIdentityClient(
            emu.endpoint,
            AzureKeyCredential(emu.access_key),
            retry_total=20,
            retry_status=20,
            retry_backoff_factor=0.001,
        )
        users = [client.create_user().properties["id"] for _ in range(10)]
        assert len(set(users)) == 10
        assert {row.id for row in emu._identity_rows()} == set(users)
