"""Pure validation of Chat requests: api-versions, ids, query parameters and JSON bodies.

Every function raises :class:`ApiError` (400 with ``target`` naming the offending field) and touches
neither the clock nor the database. Limits are the service's published ones where it publishes them
(28 KiB of message content, 1 KiB of metadata); the others are documented where they are defined.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._errors import ApiError
from ._timestamps import parse_rfc3339 as parse_timestamp
from ._validation import json_type_name, parse_json_object

__all__ = [
    "CHAT_API_VERSIONS",
    "MAX_MESSAGE_BYTES",
    "MAX_PAGE_SIZE",
    "METADATA_API_VERSION",
    "NEWEST_CHAT_API_VERSION",
    "ChatError",
    "CreateThread",
    "ParticipantIn",
    "SendMessage",
    "UpdateMessage",
    "UpdateThread",
    "check_chat_api_version",
    "check_message_id",
    "check_thread_id",
    "decode_cursor",
    "encode_cursor",
    "parse_add_participants",
    "parse_create_thread",
    "parse_identifier",
    "parse_page_size",
    "parse_read_receipt",
    "parse_send_message",
    "parse_skip",
    "parse_start_time",
    "parse_typing",
    "parse_update_message",
    "parse_update_thread",
]

#: The Chat api-versions served: the default of azure-communication-chat 1.3.0, and the newest stable.
CHAT_API_VERSIONS: Final = ("2024-03-07", "2025-03-15")
NEWEST_CHAT_API_VERSION: Final = "2025-03-15"
#: Thread and participant ``metadata`` and ``retentionPolicy`` exist from this version on.
METADATA_API_VERSION: Final = "2025-03-15"

#: The service's limit on a message's content ("up to 28 KB"), counted in UTF-8 bytes.
MAX_MESSAGE_BYTES: Final = 28 * 1024
#: The service's limit on the total size of a thread's or participant's metadata pairs.
MAX_METADATA_BYTES: Final = 1024
#: Topics and display names: the service does not publish a bound; 256 characters keeps rows small.
MAX_TEXT_LENGTH: Final = 256
#: Participants in one create or add request (the service's documented batch limit).
MAX_PARTICIPANTS_PER_REQUEST: Final = 200
#: ``maxPageSize`` bounds: the service pages at most 200 items.
MAX_PAGE_SIZE: Final = 200
DEFAULT_PAGE_SIZE: Final = 100
#: The bounds of ``deleteThreadAfterDays`` in a ``threadCreationDate`` retention policy.
RETENTION_DAYS: Final = (30, 90)
#: Ids longer than this cannot be the emulator's (thread ids are about 50 characters).
MAX_ID_LENGTH: Final = 512

SENDABLE_TYPES: Final = frozenset({"text", "html"})
SYSTEM_TYPES: Final = frozenset({"topicUpdated", "participantAdded", "participantRemoved"})


class ChatError(ApiError):
    """An :class:`ApiError` of the Chat service, naming the offending field as the error's ``target``."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None) -> None:
        super().__init__(status, code, message, target=target)


def _bad(message: str, target: str, code: str = "BadRequest") -> ChatError:
    return ChatError(400, code, message, target)


def check_chat_api_version(values: Sequence[str], *, loose: bool = False) -> str:
    """Return the request's single ``api-version`` (the newest one for any value when ``loose``)."""
    if not values:
        raise _bad("The api-version query parameter is required.", "api-version", "MissingApiVersionParameter")
    if len(values) > 1:
        raise _bad("The api-version query parameter must be given once.", "api-version", "InvalidApiVersionParameter")
    version = values[0]
    if version in CHAT_API_VERSIONS:
        return version
    if loose:
        return NEWEST_CHAT_API_VERSION
    raise _bad(
        f"Unsupported api-version (length {len(version)}); supported versions: {', '.join(CHAT_API_VERSIONS)}.",
        "api-version",
        "UnsupportedApiVersion",
    )


def _plain_id(raw: str) -> bool:
    return len(raw) <= MAX_ID_LENGTH and raw.isprintable() and not any(ch in raw for ch in "/\\\"' ")


