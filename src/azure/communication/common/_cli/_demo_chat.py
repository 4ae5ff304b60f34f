"""The demo's chat scenario: two users talk through the official chat client on our credential.

Each user holds a ``CommunicationTokenCredential`` with ``proactive_refresh=True`` whose refresher asks the
official identity client for a token. The tokens live a few seconds and the conversation lasts longer than
that, so they expire and are replaced mid-conversation (in the background, or by a message sent in a token's
last stretch); the scenario reports when and where each refresh happened and that no message failed.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ._demo_context import CHAT_TOKEN_SECONDS, Check, CheckList, DemoContext, DemoFailure
from ._output import format_duration

__all__ = ["CHAT_LIFETIMES", "CHAT_TOKEN_SECONDS", "step_chat"]

# The shortest lifetime the demo's options allow: refreshes come every couple of seconds.
# The conversation lasts this many token lifetimes, so every user's first token expires during it.
CHAT_LIFETIMES: Final = 1.5
# A message every so often: enough messages to page through, few enough to read.
MESSAGE_INTERVAL_SECONDS: Final = 0.4
PAGE_SIZE: Final = 5

_LINES: Final = (
    "Hi Bob, can you hear me?",
    "Loud and clear, Alice.",
    "Our tokens live a few seconds.",
    "And the credential refreshes them in the background.",
    "So the chat goes on.",
    "Without a single 401.",
)


@dataclass(frozen=True)
class _Refresh:
    user: str
    thread: str
    previous_left: float
    expires_on: float


@dataclass(frozen=True)
class _Sent:
    user: str
    text: str
    message_id: str
    at: float


class _Chatter:
    """One user of the conversation: their identity, credential, chat client and thread client."""

    def __init__(self, name: str, user: Any, credential: Any, client: Any) -> None:
        self.name = name
        self.user = user
        self.credential = credential
        self.client = client
        self.thread_client: Any = None


def step_chat(context: DemoContext) -> list[Check]:
    """Two users, one thread, a conversation that outlives every user's first token."""
    checks = context.checks()
    try:
        from azure.communication.chat import ChatClient
        from azure.communication.identity import CommunicationIdentityClient
    except ImportError as exc:
        context.note(
            f"skipped: {exc.name or 'the official chat client'} is not installed "
            "(pip install azure-communication-chat azure-communication-identity)"
        )
        return checks
    from ._demo_lifetime import LifetimePolicy

    seconds = CHAT_TOKEN_SECONDS
    # Bearer authentication over http is refused by azure-core unless the call opts out (the in-process
    # emulator serves http on loopback; a real resource is https).
    options: dict[str, Any] = {"enforce_https": False} if context.endpoint.lower().startswith("http:") else {}
    # from_connection_string would turn an http endpoint into https: the endpoint and key are passed as such.
    endpoint = context.endpoint.rstrip("/")  # the official clients add their own '/'
    identity = CommunicationIdentityClient(endpoint, context.key_credential, per_call_policies=[LifetimePolicy()])
    lock = threading.Lock()
    refreshes: list[_Refresh] = []
    expiries: dict[str, float] = {}
    chatters: list[_Chatter] = []
    with contextlib.ExitStack() as stack:
        for name in ("Alice", "Bob"):
            user = identity.create_user()
            stack.callback(_delete_user, identity, user)
            issue = _issuer(context, identity, user, seconds)
            initial = issue()
            expiries[name] = _epoch(initial.expires_on)
            refresher = _refresher(context, name, issue, lock, refreshes, expiries)
            credential = _credential(initial, refresher)
            stack.callback(credential.close)
            client = ChatClient(endpoint, credential)
            stack.callback(client.close)
            chatters.append(_Chatter(name, user, credential, client))
        alice, bob = chatters
        first_expiry = max(expiries.values())
        lifetime = f"live {seconds} s" if context.emulated else f"are assumed to live {seconds} s (real ones: an hour)"
        context.note(
            f"Alice and Bob created with the official identity client; their tokens {lifetime}; proactive_refresh=True"
        )
        thread_id = _create_thread(context, checks, alice, bob, options)
        if thread_id is None:
            return checks
        for chatter in chatters:
            chatter.thread_client = chatter.client.get_chat_thread_client(thread_id)
        sent, failures, took = _converse(context, chatters, seconds, options)
        with lock:
            done = list(refreshes)
        _check_conversation(context, checks, sent, failures, took, first_expiry)
        _check_refreshes(context, checks, done, chatters)
        _check_reading(context, checks, bob, chatters, sent, options)
        started = context.timer()
        alice.client.delete_chat_thread(thread_id, **options)
        listed = [thread.id for thread in bob.client.list_chat_threads(**options)]
        context.note("Alice deleted the thread; the demo deletes both users")
        checks.add("the deleted thread is gone from Bob's threads", thread_id not in listed, started)
    return checks


