"""A conversation that outlives its tokens: short tokens, ``proactive_refresh=True``, the official chat client.

Two users talk through the sync client on the sync credential while a third talks, at the same time,
through the ``aio`` client on the ``aio`` credential.

This test necessarily runs in real time (the credential's background refresh and azure-core's bearer
policy both read the wall clock). It lasts about ten seconds: three-second tokens, so the conversation
spans three token lifetimes. Its assertions are about the recorded timestamps, not about how long
anything slept: every token was replaced before it expired, no token was refreshed twice, no request
failed, and a revoked user's credential fails until its refresher has brought a token issued after the
revocation.

azure-core's bearer policy keeps a token until its ``expires_on``, so it can send one in its last
milliseconds; the emulator's clock-skew allowance (``CLOCK_SKEW``) is what keeps those requests from
arriving expired. ``test_chat_user_auth.py`` pins that allowance with a fake clock.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator

import jwt
import pytest
from azure.communication.chat import ChatClient, ChatParticipant
from azure.communication.chat.aio import ChatClient as AsyncChatClient
from azure.communication.identity import CommunicationUserIdentifier
from azure.core.exceptions import ClientAuthenticationError

from acs_emulator import Emulator
from azure.communication.common import CommunicationTokenCredential
from azure.communication.common.aio import CommunicationTokenCredential as AsyncCommunicationTokenCredential
from chat_support import create_user, issue_token, request, revoke, thread_path, with_version

LIFETIME = 3
DURATION = 9.0
#: Pacing of the conversation: a message every few tens of milliseconds keeps the two cores for others.
PAUSE = 0.04


class Refresher:
    """A refresher that records when it was called and the ``iat``/``exp`` of what it returned."""

    def __init__(self, emu: Emulator, user: str) -> None:
        self._emu = emu
        self._user = user
        # The sync credentials' worker pool and the aio conversation's executor call it from other threads.
        self._lock = threading.Lock()
        self.calls: list[tuple[float, int, int]] = []

    def __call__(self) -> str:
        called = time.time()
        token = issue_token(self._emu, self._user, seconds=LIFETIME)
        claims = jwt.decode(token, options={"verify_signature": False})
        with self._lock:
            self.calls.append((called, int(claims["iat"]), int(claims["exp"])))
        return token


def _check_schedule(calls: list[tuple[float, int, int]], until: float) -> None:
    """Each token was refreshed once: never two refreshes for one token, and one per lifetime at least.

    The bounds come from the recorded times only. The credential refreshes a short token half-way through
    what is left of it and never at intervals under one second, so calls are at least ~1 s apart (a double
    refresh would be closer), and the conversation's span holds at most one call per second. A loaded
    machine may run a scheduled refresh late; that is absorbed by the on-demand path (the requests above
    did not fail), so lateness is not asserted here.
    """
    for (called, _, _), (next_called, _, _) in itertools.pairwise(calls):
        assert next_called - called >= 0.9, f"a token was refreshed twice: {calls}"
    span = until - calls[0][0]
    assert span / LIFETIME <= len(calls) <= span / 0.9 + 1, (span, calls)
    # The background refresh kept going to the end: the last token was fetched within a lifetime of it.
    assert until < calls[-1][2] + LIFETIME, (until, calls)


@pytest.fixture(scope="module")
def short_emulator() -> Iterator[Emulator]:
    with Emulator(https=True, allow_short_tokens=True) as emu:
        yield emu
        assert emu.unexpected_errors == 0


async def _async_conversation(emu: Emulator, refresher: Refresher, deadline: float) -> None:
    """Carol talks through the aio client on the aio credential until ``deadline`` (monotonic)."""
    verify = {"connection_verify": emu.ca_bundle}

    async def refresh() -> str:
        return await asyncio.get_running_loop().run_in_executor(None, refresher)

    async with (
        AsyncCommunicationTokenCredential(token_refresher=refresh, proactive_refresh=True) as credential,
        AsyncChatClient(emu.endpoint, credential, **verify) as chat,  # type: ignore[arg-type]
    ):
        created = await chat.create_chat_thread("An async long chat")
        async with chat.get_chat_thread_client(created.chat_thread.id, **verify) as thread:
            sent = 0
            while time.monotonic() < deadline:
                await thread.send_message(f"carol {sent}")
                sent += 1
                await asyncio.sleep(PAUSE)
            listed = [m async for m in thread.list_messages(results_per_page=50) if m.type == "text"]
            assert len(listed) == sent


def test_conversation_outlives_its_tokens(short_emulator: Emulator) -> None:
    emu = short_emulator
    verify = {"connection_verify": emu.ca_bundle}
    alice, bob, carol = create_user(emu), create_user(emu), create_user(emu)
    alice_refresher, bob_refresher, carol_refresher = Refresher(emu, alice), Refresher(emu, bob), Refresher(emu, carol)
    # The aio client and credential hold their own conversation on another thread, at the same time.
    async_failures: list[BaseException] = []

    def run_async() -> None:
        try:
            asyncio.run(_async_conversation(emu, carol_refresher, time.monotonic() + DURATION))
        except BaseException as exc:
            async_failures.append(exc)

    async_thread = threading.Thread(target=run_async, name="async-conversation")
    async_thread.start()
    with (
        CommunicationTokenCredential(token_refresher=alice_refresher, proactive_refresh=True) as alice_credential,
        CommunicationTokenCredential(token_refresher=bob_refresher, proactive_refresh=True) as bob_credential,
    ):
        alice_chat = ChatClient(emu.endpoint, alice_credential, **verify)
        created = alice_chat.create_chat_thread(
            "A long chat", thread_participants=[ChatParticipant(identifier=CommunicationUserIdentifier(bob))]
        )
        thread_id = created.chat_thread.id
        alice_thread = alice_chat.get_chat_thread_client(thread_id, **verify)
        bob_thread = ChatClient(emu.endpoint, bob_credential, **verify).get_chat_thread_client(thread_id, **verify)

        sent = 0
        start = time.monotonic()
        revoke_at = start + DURATION / 2
        revoked_time: float | None = None
        recovered_time: float | None = None
        refused = 0
        while time.monotonic() - start < DURATION:
            alice_thread.send_message(f"alice {sent}")
            sent += 1
            if revoked_time is None and time.monotonic() >= revoke_at:
                stale = bob_credential.get_token().token
                revoking = time.time()
                revoke(emu, bob)
                revoked_time = time.time()
                # The token the credential held when the user was revoked no longer opens Chat. (Revocation
                # has whole-second granularity: if a background refresh issued a token after the revocation
                # within the second ``stale`` was issued in, the two cannot be told apart and both work.)
                status = request(emu, "GET", with_version(thread_path(thread_id), "2024-03-07"), token=stale).status
                stale_second = int(jwt.decode(stale, options={"verify_signature": False})["iat"])
                raced = any(call[0] >= revoking and call[1] == stale_second for call in bob_refresher.calls)
                assert status == 401 or (status == 200 and raced), status
            try:
                bob_thread.send_message(f"bob {sent}")
                sent += 1
                if revoked_time is not None and recovered_time is None:
                    recovered_time = time.time()
            except ClientAuthenticationError:
                # Only between the revocation and the refresh that follows it.
                assert revoked_time is not None
                assert recovered_time is None
                refused += 1
            time.sleep(PAUSE)
        until = time.time()
        async_thread.join()
        assert not async_failures, async_failures

        listed = [m for m in bob_thread.list_messages(results_per_page=50) if m.type == "text"]
        assert len(listed) == sent
    assert revoked_time is not None
    assert recovered_time is not None
    # Bob recovered with a token his refresher fetched after the revocation (issued in or after its second).
    fresh = [call for call in bob_refresher.calls if call[0] >= revoked_time]
    assert fresh
    assert fresh[0][0] <= recovered_time
    assert fresh[0][1] >= int(revoked_time)
    # The policy may hold the revoked token to its expiry, then the credential's, also from before the
    # revocation, to its own: two lifetimes at most (plus a second for a loaded machine).
    assert recovered_time - revoked_time < 2 * LIFETIME + 1
    for refresher in (alice_refresher, bob_refresher, carol_refresher):
        _check_schedule(refresher.calls, until)
