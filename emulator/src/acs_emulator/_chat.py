"""The emulated Chat service: the routes of the Chat REST API (api-versions 2024-03-07 and 2025-03-15).

Request order, as on the service: authentication first (a Bearer user access token; anything else,
an HMAC signature included, is a 401), then the api-version, the path ids and the body; then one
database call that checks the caller's identity (deleted? revoked?), their membership of the thread, and
does the work. Every outcome leaves ``request["auth"]`` holding a short verdict for the request log.

Responses are rendered per api-version: thread and participant ``metadata`` and the thread's
``retentionPolicy`` exist from 2025-03-15 on and are left out of 2024-03-07 responses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlencode

from aiohttp import web

from ._chat_store import (
    ChatTables,
    InvalidParticipant,
    MessageRecord,
    ParticipantRecord,
    ThreadRecord,
)
from ._chat_validation import (
    CHAT_API_VERSIONS,
    METADATA_API_VERSION,
    ChatError,
    check_chat_api_version,
    check_message_id,
    check_thread_id,
    decode_cursor,
    encode_cursor,
    parse_add_participants,
    parse_create_thread,
    parse_identifier,
    parse_page_size,
    parse_read_receipt,
    parse_send_message,
    parse_skip,
    parse_start_time,
    parse_typing,
    parse_update_message,
    parse_update_thread,
)
from ._errors import ApiError
from ._store import IdentityStore, StoreWorker
from ._timestamps import format_chat_time as format_timestamp
from ._tokens import TokenIssuer
from ._user_auth import Caller, CallerRefused, UserTokenVerifier
from ._validation import parse_json_object

__all__ = ["AUTH_KEY", "ChatService"]

T = TypeVar("T")

#: The aiohttp request key holding the authentication verdict (read by the request log).
AUTH_KEY: Final = "auth"
_SUPPORTED_VERSIONS: Final = ", ".join(CHAT_API_VERSIONS)
#: ``repeatability-request-id`` values longer than this are refused (the service expects a GUID).
_MAX_REQUEST_ID: Final = 128

_Handler = Callable[["ChatService", web.Request], Awaitable[web.StreamResponse]]


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(
        status=status,
        body=json.dumps(payload, separators=(",", ":")).encode("utf-8"),
        content_type="application/json",
        headers=headers,
    )
    response.headers["api-supported-versions"] = _SUPPORTED_VERSIONS
    return response


def _empty(status: int) -> web.Response:
    return web.Response(status=status, headers={"api-supported-versions": _SUPPORTED_VERSIONS})


def _error(exc: ApiError) -> web.Response:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    target = getattr(exc, "target", None)
    if target is not None:
        error["target"] = target
    return _json(exc.status, {"error": error})


def _route(handler: _Handler) -> _Handler:
    """Answer a handler's :class:`ApiError` with the service's JSON (``target`` included)."""

    async def wrapped(service: ChatService, request: web.Request) -> web.StreamResponse:
        try:
            return await handler(service, request)
        except CallerRefused as exc:
            request[AUTH_KEY] = exc.verdict
            return _error(exc)
        except ApiError as exc:
            if exc.status == 403 and request.get(AUTH_KEY) == "bearer: ok":
                request[AUTH_KEY] = "bearer: ok, forbidden"
            return _error(exc)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def identifier(raw_id: str) -> dict[str, Any]:
    """The ``CommunicationIdentifierModel`` of a Communication user."""
    return {"rawId": raw_id, "kind": "communicationUser", "communicationUser": {"id": raw_id}}


class ChatService:
    """The Chat routes over the emulator's store and token issuer.

    Args:
        store: the database worker (its :class:`IdentityStore` holds the ``chat_*`` tables).
        issuer: the token issuer whose signatures the Bearer tokens must carry.
        resource_id: the resource GUID; participants must be identities of this resource.
        clock: the POSIX clock (a seam for tests).
        loose: accept any api-version and answer with the newest behaviour.
    """

    def __init__(
        self,
        store: StoreWorker,
        issuer: TokenIssuer,
        *,
        resource_id: str,
        clock: Callable[[], float],
        loose: bool = False,
    ) -> None:
        self._store = store
        self._clock = clock
        self._loose = loose
        self._resource_prefix = f"8:acs:{resource_id}_"
        self.verifier = UserTokenVerifier(issuer.verify, clock)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register every Chat route on ``router``."""
        threads = "/chat/threads"
        thread = threads + "/{thread}"
        router.add_post(threads, self.create_thread)
        router.add_get(threads, self.list_threads)
        router.add_get(thread, self.get_thread)
        router.add_patch(thread, self.update_thread)
        router.add_delete(thread, self.delete_thread)
        router.add_post(thread + "/messages", self.send_message)
        router.add_get(thread + "/messages", self.list_messages)
        router.add_get(thread + "/messages/{message}", self.get_message)
        router.add_patch(thread + "/messages/{message}", self.update_message)
        router.add_delete(thread + "/messages/{message}", self.delete_message)
        router.add_get(thread + "/participants", self.list_participants)
        router.add_post(thread + "/participants/:add", self.add_participants)
        router.add_post(thread + "/participants/:remove", self.remove_participant)
        router.add_post(thread + "/readReceipts", self.send_read_receipt)
        router.add_get(thread + "/readReceipts", self.list_read_receipts)
        router.add_post(thread + "/typing", self.send_typing_notification)

    # -- shared steps --------------------------------------------------------------------------------

    def _authenticate(self, request: web.Request) -> tuple[Caller, str]:
        caller = self.verifier.caller(request.headers.get("Authorization"))
        request[AUTH_KEY] = "bearer: ok"
        version = check_chat_api_version(request.query.getall("api-version", []), loose=self._loose)
        return caller, version

    def _thread_id(self, request: web.Request) -> str:
        return check_thread_id(request.match_info["thread"])

    async def _db(self, fn: Callable[[ChatTables], T]) -> T:
        def run(store: IdentityStore) -> T:
            return fn(store.chat)

        return await self._store.call(run)

    @staticmethod
    def _origin(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    def _next_link(self, request: web.Request, params: dict[str, Any], version: str) -> str:
        query = urlencode({**params, "api-version": version})
        return f"{self._origin(request)}{request.path}?{query}"

    # -- rendering -----------------------------------------------------------------------------------

    @staticmethod
    def _participant(record: ParticipantRecord | dict[str, Any], version: str) -> dict[str, Any]:
        if isinstance(record, dict):
            raw_id, name = record["rawId"], record.get("displayName")
            share, metadata = record.get("shareHistoryTime"), record.get("metadata")
        else:
            raw_id, name, share, metadata = (
                record.raw_id,
                record.display_name,
                record.share_history_time,
                record.metadata,
            )
        item: dict[str, Any] = {"communicationIdentifier": identifier(raw_id)}
        if name is not None:
            item["displayName"] = name
        if share is not None:
            item["shareHistoryTime"] = format_timestamp(share)
        if metadata is not None and version >= METADATA_API_VERSION:
            item["metadata"] = metadata
        return item

    @staticmethod
    def _thread(record: ThreadRecord, version: str) -> dict[str, Any]:
        thread: dict[str, Any] = {
            "id": record.id,
            "topic": record.topic,
            "createdOn": format_timestamp(record.created_on),
            "createdByCommunicationIdentifier": identifier(record.created_by),
        }
        if version >= METADATA_API_VERSION:
            if record.metadata is not None:
                thread["metadata"] = record.metadata
            if record.retention is not None:
                thread["retentionPolicy"] = record.retention
        return thread

    def _message(self, record: MessageRecord, version: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": str(record.id),
            "type": record.type,
            "sequenceId": str(record.seq),
            "version": str(record.version),
            "createdOn": format_timestamp(record.created_on),
        }
        content: dict[str, Any] = {}
        if record.message is not None:
            content["message"] = record.message
        if record.topic is not None:
            content["topic"] = record.topic
        if record.participants is not None:
            content["participants"] = [self._participant(item, version) for item in record.participants]
        if record.initiator is not None:
            content["initiatorCommunicationIdentifier"] = identifier(record.initiator)
        if content:
            message["content"] = content
        if record.sender_display_name is not None:
            message["senderDisplayName"] = record.sender_display_name
        if record.sender is not None:
            message["senderCommunicationIdentifier"] = identifier(record.sender)
        if record.deleted_on is not None:
            message["deletedOn"] = format_timestamp(record.deleted_on)
        if record.edited_on is not None:
            message["editedOn"] = format_timestamp(record.edited_on)
        if record.metadata is not None:
            message["metadata"] = record.metadata
        return message

    @staticmethod
    def _invalid(invalid: list[InvalidParticipant]) -> dict[str, Any]:
        if not invalid:
            return {}
        return {
            "invalidParticipants": [
                {"code": item.code, "message": item.message, "target": item.raw_id} for item in invalid
            ]
        }

    # -- threads -------------------------------------------------------------------------------------

    @_route
    async def create_thread(self, request: web.Request) -> web.StreamResponse:
        """``POST /chat/threads``: 201 ``CreateChatThreadResult`` with ``Location``."""
        caller, version = self._authenticate(request)
        request_id = request.headers.get("repeatability-request-id")
        if request_id is not None and not (0 < len(request_id) <= _MAX_REQUEST_ID and request_id.isprintable()):
            raise ChatError(400, "BadRequest", "repeatability-request-id must be a GUID.", "repeatability-request-id")
        parsed = parse_create_thread(await request.read(), version)
        new_id = f"19:acsemu_{uuid.uuid4().hex}@thread.v2"
        now = self._clock()
        thread, invalid = await self._db(
            lambda chat: chat.create_thread(
                caller, parsed, new_id=new_id, request_id=request_id, resource_prefix=self._resource_prefix, now=now
            )
        )
        location = f"{self._origin(request)}/chat/threads/{quote(thread.id, safe='@')}"
        body = {"chatThread": self._thread(thread, version), **self._invalid(invalid)}
        return _json(201, body, {"Location": location})

    @_route
    async def list_threads(self, request: web.Request) -> web.StreamResponse:
        """``GET /chat/threads``: the caller's threads, paged (``maxPageSize``, ``startTime``)."""
        caller, version = self._authenticate(request)
        limit = parse_page_size(request.query.getall("maxPageSize", []))
        state = decode_cursor(request.query.getall("syncState", []), {"on": float, "id": str, "since": float})
        if state is not None:
            since, after = float(state["since"]), (float(state["on"]), str(state["id"]))
        else:
            since, after = parse_start_time(request.query.getall("startTime", [])) or -1.0, None
        items = await self._db(lambda chat: chat.list_threads(caller, start_time=since, after=after, limit=limit))
        body: dict[str, Any] = {
            "value": [
                {"id": item.id, "topic": item.topic, "lastMessageReceivedOn": format_timestamp(item.last_message_on)}
                for item in items[:limit]
            ]
        }
        if len(items) > limit:
            last = items[limit - 1]
            cursor = encode_cursor({"on": last.last_message_on, "id": last.id, "since": since})
            body["nextLink"] = self._next_link(request, {"syncState": cursor, "maxPageSize": limit}, version)
        return _json(200, body)

    @_route
    async def get_thread(self, request: web.Request) -> web.StreamResponse:
        """``GET /chat/threads/{id}``: ``ChatThreadProperties``."""
        caller, version = self._authenticate(request)
        thread_id = self._thread_id(request)
        thread = await self._db(lambda chat: chat.get_thread(caller, thread_id))
        return _json(200, self._thread(thread, version))

    @_route
    async def update_thread(self, request: web.Request) -> web.StreamResponse:
        """``PATCH /chat/threads/{id}``: topic, metadata, retention policy; 204."""
        caller, version = self._authenticate(request)
        thread_id = self._thread_id(request)
        update = parse_update_thread(await request.read(), version)
        now = self._clock()
        await self._db(lambda chat: chat.update_thread(caller, thread_id, update, now))
        return _empty(204)

    @_route
    async def delete_thread(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /chat/threads/{id}``: 204."""
        caller, _ = self._authenticate(request)
        thread_id = self._thread_id(request)
        await self._db(lambda chat: chat.delete_thread(caller, thread_id))
        return _empty(204)

    # -- messages ------------------------------------------------------------------------------------

    @_route
    async def send_message(self, request: web.Request) -> web.StreamResponse:
        """``POST /chat/threads/{id}/messages``: 201 ``{id}`` with ``Location``."""
        caller, _ = self._authenticate(request)
        thread_id = self._thread_id(request)
        parsed = parse_send_message(await request.read())
        now = self._clock()
        message_id = await self._db(lambda chat: chat.send_message(caller, thread_id, parsed, now))
        location = f"{self._origin(request)}/chat/threads/{quote(thread_id, safe='@')}/messages/{message_id}"
        return _json(201, {"id": str(message_id)}, {"Location": location})

    @_route
    async def list_messages(self, request: web.Request) -> web.StreamResponse:
        """``GET /chat/threads/{id}/messages``: newest first, paged (``maxPageSize``, ``startTime``)."""
        caller, version = self._authenticate(request)
        thread_id = self._thread_id(request)
        limit = parse_page_size(request.query.getall("maxPageSize", []))
        state = decode_cursor(request.query.getall("syncState", []), {"before": float, "since": float})
        if state is not None:
            since: float | None = float(state["since"])
            # Clamped: a forged cursor must not overflow SQLite's 64-bit integers.
            before: int | None = int(max(0.0, min(float(state["before"]), 2.0**62)))
        else:
            since, before = parse_start_time(request.query.getall("startTime", [])), None
        messages = await self._db(
            lambda chat: chat.list_messages(caller, thread_id, start_time=since, before_seq=before, limit=limit)
        )
        body: dict[str, Any] = {"value": [self._message(message, version) for message in messages[:limit]]}
        if len(messages) > limit:
            cursor = encode_cursor({"before": messages[limit - 1].seq, "since": -1.0 if since is None else since})
            body["nextLink"] = self._next_link(request, {"syncState": cursor, "maxPageSize": limit}, version)
        return _json(200, body)

    def _message_id(self, request: web.Request) -> int:
        return check_message_id(request.match_info["message"])

    @_route
    async def get_message(self, request: web.Request) -> web.StreamResponse:
        """``GET /chat/threads/{id}/messages/{messageId}``: ``ChatMessage``."""
        caller, version = self._authenticate(request)
        thread_id = self._thread_id(request)
        message_id = self._message_id(request)
        message = await self._db(lambda chat: chat.get_message(caller, thread_id, message_id))
        return _json(200, self._message(message, version))

    @_route
    async def update_message(self, request: web.Request) -> web.StreamResponse:
        """``PATCH /chat/threads/{id}/messages/{messageId}``: the sender edits content/metadata; 204."""
        caller, _ = self._authenticate(request)
        thread_id = self._thread_id(request)
        message_id = self._message_id(request)
        update = parse_update_message(await request.read())
        now = self._clock()
        await self._db(lambda chat: chat.update_message(caller, thread_id, message_id, update, now))
        return _empty(204)

    @_route
    async def delete_message(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /chat/threads/{id}/messages/{messageId}``: the sender deletes it; 204."""
        caller, _ = self._authenticate(request)
        thread_id = self._thread_id(request)
        message_id = self._message_id(request)
        now = self._clock()
        await self._db(lambda chat: chat.delete_message(caller, thread_id, message_id, now))
        return _empty(204)

    # -- participants --------------------------------------------------------------------------------

    @_route
    async def list_participants(self, request: web.Request) -> web.StreamResponse:
        """``GET /chat/threads/{id}/participants``: paged with ``maxPageSize`` and ``skip``."""
        caller, version = self._authenticate(request)
        thread_id = self._thread_id(request)
        limit = parse_page_size(request.query.getall("maxPageSize", []))
        skip = parse_skip(request.query.getall("skip", []))
        rows = await self._db(lambda chat: chat.list_participants(caller, thread_id, skip=skip, limit=limit))
        body: dict[str, Any] = {"value": [self._participant(row, version) for row in rows[:limit]]}
        if len(rows) > limit:
            body["nextLink"] = self._next_link(request, {"skip": skip + limit, "maxPageSize": limit}, version)
        return _json(200, body)

    @_route
    async def add_participants(self, request: web.Request) -> web.StreamResponse:
        """``POST /chat/threads/{id}/participants/:add``: 201 ``AddChatParticipantsResult``."""
        caller, version = self._authenticate(request)
        thread_id = self._thread_id(request)
        participants = parse_add_participants(await request.read(), version)
        now = self._clock()
        invalid = await self._db(
            lambda chat: chat.add_participants(
                caller, thread_id, participants, resource_prefix=self._resource_prefix, now=now
            )
        )
        return _json(201, self._invalid(invalid))

    @_route
    async def remove_participant(self, request: web.Request) -> web.StreamResponse:
        """``POST /chat/threads/{id}/participants/:remove``: body is the identifier; 204."""
        caller, _ = self._authenticate(request)
        thread_id = self._thread_id(request)
        raw_id = parse_identifier(parse_json_object(await request.read(), allow_empty=False), "body")
        now = self._clock()
        await self._db(lambda chat: chat.remove_participant(caller, thread_id, raw_id, now))
        return _empty(204)

    # -- read receipts and typing --------------------------------------------------------------------

    @_route
    async def send_read_receipt(self, request: web.Request) -> web.StreamResponse:
        """``POST /chat/threads/{id}/readReceipts``: 200."""
        caller, _ = self._authenticate(request)
        thread_id = self._thread_id(request)
        message_id = parse_read_receipt(await request.read())
        now = self._clock()
        await self._db(lambda chat: chat.send_read_receipt(caller, thread_id, message_id, now))
        return _empty(200)

    @_route
    async def list_read_receipts(self, request: web.Request) -> web.StreamResponse:
        """``GET /chat/threads/{id}/readReceipts``: paged with ``maxPageSize`` and ``skip``."""
        caller, version = self._authenticate(request)
        thread_id = self._thread_id(request)
        limit = parse_page_size(request.query.getall("maxPageSize", []))
        skip = parse_skip(request.query.getall("skip", []))
        rows = await self._db(lambda chat: chat.list_read_receipts(caller, thread_id, skip=skip, limit=limit))
        body: dict[str, Any] = {
            "value": [
                {
                    "senderCommunicationIdentifier": identifier(row.raw_id),
                    "chatMessageId": str(row.message_id),
                    "readOn": format_timestamp(row.read_on),
                }
                for row in rows[:limit]
            ]
        }
        if len(rows) > limit:
            body["nextLink"] = self._next_link(request, {"skip": skip + limit, "maxPageSize": limit}, version)
        return _json(200, body)

    @_route
    async def send_typing_notification(self, request: web.Request) -> web.StreamResponse:
        """``POST /chat/threads/{id}/typing``: 200 (nothing is stored: there are no push notifications)."""
        caller, _ = self._authenticate(request)
        thread_id = self._thread_id(request)
        parse_typing(await request.read())
        await self._db(lambda chat: chat.check_participant(caller, thread_id))
        return _empty(200)