def check_thread_id(raw: str) -> str:
    """Return ``raw`` when it is shaped like a thread id (``19:...``); a 400 otherwise."""
    if not raw.startswith("19:") or not _plain_id(raw):
        raise _bad(f"The chat thread id is not valid (length {len(raw)}).", "chatThreadId", "InvalidThreadId")
    return raw


def check_message_id(raw: str) -> int:
    """Return a message id (decimal digits: the milliseconds it was created at) as an integer; a 400 otherwise."""
    # 18 digits: every such id fits SQLite's 64-bit integers (ours are 13-digit millisecond times).
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise _bad(f"The chat message id is not valid (length {len(raw)}).", "chatMessageId", "InvalidMessageId")
    return int(raw)


def parse_page_size(values: Sequence[str]) -> int:
    """``maxPageSize``: an integer from 1 to :data:`MAX_PAGE_SIZE` (default 100)."""
    if not values:
        return DEFAULT_PAGE_SIZE
    raw = values[-1]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise _bad(f"maxPageSize must be an integer from 1 to {MAX_PAGE_SIZE}.", "maxPageSize")
    return int(raw)


def parse_skip(values: Sequence[str]) -> int:
    """``skip``: a whole number of items to skip (default 0)."""
    if not values:
        return 0
    raw = values[-1]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise _bad("skip must be a whole number.", "skip")
    return int(raw)


def parse_start_time(values: Sequence[str]) -> float | None:
    """``startTime``: an RFC 3339 timestamp, as seconds since the epoch."""
    if not values:
        return None
    try:
        return parse_timestamp(values[-1])
    except (ValueError, TypeError):
        raise _bad("startTime must be an RFC 3339 timestamp, e.g. 2024-03-07T10:00:00Z.", "startTime") from None


def encode_cursor(state: dict[str, Any]) -> str:
    """An opaque, URL-safe ``syncState`` for a nextLink."""
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).rstrip(b"=").decode()


def decode_cursor(values: Sequence[str], keys: Mapping[str, type]) -> dict[str, Any] | None:
    """Read a ``syncState`` written by :func:`encode_cursor`; ``keys`` maps each key to its type (float or str)."""
    if not values:
        return None
    raw = values[-1]
    try:
        state = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise _bad("syncState is not a value this service returned.", "syncState") from None
    if not isinstance(state, dict):
        raise _bad("syncState is not a value this service returned.", "syncState")
    for key, kind in keys.items():
        value = state.get(key)
        if kind is str:
            valid = isinstance(value, str)
        else:
            valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not valid:
            raise _bad("syncState is not a value this service returned.", "syncState")
    return state


def _text(obj: dict[str, Any], key: str, target: str, *, required: bool, limit: int = MAX_TEXT_LENGTH) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise _bad(f"{target} is required.", target)
        return None
    if not isinstance(value, str):
        raise _bad(f"{target} must be a string, not {json_type_name(value)}.", target)
    if required and not value.strip():
        raise _bad(f"{target} must not be empty.", target)
    if len(value) > limit:
        raise _bad(f"{target} must be at most {limit} characters.", target)
    return value


def _metadata(obj: dict[str, Any], target: str, *, limit: int | None) -> dict[str, str] | None:
    value = obj.get("metadata")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise _bad(f"{target} must be an object of string values.", target)
    if limit is not None and sum(len(k.encode()) + len(v.encode()) for k, v in value.items()) > limit:
        raise _bad(f"{target} must be at most {limit} bytes in total.", target)
    return dict(value)


def _time(obj: dict[str, Any], key: str, target: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{target} must be an RFC 3339 timestamp.", target)
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError):
        raise _bad(f"{target} must be an RFC 3339 timestamp.", target) from None


