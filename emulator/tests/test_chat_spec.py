"""Every Chat operation and every status it declares, validated against the vendored OpenAPI documents.

One conversation per api-version over raw HTTP (the exact bytes), each response checked with
``jsonschema`` against the schema the document declares for that operation and status (errors the
document does not declare, 400 and 404, against its ``CommunicationErrorResponse``). 429 and 503 come
from the control plane's chaos rules. The test ends by asserting that every declared
``(operation, status)`` pair was seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from acs_emulator import Emulator
from chat_support import (
    CHAT_VERSIONS,
    ChatSpec,
    create_user,
    identifier,
    issue_token,
    request,
    thread_path,
    with_version,
)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator
        assert emulator.unexpected_errors == 0


@pytest.mark.parametrize("version", CHAT_VERSIONS)
def test_every_operation_and_status_matches_the_spec(emu: Emulator, version: str) -> None:
    spec = ChatSpec(version)
    alice, bob, outsider = create_user(emu), create_user(emu), create_user(emu)
    alice_token, bob_token, outsider_token = (issue_token(emu, user) for user in (alice, bob, outsider))
    newer = version >= "2025-03-15"

    def call(
        operation: str,
        method: str,
        target: str,
        body: Any = None,
        token: str | None = alice_token,
        headers: dict[str, str] | None = None,
        status: int | None = None,
        injected: bool = False,
    ) -> Any:
        reply = request(emu, method, with_version(target, version), body, token=token, headers=headers)
        spec.validate(operation, reply)
        if status is not None:
            assert reply.status == status, (operation, reply.status, reply.body)
        if not injected:
            assert reply.headers.get("api-supported-versions") == ", ".join(CHAT_VERSIONS)
        return reply

    create_body: dict[str, Any] = {
        "topic": "Spec",
        "participants": [
            {"communicationIdentifier": identifier(bob), "displayName": "Bob", "metadata": {"role": "guest"}},
            {"communicationIdentifier": identifier(f"8:acs:{emu.resource_id}_00000000-0000-0000-0000-000000000000")},
            {"communicationIdentifier": identifier("8:acs:other-resource_00000000-0000-0000-0000-000000000000")},
        ],
        "metadata": {"project": "emulator"},
        "retentionPolicy": {"kind": "threadCreationDate", "deleteThreadAfterDays": 30},
    }
    created = call(
        "Chat_CreateChatThread",
        "POST",
        "/chat/threads",
        create_body,
        headers={"repeatability-request-id": f"spec-{version}"},
        status=201,
    )
    thread = created.json()["chatThread"]
    thread_id = thread["id"]
    assert created.headers["Location"].endswith(thread_path(thread_id).replace("%40", "@"))
    assert [(item["code"], item["target"][-12:]) for item in created.json()["invalidParticipants"]] == [
        ("404", "000000000000"),
        ("403", "000000000000"),
    ]
    # The 2025-03-15 properties exist in 2025-03-15 responses only.
    assert ("metadata" in thread, "retentionPolicy" in thread) == (newer, newer)
    repeat = call(
        "Chat_CreateChatThread",
        "POST",
        "/chat/threads",
        create_body,
        headers={"repeatability-request-id": f"spec-{version}"},
        status=201,
    )
    assert repeat.json()["chatThread"]["id"] == thread_id
    call("Chat_CreateChatThread", "POST", "/chat/threads", {"topic": ""}, status=400)
    call("Chat_CreateChatThread", "POST", "/chat/threads", {"topic": "x"}, token=None, status=401)
    join_token = issue_token(emu, bob, ("chat.join",))
    call("Chat_CreateChatThread", "POST", "/chat/threads", {"topic": "x"}, token=join_token, status=403)

    messages = thread_path(thread_id, "/messages")
    ids = []
    for i in range(5):
        sent = call(
            "ChatThread_SendChatMessage", "POST", messages, {"content": f"m{i}", "metadata": {"i": str(i)}}, status=201
        )
        assert sent.headers["Location"].endswith(f"/messages/{sent.json()['id']}")
        ids.append(sent.json()["id"])
    call("ChatThread_SendChatMessage", "POST", messages, {"content": "x"}, token=outsider_token, status=403)
    call("ChatThread_SendChatMessage", "POST", messages, {"content": "x", "type": "participantAdded"}, status=400)
    call("ChatThread_SendChatMessage", "POST", messages, {"content": "x"}, token="bad", status=401)

    page = call("ChatThread_ListChatMessages", "GET", messages + "?maxPageSize=3", token=bob_token, status=200).json()
    seen = [m["id"] for m in page["value"]]
    while "nextLink" in page:
        next_link = page["nextLink"]
        assert next_link.startswith(emu.endpoint)
        assert f"api-version={version}" in next_link
        target = next_link[len(emu.endpoint) :].replace(f"&api-version={version}", "")
        page = call("ChatThread_ListChatMessages", "GET", target, token=bob_token, status=200).json()
        seen += [m["id"] for m in page["value"]]
    assert seen[: len(ids)] == ids[::-1]
    assert len(seen) == len(ids) + 2
    call("ChatThread_ListChatMessages", "GET", messages, token=outsider_token, status=403)
    call("ChatThread_ListChatMessages", "GET", messages + "?startTime=2020-01-01T00:00:00Z", status=200)
    call("ChatThread_ListChatMessages", "GET", messages, token=None, status=401)

    one = f"{messages}/{ids[0]}"
    got = call("ChatThread_GetChatMessage", "GET", one, token=bob_token, status=200).json()
    assert got["content"]["message"] == "m0"
    assert got["senderCommunicationIdentifier"]["rawId"] == alice
    call("ChatThread_GetChatMessage", "GET", f"{messages}/999", status=404)
    call("ChatThread_GetChatMessage", "GET", one, token=outsider_token, status=403)
    call("ChatThread_GetChatMessage", "GET", one, token=None, status=401)
    call("ChatThread_UpdateChatMessage", "PATCH", one, {"content": "m0!"}, status=204)
    call("ChatThread_UpdateChatMessage", "PATCH", one, {"content": "m0?"}, token=bob_token, status=403)
    call("ChatThread_UpdateChatMessage", "PATCH", one, {"content": 0}, status=400)
    call("ChatThread_UpdateChatMessage", "PATCH", one, {"content": "x"}, token=None, status=401)
    edited = call("ChatThread_GetChatMessage", "GET", one, status=200).json()
    assert edited["content"]["message"] == "m0!"
    assert "editedOn" in edited
    assert edited["version"] != edited["id"]
    call("ChatThread_DeleteChatMessage", "DELETE", f"{messages}/{ids[1]}", token=bob_token, status=403)
    call("ChatThread_DeleteChatMessage", "DELETE", f"{messages}/{ids[1]}", status=204)
    call("ChatThread_DeleteChatMessage", "DELETE", f"{messages}/{ids[1]}", status=404)
    call("ChatThread_DeleteChatMessage", "DELETE", f"{messages}/{ids[1]}", token=None, status=401)
    deleted = call("ChatThread_GetChatMessage", "GET", f"{messages}/{ids[1]}", status=200).json()
    assert "deletedOn" in deleted
    assert "content" not in deleted

    properties = thread_path(thread_id)
    got_thread = call("ChatThread_GetChatThreadProperties", "GET", properties, token=bob_token, status=200).json()
    assert got_thread["topic"] == "Spec"
    if newer:
        assert got_thread["metadata"] == {"project": "emulator"}
        assert got_thread["retentionPolicy"] == {"kind": "threadCreationDate", "deleteThreadAfterDays": 30}
    call("ChatThread_GetChatThreadProperties", "GET", properties, token=outsider_token, status=403)
    call("ChatThread_GetChatThreadProperties", "GET", properties, token=None, status=401)
    call("ChatThread_GetChatThreadProperties", "GET", thread_path("19:nope@thread.v2"), status=404)
    update = {"topic": "Spec 2", "metadata": {"project": "chat"}, "retentionPolicy": {"kind": "none"}}
    call("ChatThread_UpdateChatThreadProperties", "PATCH", properties, update, token=bob_token, status=204)
    call("ChatThread_UpdateChatThreadProperties", "PATCH", properties, update, token=outsider_token, status=403)
    call("ChatThread_UpdateChatThreadProperties", "PATCH", properties, b"null", status=400)
    call("ChatThread_UpdateChatThreadProperties", "PATCH", properties, update, token=None, status=401)
    updated = call("ChatThread_GetChatThreadProperties", "GET", properties, status=200).json()
    assert updated["topic"] == "Spec 2"
    assert updated.get("retentionPolicy") == ({"kind": "none"} if newer else None)

    participants = thread_path(thread_id, "/participants")
    listed = call("ChatThread_ListChatParticipants", "GET", participants + "?maxPageSize=1", status=200).json()
    assert "skip=1" in listed["nextLink"]
    assert listed["value"][0]["communicationIdentifier"]["rawId"] == alice
    second = call("ChatThread_ListChatParticipants", "GET", participants + "?maxPageSize=1&skip=1", status=200).json()
    assert second["value"][0]["displayName"] == "Bob"
    assert "nextLink" not in second
    assert ("metadata" in second["value"][0]) == newer
    call("ChatThread_ListChatParticipants", "GET", participants, token=outsider_token, status=403)
    call("ChatThread_ListChatParticipants", "GET", participants + "?skip=x", status=400)
    call("ChatThread_ListChatParticipants", "GET", participants, token=None, status=401)
    add = {"participants": [{"communicationIdentifier": identifier(outsider), "displayName": "Olga"}]}
    call("ChatThread_AddChatParticipants", "POST", participants + "/:add", add, token=outsider_token, status=403)
    added = call("ChatThread_AddChatParticipants", "POST", participants + "/:add", add, status=201).json()
    assert added == {}
    call("ChatThread_AddChatParticipants", "POST", participants + "/:add", {}, status=400)
    call("ChatThread_AddChatParticipants", "POST", participants + "/:add", add, token=None, status=401)
    call("ChatThread_RemoveChatParticipant", "POST", participants + "/:remove", identifier(outsider), status=204)
    call(
        "ChatThread_RemoveChatParticipant",
        "POST",
        participants + "/:remove",
        identifier(outsider),
        token=outsider_token,
        status=403,
    )
    call("ChatThread_RemoveChatParticipant", "POST", participants + "/:remove", {}, status=400)
    call("ChatThread_RemoveChatParticipant", "POST", participants + "/:remove", identifier(bob), token=None, status=401)
    latest = call("ChatThread_ListChatMessages", "GET", messages + "?maxPageSize=3", status=200).json()["value"]
    assert [m["type"] for m in latest] == ["participantRemoved", "participantAdded", "topicUpdated"]
    assert latest[0]["content"]["participants"][0]["communicationIdentifier"]["rawId"] == outsider

    receipts = thread_path(thread_id, "/readReceipts")
    call("ChatThread_SendChatReadReceipt", "POST", receipts, {"chatMessageId": ids[-1]}, token=bob_token, status=200)
    call("ChatThread_SendChatReadReceipt", "POST", receipts, {"chatMessageId": ids[0]}, status=200)
    call(
        "ChatThread_SendChatReadReceipt", "POST", receipts, {"chatMessageId": ids[0]}, token=outsider_token, status=403
    )
    call("ChatThread_SendChatReadReceipt", "POST", receipts, {}, status=400)
    call("ChatThread_SendChatReadReceipt", "POST", receipts, {"chatMessageId": ids[0]}, token=None, status=401)
    read = call("ChatThread_ListChatReadReceipts", "GET", receipts + "?maxPageSize=1", status=200).json()
    assert len(read["value"]) == 1
    assert "skip=1" in read["nextLink"]
    call("ChatThread_ListChatReadReceipts", "GET", receipts, token=outsider_token, status=403)
    call("ChatThread_ListChatReadReceipts", "GET", receipts + "?maxPageSize=0", status=400)
    call("ChatThread_ListChatReadReceipts", "GET", receipts, token=None, status=401)

    typing = thread_path(thread_id, "/typing")
    call("ChatThread_SendTypingNotification", "POST", typing, {"senderDisplayName": "Bob"}, token=bob_token, status=200)
    call("ChatThread_SendTypingNotification", "POST", typing, None, status=200)
    call("ChatThread_SendTypingNotification", "POST", typing, {}, token=outsider_token, status=403)
    call("ChatThread_SendTypingNotification", "POST", typing, {"senderDisplayName": 1}, status=400)
    call("ChatThread_SendTypingNotification", "POST", typing, {}, token=None, status=401)

    for _ in range(2):
        call("Chat_CreateChatThread", "POST", "/chat/threads", {"topic": "more"}, token=bob_token, status=201)
    threads = call("Chat_ListChatThreads", "GET", "/chat/threads?maxPageSize=2", token=bob_token, status=200).json()
    page_ids = [t["id"] for t in threads["value"]]
    target = threads["nextLink"][len(emu.endpoint) :].replace(f"&api-version={version}", "")
    rest = call("Chat_ListChatThreads", "GET", target, token=bob_token, status=200).json()
    page_ids += [t["id"] for t in rest["value"]]
    assert thread_id in page_ids
    assert len(set(page_ids)) == len(page_ids)
    assert thread_id not in [
        t["id"]
        for t in call("Chat_ListChatThreads", "GET", "/chat/threads", token=outsider_token, status=200).json()["value"]
    ]
    call("Chat_ListChatThreads", "GET", "/chat/threads?startTime=2999-01-01T00:00:00Z", status=200)
    call("Chat_ListChatThreads", "GET", "/chat/threads?maxPageSize=-3", status=400)
    call("Chat_ListChatThreads", "GET", "/chat/threads", token=None, status=401)

    call("Chat_DeleteChatThread", "DELETE", properties, token=outsider_token, status=403)
    call("Chat_DeleteChatThread", "DELETE", properties, token=None, status=401)
    call("Chat_DeleteChatThread", "DELETE", properties, status=204)
    call("Chat_DeleteChatThread", "DELETE", properties, status=404)
    call("ChatThread_GetChatThreadProperties", "GET", properties, status=404)

    # 429 and 503, as the chaos rules of the control plane inject them, on every operation.
    for status in (429, 503):
        rule = {"rules": [{"path": "/chat/*", "status": status, "probability": 1.0, "retryAfter": 1}]}
        assert request(emu, "PUT", "/_emulator/chaos", rule).status == 200
        for operation, (route, method) in spec.operations.items():
            target = route.replace("{chatThreadId}", "19%3Ax%40thread.v2").replace("{chatMessageId}", "1")
            reply = call(operation, method.upper(), target, {}, status=status, injected=True)
            assert reply.headers.get("Retry-After") == "1"
        assert request(emu, "PUT", "/_emulator/chaos", {"rules": []}).status == 200
    # Listing one's own threads has no 403 of its own; the chaos rules inject the declared one.
    rule = {"rules": [{"method": "GET", "path": "/chat/threads", "status": 403, "probability": 1.0}]}
    assert request(emu, "PUT", "/_emulator/chaos", rule).status == 200
    call("Chat_ListChatThreads", "GET", "/chat/threads", status=403, injected=True)
    assert request(emu, "PUT", "/_emulator/chaos", {"rules": []}).status == 200

    declared = {(operation, status) for operation in spec.operations for status in spec.declared(operation)}
    assert declared <= spec.checked, sorted(declared - spec.checked)
