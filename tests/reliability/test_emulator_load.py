"""Load on the emulator (``make soak`` only): many concurrent clients create users and issue tokens for 30 s.

32 asyncio clients (aiohttp, requests signed with the library's core) and 4 threads running the official
``azure-communication-identity`` client share one emulator backed by a SQLite file (WAL). Each client
creates users (some with a custom id, some with a token), issues tokens for users it created and reads
them back. Afterwards: no request failed, no id was handed out twice, the database holds exactly the users
that were created (none lost, none extra), its integrity check passes, and a restarted emulator on the
same file still knows them. ``ACS_LOAD_SECONDS`` sets the duration (default 30).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.core.credentials import AzureKeyCredential
from reliability_http import signed_headers
from yarl import URL

from acs_emulator import Emulator

pytestmark = pytest.mark.soak

API = "api-version=2025-03-02-preview"
ASYNC_CLIENTS = 32
SYNC_CLIENTS = 4


@dataclass
class Tally:
    created: list[str] = field(default_factory=list)
    custom: dict[str, str] = field(default_factory=dict)
    issued_for: set[str] = field(default_factory=set)
    tokens: list[str] = field(default_factory=list)
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


async def _send(
    session: aiohttp.ClientSession, emu: Emulator, tally: Tally, method: str, target: str, body: Any = None
) -> Any:
    data = b"" if body is None else json.dumps(body).encode()
    host = f"127.0.0.1:{emu.port}"
    headers = {"Content-Type": "application/json", **signed_headers(emu.access_key, method, target, host, data)}
    started = time.perf_counter()
    async with session.request(method, URL(f"{emu.endpoint}{target}", encoded=True), data=data, headers=headers) as r:
        payload = await r.read()
    tally.latencies.append(time.perf_counter() - started)
    tally.requests += 1
    if r.status >= 300:
        tally.errors.append(f"{method} {target.split('?')[0]} -> {r.status} {payload[:200]!r}")
        return None
    return json.loads(payload) if payload else {}


async def _async_client(emu: Emulator, deadline: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    async with aiohttp.ClientSession() as session:
        while time.time() < deadline:
            roll = rng.random()
            if roll < 0.35 or not tally.created:
                body: dict[str, Any] = {}
                if rng.random() < 0.5:
                    body["createTokenWithScopes"] = ["chat"]
                custom = None
                if rng.random() < 0.2:
                    custom = f"load-{seed}-{rng.randrange(20)}"
                    body["customId"] = custom
                result = await _send(session, emu, tally, "POST", f"/identities?{API}", body)
                if result is not None:
                    user = result["identity"]["id"]
                    if custom is None:
                        tally.created.append(user)
                    else:
                        assert tally.custom.setdefault(custom, user) == user, "a custom id got a second identity"
                    if "accessToken" in result:
                        tally.issued_for.add(user)
                        tally.tokens.append(result["accessToken"]["token"])
            elif roll < 0.85:
                user = rng.choice(tally.created)
                body = {"scopes": rng.choice([["chat"], ["voip"], ["chat", "voip"]])}
                result = await _send(session, emu, tally, "POST", f"/identities/{user}/:issueAccessToken?{API}", body)
                if result is not None:
                    tally.issued_for.add(user)
                    tally.tokens.append(result["token"])
            else:
                user = rng.choice(tally.created)
                result = await _send(session, emu, tally, "GET", f"/identities/{user}?{API}")
                if result is not None and result["id"] != user:
                    tally.errors.append("GET returned another identity")


def _sync_client(emu: Emulator, deadline: float, tally: Tally) -> None:
    client = CommunicationIdentityClient(emu.endpoint, AzureKeyCredential(emu.access_key))
    while time.time() < deadline:
        try:
            user, token = client.create_user_and_token([CommunicationTokenScope.CHAT])
            tally.created.append(user.properties["id"])
            tally.issued_for.add(user.properties["id"])
            tally.tokens.append(token.token)
            again = client.get_token(user, [CommunicationTokenScope.VOIP])
            tally.tokens.append(again.token)
            tally.requests += 2
        except Exception as exc:
            tally.errors.append(f"official client: {type(exc).__name__}")


async def _run(emu: Emulator, seconds: float) -> tuple[list[Tally], list[Tally]]:
    deadline = time.time() + seconds
    async_tallies = [Tally() for _ in range(ASYNC_CLIENTS)]
    sync_tallies = [Tally() for _ in range(SYNC_CLIENTS)]
    threads = [threading.Thread(target=_sync_client, args=(emu, deadline, t), daemon=True) for t in sync_tallies]
    for thread in threads:
        thread.start()
    await asyncio.gather(*(_async_client(emu, deadline, t, i) for i, t in enumerate(async_tallies)))
    for thread in threads:
        await asyncio.to_thread(thread.join, 60)
        assert not thread.is_alive()
    return async_tallies, sync_tallies


def test_emulator_under_load_loses_nothing(tmp_path: Path, secret_registry: Any) -> None:
    seconds = float(os.environ.get("ACS_LOAD_SECONDS", "30"))
    database = tmp_path / "identities.db"
    with Emulator(database=database) as emu:
        secret_registry.register(emu.access_key, "the load test emulator's access key")
        async_tallies, sync_tallies = asyncio.run(_run(emu, seconds))
        rows = emu._identity_rows()
        assert emu.unexpected_errors == 0
    tallies = async_tallies + sync_tallies
    errors = [e for t in tallies for e in t.errors]
    assert not errors, errors[:10]

    created = [u for t in tallies for u in t.created]
    customs = [u for t in async_tallies for u in t.custom.values()]
    duplicates = [u for u, n in Counter(created + customs).items() if n > 1]
    assert not duplicates, "an id was handed out twice"
    stored = {r.id: r for r in rows}
    assert set(stored) == set(created) | set(customs), "lost or phantom users"
    issued_for = set().union(*(t.issued_for for t in tallies))
    assert all(stored[u].last_token_issued_at is not None for u in issued_for)
    tokens = [tok for t in tallies for tok in t.tokens]
    secret_registry.register_all(tokens)
    # Every token names a stored user (two requests for one user and scopes in one second may get the same
    # token: RS256 is deterministic and the claims have one-second resolution).
    claims = [jwt.decode(tok, options={"verify_signature": False}) for tok in set(tokens)]
    assert {"8:" + c["skypeid"] for c in claims} <= set(stored)

    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM identities").fetchone() == (len(stored),)
    with Emulator(database=database) as again:
        assert {r.id for r in again._identity_rows()} == set(stored)

    requests = sum(t.requests for t in tallies)
    latencies = sorted(x for t in async_tallies for x in t.latencies)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(
        f"emulator load {seconds:.0f} s: {requests} requests ({requests / seconds:.0f}/s), "
        f"{len(stored)} users, {len(tokens)} tokens, 0 errors, p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
        f"({ASYNC_CLIENTS} aiohttp clients + {SYNC_CLIENTS} official-client threads)"
    )
    # Ids are uuid-based: a collision would be a bug in the emulator, not chance.
    assert all(uuid.UUID(u.rsplit("_", 1)[1]) for u in stored)