def _issuer(context: DemoContext, identity: Any, user: Any, seconds: int) -> Callable[[], Any]:
    """What a refresher calls: a token from the official identity client that lives ``seconds``."""
    from azure.core.credentials import AccessToken

    from ._demo_lifetime import LIFETIME_OPTION

    def issue() -> Any:
        if context.emulated:
            return identity.get_token(user, ["chat"], **{LIFETIME_OPTION: seconds})
        # A real resource issues an hour at least: the credential is told the token lives ``seconds``.
        token = identity.get_token(user, ["chat"], token_expires_in=datetime.timedelta(minutes=60))
        return AccessToken(token.token, int(context.clock() + seconds))

    return issue


def _refresher(
    context: DemoContext,
    name: str,
    issue: Callable[[], Any],
    lock: threading.Lock,
    refreshes: list[_Refresh],
    expiries: dict[str, float],
) -> Callable[[], Any]:
    def refresher() -> Any:
        with lock:
            previous_left = expiries[name] - context.clock()
        token = issue()
        record = _Refresh(name, threading.current_thread().name, previous_left, _epoch(token.expires_on))
        with lock:  # recorded and told together: a snapshot of the refreshes matches the transcript
            refreshes.append(record)
            expiries[name] = record.expires_on
            number = sum(1 for r in refreshes if r.user == name)
            context.note(
                f"{name}'s token refreshed (#{number}) on {record.thread!r}: the old one had "
                f"{format_duration(previous_left)} left; the new one expires in "
                f"{format_duration(record.expires_on - context.clock())}",
                refresh=True,
            )
        return token

    return refresher


def _epoch(expires_on: Any) -> float:
    """An ``AccessToken.expires_on`` in POSIX seconds: the identity client gives a timestamp text or datetime."""
    from .._timestamps import parse_timestamp

    if isinstance(expires_on, str):
        return parse_timestamp(expires_on)
    if isinstance(expires_on, datetime.datetime):
        return expires_on.timestamp()
    return float(expires_on)


def _credential(initial: Any, refresher: Callable[[], Any]) -> Any:
    from .._credential import CommunicationTokenCredential

    return CommunicationTokenCredential(initial, token_refresher=refresher, proactive_refresh=True)


def _delete_user(identity: Any, user: Any) -> None:
    with contextlib.suppress(Exception):  # cleanup after the demo; a failure here changes no check
        identity.delete_user(user)


def _create_thread(
    context: DemoContext, checks: CheckList, alice: _Chatter, bob: _Chatter, options: dict[str, Any]
) -> str | None:
    from azure.communication.chat import ChatParticipant
    from azure.core.exceptions import HttpResponseError

    from .._identifiers import CommunicationUserIdentifier

    started = context.timer()
    participants = []
    for chatter in (alice, bob):
        # Our identifiers go through the official client's serializer (its hints name its own classes, which
        # ours match by kind and properties, as the _shared copies do).
        identifier: Any = CommunicationUserIdentifier(chatter.user.properties["id"])
        participants.append(ChatParticipant(identifier=identifier, display_name=chatter.name))
    try:
        result = alice.client.create_chat_thread(
            "azure-communication-common demo", thread_participants=participants, **options
        )
    except HttpResponseError as exc:
        if exc.status_code == 404:
            where = "the emulator" if context.emulated else "the resource"
            context.note(f"skipped: {where} has no Chat service (POST /chat/threads -> HTTP 404)")
            return None
        raise
    thread = result.chat_thread
    errors = result.errors or []
    context.note(f"Alice created a chat thread with Bob -> {thread.id if thread else 'no thread'}")
    checks.add("chat thread created by Alice, with Bob", thread is not None and not errors, started)
    if thread is None:
        raise DemoFailure("the chat thread was not created")
    return str(thread.id)