def parse_identifier(value: object, target: str) -> str:
    """Return the raw id of a ``CommunicationIdentifierModel`` of a Communication user; a 400 otherwise.

    The model may give ``rawId``, ``communicationUser.id`` or both (they must agree); the emulator's
    threads hold Communication users only.
    """
    if not isinstance(value, dict):
        raise _bad(f"{target} must be an identifier object.", target)
    raw_id = value.get("rawId")
    user = value.get("communicationUser")
    kind = value.get("kind")
    user_id = user.get("id") if isinstance(user, dict) else None
    if user is not None and not isinstance(user_id, str):
        raise _bad(f"{target}.communicationUser.id must be a string.", target)
    if raw_id is not None and not isinstance(raw_id, str):
        raise _bad(f"{target}.rawId must be a string.", target)
    if kind not in (None, "communicationUser"):
        raise _bad(f"{target}: only Communication user identifiers can take part in chat threads.", target)
    if raw_id is not None and user_id is not None and raw_id != user_id:
        raise _bad(f"{target}: rawId and communicationUser.id disagree.", target)
    found = user_id if user_id is not None else raw_id
    if found is None:
        raise _bad(f"{target} must have rawId or communicationUser.id.", target)
    if not found.startswith("8:acs:") or not _plain_id(found):
        raise _bad(
            f"{target}: only Communication user identifiers can take part in chat threads (length {len(found)}).",
            target,
            "InvalidIdentifier",
        )
    return found


@dataclass(frozen=True)
class ParticipantIn:
    """One participant of a create or add request."""

    raw_id: str
    display_name: str | None
    share_history_time: float | None
    metadata: dict[str, str] | None


def _participants(value: object, target: str, version: str, *, required: bool) -> tuple[ParticipantIn, ...]:
    if value is None:
        if required:
            raise _bad(f"{target} is required.", target)
        return ()
    if not isinstance(value, list):
        raise _bad(f"{target} must be an array, not {json_type_name(value)}.", target)
    if required and not value:
        raise _bad(f"{target} must not be empty.", target)
    if len(value) > MAX_PARTICIPANTS_PER_REQUEST:
        raise _bad(f"{target} must hold at most {MAX_PARTICIPANTS_PER_REQUEST} participants.", target)
    parsed: dict[str, ParticipantIn] = {}
    for index, item in enumerate(value):
        where = f"{target}[{index}]"
        if not isinstance(item, dict):
            raise _bad(f"{where} must be an object.", where)
        raw_id = parse_identifier(item.get("communicationIdentifier"), f"{where}.communicationIdentifier")
        metadata = _metadata(item, f"{where}.metadata", limit=MAX_METADATA_BYTES)
        parsed[raw_id] = ParticipantIn(
            raw_id=raw_id,
            display_name=_text(item, "displayName", f"{where}.displayName", required=False),
            share_history_time=_time(item, "shareHistoryTime", f"{where}.shareHistoryTime"),
            metadata=metadata if version >= METADATA_API_VERSION else None,
        )
    return tuple(parsed.values())


def _retention(obj: dict[str, Any], version: str) -> dict[str, Any] | None:
    value = obj.get("retentionPolicy")
    if value is None or version < METADATA_API_VERSION:
        return None
    if not isinstance(value, dict):
        raise _bad("retentionPolicy must be an object.", "retentionPolicy")
    kind = value.get("kind")
    if kind == "none":
        return {"kind": "none"}
    if kind != "threadCreationDate":
        raise _bad("retentionPolicy.kind must be 'threadCreationDate' or 'none'.", "retentionPolicy.kind")
    days = value.get("deleteThreadAfterDays")
    low, high = RETENTION_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not low <= days <= high:
        raise _bad(
            f"retentionPolicy.deleteThreadAfterDays must be an integer from {low} to {high}.",
            "retentionPolicy.deleteThreadAfterDays",
        )
    return {"kind": "threadCreationDate", "deleteThreadAfterDays": days}


@dataclass(frozen=True)
class CreateThread:
    """A validated ``POST /chat/threads`` body."""

    topic: str
    participants: tuple[ParticipantIn, ...]
    metadata: dict[str, str] | None
    retention: dict[str, Any] | None


