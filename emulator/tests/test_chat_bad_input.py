"""Hostile and malformed Chat requests: 401s, 403s, service-shaped 400s and 404s, and a database left unchanged.

The emulator runs on a fake clock, so expiry is exact: a token is refused once the clock is past its
``exp`` plus the clock-skew allowance, and accepted just inside it (the short-token trap, pinned).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from acs_emulator import Emulator
from acs_emulator._tokens import TokenIssuer
from acs_emulator._user_auth import CLOCK_SKEW
from chat_support import (
    Reply,
    create_user,
    delete_user,
    identifier,
    issue_token,
    request,
    revoke,
    signed,
    thread_path,
    with_version,
)
from emulator_support import FakeClock

VERSION = "2024-03-07"


@dataclass
class World:
    """A running emulator on a fake clock, with a thread between alice and bob, and mallory outside it."""

    emu: Emulator
    clock: FakeClock
    alice: str
    alice_token: str
    bob: str
    bob_token: str
    mallory: str
    mallory_token: str
    thread_id: str
    message_id: str

    def call(self, method: str, suffix: str, body: Any = None, *, token: str | None = None, **kw: Any) -> Reply:
        target = with_version(thread_path(self.thread_id, suffix), VERSION)
        return request(self.emu, method, target, body, token=self.alice_token if token is None else token, **kw)

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        store = self.emu._require_store()
        return store.call_sync(lambda s: s.chat.snapshot())


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    clock = FakeClock()
    with Emulator(_clock=clock) as emu:
        alice, bob, mallory = (create_user(emu, now=clock()) for _ in range(3))
        tokens = [issue_token(emu, user, now=clock()) for user in (alice, bob, mallory)]
        created = request(
            emu,
            "POST",
            with_version("/chat/threads", VERSION),
            {"topic": "Plans", "participants": [{"communicationIdentifier": identifier(bob)}]},
            token=tokens[0],
        )
        assert created.status == 201, created.body
        thread_id = created.json()["chatThread"]["id"]
        sent = request(
            emu, "POST", with_version(thread_path(thread_id, "/messages"), VERSION), {"content": "hi"}, token=tokens[0]
        )
        assert sent.status == 201
        yield World(emu, clock, alice, tokens[0], bob, tokens[1], mallory, tokens[2], thread_id, sent.json()["id"])
        assert emu.unexpected_errors == 0


def _last_verdict(world: World) -> str:
    reply = request(world.emu, "GET", "/_emulator/requests")
    assert reply.status == 200
    payload = reply.json()
    entries = payload["requests"] if isinstance(payload, dict) else payload
    return str(entries[-1]["auth"])


def test_no_token_hmac_and_malformed_headers_are_401(world: World) -> None:
    before = world.snapshot()
    target = with_version(thread_path(world.thread_id, "/messages"), VERSION)
    cases: list[tuple[dict[str, str], str]] = [
        ({}, "bearer: missing"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "bearer: malformed"),
        ({"Authorization": "Bearer "}, "bearer: malformed"),
        ({"Authorization": "Bearer not-a-jwt"}, "bearer: bad signature"),
    ]
    for headers, verdict in cases:
        reply = request(world.emu, "POST", target, {"content": "x"}, headers=headers)
        assert reply.status == 401, headers
        assert reply.error["code"] == "Unauthorized"
        assert _last_verdict(world) == verdict
    # A correctly HMAC-signed request (the Identity API's authentication) is refused by Chat, as by the service.
    reply = signed(world.emu, "GET", with_version("/chat/threads", VERSION), now=world.clock())
    assert reply.status == 401
    assert reply.error["code"] == "Unauthorized"
    assert "user access token" in reply.error["message"]
    assert _last_verdict(world) == "hmac: not accepted on chat"
    assert world.snapshot() == before


def test_token_signed_with_another_key_is_401(world: World) -> None:
    before = world.snapshot()
    # Same claims, same resource, another emulator's signing key.
    forged = TokenIssuer(world.emu.resource_id).issue(
        skype_id=world.alice[2:], scopes=("chat",), iat=int(world.clock()), exp=int(world.clock()) + 3600
    )
    reply = world.call("POST", "/messages", {"content": "forged"}, token=forged)
    assert reply.status == 401
    assert _last_verdict(world) == "bearer: bad signature"
    assert world.snapshot() == before


def test_token_without_chat_scope_is_401(world: World) -> None:
    voip = issue_token(world.emu, world.alice, ("voip",), now=world.clock())
    reply = world.call("GET", "", token=voip)
    assert reply.status == 401
    assert "chat scope" in reply.error["message"]
    assert _last_verdict(world) == "bearer: no chat scope"


def test_expiry_is_enforced_with_a_small_skew_allowance() -> None:
    clock = FakeClock()
    with Emulator(_clock=clock, allow_short_tokens=True) as emu:
        user = create_user(emu, now=clock())
        token = issue_token(emu, user, seconds=60, now=clock())
        exp = int(clock()) + 60
        target = with_version("/chat/threads", VERSION)
        # A request that left the client in the token's last moment and arrived a second late is served.
        clock.now = exp + 1.0
        assert request(emu, "GET", target, token=token).status == 200
        clock.now = exp + CLOCK_SKEW - 0.01
        assert request(emu, "GET", target, token=token).status == 200
        clock.now = exp + CLOCK_SKEW + 0.01
        reply = request(emu, "GET", target, token=token)
        assert reply.status == 401
        assert reply.error["message"] == "The access token has expired."
        assert _last_verdict_of(emu) == "bearer: expired"


def _last_verdict_of(emu: Emulator) -> str:
    payload = request(emu, "GET", "/_emulator/requests").json()
    entries = payload["requests"] if isinstance(payload, dict) else payload
    return str(entries[-1]["auth"])


def test_revoked_and_deleted_users_are_401() -> None:
    clock = FakeClock()
    with Emulator(_clock=clock) as emu:
        alice, bob = create_user(emu, now=clock()), create_user(emu, now=clock())
        alice_token, bob_token = issue_token(emu, alice, now=clock()), issue_token(emu, bob, now=clock())
        target = with_version("/chat/threads", VERSION)
        created = request(
            emu,
            "POST",
            target,
            {"topic": "t", "participants": [{"communicationIdentifier": identifier(bob)}]},
            token=alice_token,
        )
        assert created.status == 201
        before = emu._require_store().call_sync(lambda s: s.chat.snapshot())
        clock.advance(0.3)
        revoke(emu, alice, now=clock())
        reply = request(emu, "POST", target, {"topic": "after revoke"}, token=alice_token)
        assert reply.status == 401
        assert _last_verdict_of(emu) == "bearer: revoked"
        # A token issued after the revocation, even within the same second, works again.
        clock.advance(0.3)
        fresh = issue_token(emu, alice, now=clock())
        assert request(emu, "GET", target, token=fresh).status == 200
        delete_user(emu, bob, now=clock())
        reply = request(emu, "GET", target, token=bob_token)
        assert reply.status == 401
        assert _last_verdict_of(emu) == "bearer: identity deleted"
        assert emu._require_store().call_sync(lambda s: s.chat.snapshot()) == before


THREAD_OPERATIONS = [
    ("GET", "", None),
    ("PATCH", "", {"topic": "mine now"}),
    ("DELETE", "", None),
    ("POST", "/messages", {"content": "let me in"}),
    ("GET", "/messages", None),
    ("GET", "/messages/{message}", None),
    ("PATCH", "/messages/{message}", {"content": "edited by a stranger"}),
    ("DELETE", "/messages/{message}", None),
    ("GET", "/participants", None),
    ("POST", "/participants/:add", {"participants": [{"communicationIdentifier": identifier("8:acs:x_y")}]}),
    ("POST", "/participants/:remove", identifier("8:acs:x_y")),
    ("POST", "/readReceipts", {"chatMessageId": "{message}"}),
    ("GET", "/readReceipts", None),
    ("POST", "/typing", {}),
]


@pytest.mark.parametrize(("method", "suffix", "body"), THREAD_OPERATIONS)
def test_non_participant_is_403(world: World, method: str, suffix: str, body: Any) -> None:
    before = world.snapshot()
    suffix = suffix.replace("{message}", world.message_id)
    if body is not None:
        body = json.loads(json.dumps(body).replace("{message}", world.message_id))
    reply = world.call(method, suffix, body, token=world.mallory_token)
    assert reply.status == 403, reply.body
    assert reply.error["code"] == "Forbidden"
    assert world.snapshot() == before


def test_only_the_sender_edits_a_message(world: World) -> None:
    before = world.snapshot()
    for method, body in (("PATCH", {"content": "not mine"}), ("DELETE", None)):
        reply = world.call(method, f"/messages/{world.message_id}", body, token=world.bob_token)
        assert reply.status == 403
        assert reply.error["code"] == "Forbidden"
    assert world.snapshot() == before


BIG = "x" * (28 * 1024 + 1)

BAD_REQUESTS = [
    # (method, suffix, body, status, code, target)
    ("POST", "/messages", b"{not json", 400, "BadRequest", None),
    ("POST", "/messages", b"[1, 2]", 400, "BadRequest", None),
    ("POST", "/messages", b"", 400, "BadRequest", None),
    ("POST", "/messages", {"senderDisplayName": "no content"}, 400, "BadRequest", "content"),
    ("POST", "/messages", {"content": 42}, 400, "BadRequest", "content"),
    ("POST", "/messages", {"content": BIG}, 400, "MessageTooLarge", "content"),
    ("POST", "/messages", {"content": "é" * (14 * 1024 + 1)}, 400, "MessageTooLarge", "content"),
    ("POST", "/messages", {"content": "x", "type": "video"}, 400, "InvalidMessageType", "type"),
    ("POST", "/messages", {"content": "x", "type": "topicUpdated"}, 400, "InvalidMessageType", "type"),
    ("POST", "/messages", {"content": "x", "metadata": {"k": 1}}, 400, "BadRequest", "metadata"),
    ("PATCH", "/messages/{message}", {"content": BIG}, 400, "MessageTooLarge", "content"),
    ("PATCH", "", {"topic": ""}, 400, "BadRequest", "topic"),
    ("PATCH", "", {"topic": "t" * 257}, 400, "BadRequest", "topic"),
    ("GET", "/messages?maxPageSize=0", None, 400, "BadRequest", "maxPageSize"),
    ("GET", "/messages?maxPageSize=many", None, 400, "BadRequest", "maxPageSize"),
    ("GET", "/messages?startTime=yesterday", None, 400, "BadRequest", "startTime"),
    ("GET", "/messages?syncState=%21%21", None, 400, "BadRequest", "syncState"),
    ("GET", "/participants?skip=-1", None, 400, "BadRequest", "skip"),
    ("POST", "/participants/:add", {"participants": []}, 400, "BadRequest", "participants"),
    (
        "POST",
        "/participants/:add",
        {"participants": [{"communicationIdentifier": {"rawId": "4:+15551234567"}}]},
        400,
        "InvalidIdentifier",
        "participants[0].communicationIdentifier",
    ),
    (
        "POST",
        "/participants/:add",
        {
            "participants": [
                {"communicationIdentifier": {"rawId": "8:acs:a_b", "communicationUser": {"id": "8:acs:c_d"}}}
            ]
        },
        400,
        "BadRequest",
        "participants[0].communicationIdentifier",
    ),
    ("POST", "/participants/:remove", {"kind": "phoneNumber"}, 400, "BadRequest", "body"),
    ("POST", "/readReceipts", {"chatMessageId": 12}, 400, "BadRequest", "chatMessageId"),
    ("POST", "/readReceipts", {"chatMessageId": "abc"}, 400, "InvalidMessageId", "chatMessageId"),
    ("GET", "/messages/not-a-number", None, 400, "InvalidMessageId", "chatMessageId"),
    # Unknown but well-formed ids.
    ("GET", "/messages/1234", None, 404, "NotFound", "chatMessageId"),
    ("PATCH", "/messages/1234", {"content": "x"}, 404, "NotFound", "chatMessageId"),
    ("DELETE", "/messages/1234", None, 404, "NotFound", "chatMessageId"),
    ("POST", "/readReceipts", {"chatMessageId": "1234"}, 404, "NotFound", "chatMessageId"),
    ("POST", "/participants/:remove", identifier("8:acs:x_y"), 404, "NotFound", "participantCommunicationIdentifier"),
]


@pytest.mark.parametrize(("method", "suffix", "body", "status", "code", "target"), BAD_REQUESTS)
def test_bad_requests_get_service_shaped_errors(
    world: World, method: str, suffix: str, body: Any, status: int, code: str, target: str | None
) -> None:
    before = world.snapshot()
    reply = world.call(method, suffix.replace("{message}", world.message_id), body)
    assert reply.status == status, reply.body
    assert reply.error["code"] == code
    assert reply.error.get("target") == target
    assert world.snapshot() == before


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("/chat/threads/not-a-thread?api-version=2024-03-07", "InvalidThreadId"),
        ("/chat/threads?api-version=2099-01-01", "UnsupportedApiVersion"),
        ("/chat/threads", "MissingApiVersionParameter"),
        ("/chat/threads?api-version=2024-03-07&api-version=2025-03-15", "InvalidApiVersionParameter"),
        ("/chat/threads?api-version=2024-03-07&maxPageSize=201", "BadRequest"),
    ],
)
def test_bad_ids_and_versions_are_400(world: World, target: str, code: str) -> None:
    reply = request(world.emu, "GET", target, token=world.alice_token)
    assert reply.status == 400
    assert reply.error["code"] == code


def test_unknown_thread_is_404(world: World) -> None:
    reply = request(
        world.emu, "GET", with_version(thread_path("19:unknown@thread.v2"), VERSION), token=world.alice_token
    )
    assert reply.status == 404
    assert reply.error == {
        "code": "NotFound",
        "message": "The chat thread was not found.",
        "target": "chatThreadId",
    }


def test_create_thread_bodies_are_validated(world: World) -> None:
    before = world.snapshot()
    target = with_version("/chat/threads", "2025-03-15")
    cases = [
        ({"participants": []}, "topic"),
        ({"topic": "t", "participants": {"a": 1}}, "participants"),
        ({"topic": "t", "metadata": {"k": "v" * 1100}}, "metadata"),
        ({"topic": "t", "retentionPolicy": {"kind": "forever"}}, "retentionPolicy.kind"),
        (
            {"topic": "t", "retentionPolicy": {"kind": "threadCreationDate", "deleteThreadAfterDays": 5}},
            "retentionPolicy.deleteThreadAfterDays",
        ),
    ]
    for body, field in cases:
        reply = request(world.emu, "POST", target, body, token=world.alice_token)
        assert reply.status == 400, reply.body
        assert reply.error["target"] == field
    reply = request(
        world.emu, "POST", target, {"topic": "t"}, token=world.alice_token, headers={"repeatability-request-id": ""}
    )
    assert reply.status == 400
    assert reply.error["target"] == "repeatability-request-id"
    assert world.snapshot() == before


def test_chat_join_limited_cannot_manage_participants(world: World) -> None:
    limited = issue_token(world.emu, world.bob, ("chat.join.limited",), now=world.clock())
    before = world.snapshot()
    add = {"participants": [{"communicationIdentifier": identifier(world.mallory)}]}
    assert world.call("POST", "/participants/:add", add, token=limited).status == 403
    assert world.call("POST", "/participants/:remove", identifier(world.alice), token=limited).status == 403
    assert world.call("DELETE", "", token=limited).status == 403
    assert world.snapshot() == before
    assert world.call("GET", "/messages", token=limited).status == 200