def _converse(
    context: DemoContext, chatters: list[_Chatter], seconds: int, options: dict[str, Any]
) -> tuple[list[_Sent], list[str], float]:
    """Alternate messages until the conversation has lasted ``CHAT_LIFETIMES`` token lifetimes."""
    from azure.core.exceptions import AzureError

    sent: list[_Sent] = []
    failures: list[str] = []
    pause = threading.Event()  # never set: a pause between messages that a reader can follow
    started = context.timer()
    number = 0
    while context.timer() - started < seconds * CHAT_LIFETIMES or number < len(chatters):
        speaker = chatters[number % len(chatters)]
        text = _LINES[number % len(_LINES)]
        number += 1
        try:
            result = speaker.thread_client.send_message(text, sender_display_name=speaker.name, **options)
        except AzureError as exc:
            status = getattr(exc, "status_code", None)
            failures.append(f"#{number} {type(exc).__name__}" + (f" HTTP {status}" if status else ""))
            context.note(f"#{number} {speaker.name}: {text!r} FAILED ({failures[-1]})")
        else:
            sent.append(_Sent(speaker.name, text, str(result.id), context.clock()))
            context.note(f"#{number} {speaker.name}: {text!r} -> sent")
        pause.wait(MESSAGE_INTERVAL_SECONDS)
    return sent, failures, context.timer() - started


def _check_conversation(
    context: DemoContext, checks: CheckList, sent: list[_Sent], failures: list[str], took: float, first_expiry: float
) -> None:
    started = context.timer()
    total = len(sent) + len(failures)
    lifetimes = took / CHAT_TOKEN_SECONDS
    checks.add(
        f"{total} messages over {took:.1f} s ({lifetimes:.1f} token lifetimes), none failed",
        not failures and total > 0,
        started,
        ", ".join(failures[:3]),
    )
    started = context.timer()
    after = sum(1 for s in sent if s.at > first_expiry)
    checks.add(
        "the conversation outlived every user's first token",
        after > 0,
        started,
        f"{after} messages sent after the first tokens expired",
    )


def _check_refreshes(
    context: DemoContext, checks: CheckList, refreshes: list[_Refresh], chatters: list[_Chatter]
) -> None:
    """Every user's token was replaced mid-conversation, each time before it expired.

    Most refreshes run on the credential's worker thread; a message sent in the token's last stretch (the stale
    window) may take the refresh on itself, as the credential allows, while the old token is still valid.
    """
    started = context.timer()
    main = threading.current_thread().name
    counts = {chatter.name: sum(1 for r in refreshes if r.user == chatter.name) for chatter in chatters}
    background = sum(1 for r in refreshes if r.thread != main)
    checks.add(
        "every user's token refreshed mid-conversation, each time before it expired",
        all(counts.values()) and all(r.previous_left > 0 for r in refreshes),
        started,
        ", ".join(f"{name}: {count}" for name, count in counts.items())
        + f"; {background} of {len(refreshes)} in the background",
    )


def _check_reading(
    context: DemoContext,
    checks: CheckList,
    reader: _Chatter,
    chatters: list[_Chatter],
    sent: list[_Sent],
    options: dict[str, Any],
) -> None:
    started = context.timer()
    ids = {chatter.name: chatter.user.properties["id"] for chatter in chatters}
    pages = reader.thread_client.list_messages(results_per_page=PAGE_SIZE, **options)
    texts = [message for message in pages if str(getattr(message, "type", "")).lower().endswith("text")]
    texts.reverse()  # the service lists the newest first
    seen = [
        (m.id, m.content.message if m.content else None, getattr(m.sender, "properties", {}).get("id")) for m in texts
    ]
    expected = [(s.message_id, s.text, ids[s.user]) for s in sent]
    checks.add(
        f"{reader.name} reads all {len(sent)} messages in order, with their senders, {PAGE_SIZE} a page",
        seen == expected,
        started,
        "" if seen == expected else f"read {len(seen)}",
    )