def parse_create_thread(body: bytes, version: str) -> CreateThread:
    """Validate a create-thread body (``topic`` required; metadata and retention from 2025-03-15)."""
    obj = parse_json_object(body, allow_empty=False)
    topic = _text(obj, "topic", "topic", required=True)
    assert topic is not None
    newer = version >= METADATA_API_VERSION
    metadata = _metadata(obj, "metadata", limit=MAX_METADATA_BYTES) if newer else None
    return CreateThread(
        topic=topic,
        participants=_participants(obj.get("participants"), "participants", version, required=False),
        metadata=metadata,
        retention=_retention(obj, version),
    )


@dataclass(frozen=True)
class UpdateThread:
    """A validated ``PATCH /chat/threads/{id}`` body (None: leave unchanged)."""

    topic: str | None
    metadata: dict[str, str] | None
    retention: dict[str, Any] | None


def parse_update_thread(body: bytes, version: str) -> UpdateThread:
    """Validate an update-thread body (a merge patch: absent fields stay as they are)."""
    obj = parse_json_object(body, allow_empty=False)
    newer = version >= METADATA_API_VERSION
    return UpdateThread(
        topic=_text(obj, "topic", "topic", required="topic" in obj),
        metadata=_metadata(obj, "metadata", limit=MAX_METADATA_BYTES) if newer else None,
        retention=_retention(obj, version),
    )


@dataclass(frozen=True)
class SendMessage:
    """A validated send-message body."""

    content: str
    type: str
    sender_display_name: str | None
    metadata: dict[str, str] | None


def _content(obj: dict[str, Any], *, required: bool) -> str | None:
    content = obj.get("content")
    if content is None:
        if required:
            raise _bad("content is required.", "content")
        return None
    if not isinstance(content, str):
        raise _bad(f"content must be a string, not {json_type_name(content)}.", "content")
    if required and not content.strip():
        raise _bad("content must not be empty.", "content")
    if len(content.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise _bad(f"The message content is larger than {MAX_MESSAGE_BYTES} bytes.", "content", "MessageTooLarge")
    return content


def parse_send_message(body: bytes) -> SendMessage:
    """Validate a send-message body: ``content`` required; ``type`` ``text`` (default) or ``html``."""
    obj = parse_json_object(body, allow_empty=False)
    content = _content(obj, required=True)
    assert content is not None
    kind = obj.get("type", "text")
    if not isinstance(kind, str) or kind not in SENDABLE_TYPES:
        system = isinstance(kind, str) and kind in SYSTEM_TYPES
        what = f"'{kind}' is a system message type" if system else "is not a message type"
        raise _bad(f"The message type {what}; send 'text' or 'html'.", "type", "InvalidMessageType")
    return SendMessage(
        content=content,
        type=kind,
        sender_display_name=_text(obj, "senderDisplayName", "senderDisplayName", required=False),
        metadata=_metadata(obj, "metadata", limit=None),
    )


@dataclass(frozen=True)
class UpdateMessage:
    """A validated update-message body (None: leave unchanged)."""

    content: str | None
    metadata: dict[str, str] | None


def parse_update_message(body: bytes) -> UpdateMessage:
    """Validate an update-message body (``content`` and/or ``metadata``)."""
    obj = parse_json_object(body, allow_empty=False)
    return UpdateMessage(content=_content(obj, required=False), metadata=_metadata(obj, "metadata", limit=None))


def parse_add_participants(body: bytes, version: str) -> tuple[ParticipantIn, ...]:
    """Validate an add-participants body (``participants``, non-empty)."""
    obj = parse_json_object(body, allow_empty=False)
    return _participants(obj.get("participants"), "participants", version, required=True)


def parse_read_receipt(body: bytes) -> int:
    """Validate a read-receipt body; return its ``chatMessageId``."""
    obj = parse_json_object(body, allow_empty=False)
    value = obj.get("chatMessageId")
    if not isinstance(value, str):
        raise _bad("chatMessageId is required (a string).", "chatMessageId")
    return check_message_id(value)


def parse_typing(body: bytes) -> str | None:
    """Validate a typing-notification body (may be empty); return its ``senderDisplayName``."""
    obj = parse_json_object(body, allow_empty=True)
    return _text(obj, "senderDisplayName", "senderDisplayName", required=False)
