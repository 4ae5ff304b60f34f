"""Two users hold a whole conversation through the official azure-communication-chat client (sync and aio).

The credentials are ours (``CommunicationTokenCredential``, sync and ``aio``), their refreshers are backed by
the official identity client, and the emulator serves HTTPS (the chat client's bearer policy refuses plain
http). Every Chat operation is used: threads (create with an idempotency token, list paged, get, update,
delete), messages (send, list paged, get, update, delete), system messages, participants (list paged, add,
remove), read receipts and typing notifications.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from azure.communication.chat import ChatClient, ChatMessageType, ChatParticipant
from azure.communication.chat.aio import ChatClient as AsyncChatClient
from azure.communication.identity import CommunicationIdentityClient
from azure.communication.identity.aio import CommunicationIdentityClient as AsyncCommunicationIdentityClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from acs_emulator import Emulator
from azure.communication.common import CommunicationTokenCredential
from azure.communication.common.aio import CommunicationTokenCredential as AsyncCommunicationTokenCredential

MESSAGES = 12
PAGE = 5
USER_TYPES = {ChatMessageType.TEXT, ChatMessageType.HTML}


@pytest.fixture(scope="module")
def chat_emulator() -> Iterator[Emulator]:
    with Emulator(https=True) as emu:
        yield emu
        assert emu.unexpected_errors == 0


def _raw(identifier: Any) -> str:
    return str(identifier.raw_id)


def test_sync_conversation(chat_emulator: Emulator) -> None:
    emu = chat_emulator
    verify = {"connection_verify": emu.ca_bundle}
    identity = CommunicationIdentityClient.from_connection_string(emu.connection_string, **verify)
    alice, bob, carol = identity.create_user(), identity.create_user(), identity.create_user()
    refreshes: Counter[str] = Counter()

    def refresher(user: Any, name: str) -> Any:
        def refresh() -> Any:
            refreshes[name] += 1
            return identity.get_token(user, ["chat"])

        return refresh

    with (
        CommunicationTokenCredential(token_refresher=refresher(alice, "alice")) as alice_credential,
        CommunicationTokenCredential(token_refresher=refresher(bob, "bob")) as bob_credential,
        CommunicationTokenCredential(token_refresher=refresher(carol, "carol")) as carol_credential,
    ):
        alice_chat = ChatClient(emu.endpoint, alice_credential, **verify)
        bob_chat = ChatClient(emu.endpoint, bob_credential, **verify)
        carol_chat = ChatClient(emu.endpoint, carol_credential, **verify)
        participants = [
            ChatParticipant(identifier=alice, display_name="Alice"),
            ChatParticipant(identifier=bob, display_name="Bob"),
        ]
        token = str(uuid.uuid4())
        created = alice_chat.create_chat_thread("Lunch", thread_participants=participants, idempotency_token=token)
        assert created.errors == []
        thread_id = created.chat_thread.id
        assert created.chat_thread.topic == "Lunch"
        assert _raw(created.chat_thread.created_by) == _raw(alice)
        # The same repeatability-request-id returns the same thread instead of creating another one.
        again = alice_chat.create_chat_thread("Lunch", thread_participants=participants, idempotency_token=token)
        assert again.chat_thread.id == thread_id
        assert [t.id for t in alice_chat.list_chat_threads()] == [thread_id]

        alice_thread = alice_chat.get_chat_thread_client(thread_id, **verify)
        bob_thread = bob_chat.get_chat_thread_client(thread_id, **verify)
        sent = [alice_thread.send_message(f"message {i}", sender_display_name="Alice").id for i in range(MESSAGES)]
        html = alice_thread.send_message("<b>menu</b>", chat_message_type=ChatMessageType.HTML, metadata={"k": "v"})
        sent.append(html.id)

        # The second user sees the first's messages, newest first, and paging brings back every one.
        pages = [list(page) for page in bob_thread.list_messages(results_per_page=PAGE).by_page()]
        assert all(len(page) <= PAGE for page in pages)
        assert len(pages) >= (MESSAGES + 2) // PAGE
        listed = [message for page in pages for message in page]
        user_messages = [m for m in listed if m.type in USER_TYPES]
        assert [m.id for m in user_messages] == sent[::-1]
        assert {_raw(m.sender) for m in user_messages} == {_raw(alice)}
        assert user_messages[0].content.message == "<b>menu</b>"
        assert user_messages[0].metadata == {"k": "v"}
        assert user_messages[-1].content.message == "message 0"
        system = [m for m in listed if m.type not in USER_TYPES]
        assert [m.type for m in system] == [ChatMessageType.TOPIC_UPDATED, ChatMessageType.PARTICIPANT_ADDED]
        assert {_raw(p.identifier) for p in system[1].content.participants} == {_raw(alice), _raw(bob)}
        assert system[0].content.topic == "Lunch"

        got = bob_thread.get_message(sent[3])
        assert got.content.message == "message 3"
        assert got.sender_display_name == "Alice"
        alice_thread.update_message(sent[3], content="message 3, edited")
        edited = bob_thread.get_message(sent[3])
        assert edited.content.message == "message 3, edited"
        assert edited.edited_on is not None
        with pytest.raises(HttpResponseError) as info:
            bob_thread.update_message(sent[3], content="not yours")
        assert info.value.status_code == 403
        alice_thread.delete_message(sent[4])
        assert bob_thread.get_message(sent[4]).deleted_on is not None

        bob_thread.send_typing_notification(sender_display_name="Bob")
        bob_thread.send_read_receipt(sent[-1])
        receipts = list(alice_thread.list_read_receipts())
        assert [(_raw(r.sender), r.chat_message_id) for r in receipts] == [(_raw(bob), sent[-1])]

        members = [page for page in alice_thread.list_participants(results_per_page=1).by_page()]
        assert [[_raw(p.identifier) for p in page] for page in members] == [[_raw(alice)], [_raw(bob)]]
        assert alice_thread.add_participants([ChatParticipant(identifier=carol, display_name="Carol")]) == []
        assert {p.display_name for p in alice_thread.list_participants()} == {"Alice", "Bob", "Carol"}
        assert [t.id for t in carol_chat.list_chat_threads()] == [thread_id]
        carol_thread = carol_chat.get_chat_thread_client(thread_id, **verify)
        assert carol_thread.send_message("hi, Carol here").id
        alice_thread.remove_participant(carol)
        with pytest.raises(HttpResponseError) as info:
            carol_thread.send_message("am I still here?")
        assert info.value.status_code == 403
        assert list(carol_chat.list_chat_threads()) == []

        bob_thread.update_topic("Dinner")
        assert alice_thread.get_properties().topic == "Dinner"
        latest = [m.type for m in alice_thread.list_messages(results_per_page=3).by_page().__next__()]
        assert latest == [ChatMessageType.TOPIC_UPDATED, ChatMessageType.PARTICIPANT_REMOVED, ChatMessageType.TEXT]

        alice_chat.delete_chat_thread(thread_id)
        assert list(alice_chat.list_chat_threads()) == []
        with pytest.raises(ResourceNotFoundError):
            bob_thread.get_properties()
    # Tokens last 24 hours: each credential fetched one, once.
    assert refreshes == {"alice": 1, "bob": 1, "carol": 1}


async def test_async_conversation(chat_emulator: Emulator) -> None:
    emu = chat_emulator
    verify = {"connection_verify": emu.ca_bundle}
    async with AsyncCommunicationIdentityClient.from_connection_string(emu.connection_string, **verify) as identity:
        alice, bob = await identity.create_user(), await identity.create_user()
        refreshes: Counter[str] = Counter()

        def refresher(user: Any, name: str) -> Any:
            async def refresh() -> Any:
                refreshes[name] += 1
                return await identity.get_token(user, ["chat"])

            return refresh

        async with (
            AsyncCommunicationTokenCredential(token_refresher=refresher(alice, "alice")) as alice_credential,
            AsyncCommunicationTokenCredential(token_refresher=refresher(bob, "bob")) as bob_credential,
            AsyncChatClient(emu.endpoint, alice_credential, **verify) as alice_chat,
            AsyncChatClient(emu.endpoint, bob_credential, **verify) as bob_chat,
        ):
            created = await alice_chat.create_chat_thread(
                "Async lunch", thread_participants=[ChatParticipant(identifier=bob, display_name="Bob")]
            )
            thread_id = created.chat_thread.id
            async with (
                alice_chat.get_chat_thread_client(thread_id, **verify) as alice_thread,
                bob_chat.get_chat_thread_client(thread_id, **verify) as bob_thread,
            ):
                sent = [(await alice_thread.send_message(f"async {i}")).id for i in range(MESSAGES)]
                listed = [m async for m in bob_thread.list_messages(results_per_page=PAGE)]
                assert [m.id for m in listed if m.type in USER_TYPES] == sent[::-1]
                assert {_raw(m.sender) for m in listed if m.type in USER_TYPES} == {_raw(alice)}
                assert (await bob_thread.get_message(sent[0])).content.message == "async 0"
                await alice_thread.update_message(sent[0], content="async 0, edited")
                assert (await bob_thread.get_message(sent[0])).content.message == "async 0, edited"
                await alice_thread.delete_message(sent[1])
                assert (await bob_thread.get_message(sent[1])).deleted_on is not None
                await bob_thread.send_typing_notification()
                await bob_thread.send_read_receipt(sent[-1])
                receipts = [r async for r in alice_thread.list_read_receipts()]
                assert [(_raw(r.sender), r.chat_message_id) for r in receipts] == [(_raw(bob), sent[-1])]
                # The thread's creator is a participant without being listed in the request.
                members = [_raw(p.identifier) async for p in bob_thread.list_participants(results_per_page=1)]
                assert members == [_raw(alice), _raw(bob)]
                await bob_thread.update_topic("Async dinner")
                assert (await alice_thread.get_properties()).topic == "Async dinner"
                await alice_thread.remove_participant(bob)
                with pytest.raises(HttpResponseError) as info:
                    await bob_thread.send_message("gone")
                assert info.value.status_code == 403
                assert [t.id async for t in alice_chat.list_chat_threads(results_per_page=1)] == [thread_id]
                await alice_chat.delete_chat_thread(thread_id)
                assert [t.id async for t in alice_chat.list_chat_threads()] == []
                with pytest.raises(ResourceNotFoundError):
                    await alice_thread.get_properties()
        assert refreshes == {"alice": 1, "bob": 1}


def test_identity_client_with_key_credential_backs_the_refresher(chat_emulator: Emulator) -> None:
    emu = chat_emulator
    identity = CommunicationIdentityClient(
        emu.endpoint, AzureKeyCredential(emu.access_key), connection_verify=emu.ca_bundle
    )
    user = identity.create_user()
    with CommunicationTokenCredential(token_refresher=lambda: identity.get_token(user, ["chat.join"])) as credential:
        chat = ChatClient(emu.endpoint, credential, connection_verify=emu.ca_bundle)
        # chat.join opens Chat but cannot create threads (the service's definition of the scope).
        with pytest.raises(HttpResponseError) as info:
            chat.create_chat_thread("not allowed")
        assert info.value.status_code == 403
        assert list(chat.list_chat_threads()) == []
