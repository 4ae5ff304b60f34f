"""Verification of HMAC-SHA256 signed requests, computed here with plain ``hmac`` and ``hashlib``.

This is the independent check of the library's signer: it shares no code with
``azure.communication.common``. It recomputes the string to sign from what was *received* (the method,
the raw request target, ``x-ms-date``, the ``Host`` header and the SHA-256 of the body bytes) as the
service does, and when a check fails the 401 says which one and carries, in ``error.innererror``, the
``stringToSign``, ``contentHash`` and ``host`` the emulator computed, so a developer can diff them against
what the client signed. Never the expected signature, never the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, Final

from ._errors import ApiError

__all__ = [
    "MAX_CLOCK_SKEW",
    "SIGNED_HEADERS",
    "compute_content_hash",
    "compute_signature",
    "compute_string_to_sign",
    "decode_key",
    "verify_hmac",
]

#: The service rejects an ``x-ms-date`` more than 15 minutes away from its own clock. There is no nonce,
#: so an identical request inside that window is legitimate (a retry of a lost response).
MAX_CLOCK_SKEW: Final = 15 * 60.0

#: The one ``SignedHeaders`` value the service accepts.
SIGNED_HEADERS: Final = "x-ms-date;host;x-ms-content-sha256"

_SCHEME: Final = "hmac-sha256"
_EMPTY_HASH: Final = base64.b64encode(hashlib.sha256(b"").digest()).decode("ascii")

# One cached (text, timestamp) pair: concurrent clients sign with the same second's date.
_date_cache: tuple[str, float] = ("", 0.0)


def decode_key(access_key: str) -> bytes:
    """Decode a base64 access key, raising ``ValueError`` (which never quotes it) when it is not base64.

    Raises:
        ValueError: the key is empty or not valid base64.
    """
    if not isinstance(access_key, str):
        raise TypeError("access_key must be a base64 string.")
    text = access_key.strip()
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"access_key is not valid base64 (length {len(text)}).") from None
    if not key:
        raise ValueError("access_key must not be empty.")
    return key


def compute_content_hash(body: bytes) -> str:
    """The base64 SHA-256 of the body bytes (``x-ms-content-sha256``)."""
    if not body:
        return _EMPTY_HASH
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def compute_string_to_sign(method: str, target: str, date: str, host: str, body_hash: str) -> str:
    """``METHOD\\nPATH_AND_QUERY\\nDATE;HOST;CONTENT_HASH``, the service's string to sign."""
    return f"{method.upper()}\n{target}\n{date};{host};{body_hash}"


def compute_signature(key: bytes, text: str) -> str:
    """The base64 HMAC-SHA256 of ``text`` (UTF-8) with the decoded access key."""
    return base64.b64encode(hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()).decode("ascii")


def _parse_date(text: str) -> float | None:
    global _date_cache
    cached = _date_cache
    if cached[0] == text:
        return cached[1]
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        # parsedate_to_datetime returns a naive datetime for "-0000", which RFC 5322 defines as UTC.
        parsed = parsed.replace(tzinfo=timezone.utc)
    timestamp = parsed.timestamp()
    _date_cache = (text, timestamp)
    return timestamp


def _signature_of(value: str) -> tuple[str | None, str | None]:
    """Return ``(problem, signature)`` of an Authorization header: exactly one of them is None."""
    scheme, _, params = value.strip().partition(" ")
    if scheme.lower() != _SCHEME:
        return "The Authorization header must use the HMAC-SHA256 scheme.", None
    fields: dict[str, str] = {}
    for part in params.strip().split("&"):
        name, sep, field_value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = field_value.strip()
    signed_headers = fields.get("signedheaders")
    signature = fields.get("signature")
    if signed_headers is None or signature is None:
        return "The Authorization header needs SignedHeaders and Signature.", None
    if signed_headers.lower() != SIGNED_HEADERS:
        return f"SignedHeaders must be {SIGNED_HEADERS}.", None
    return None, signature


def _deny(check: str, code: str, message: str, computed: dict[str, str]) -> ApiError:
    inner: dict[str, Any] = {"code": code, "message": message, **computed}
    error = ApiError.denied(message, innererror=inner)
    error.verdict = f"hmac: {check}"
    return error


def verify_hmac(
    *,
    method: str,
    raw_target: str,
    headers: Mapping[str, str],
    body: bytes,
    key: bytes,
    now: float,
) -> None:
    """Check one request's HMAC-SHA256 signature, raising a 401 :class:`ApiError` when it is not valid.

    Args:
        method: the request method as received.
        raw_target: the request target exactly as received (path and query, still percent-encoded).
        headers: the received headers (case-insensitive mapping).
        body: the received body bytes.
        key: the decoded access key.
        now: the server's current POSIX time.

    Raises:
        ApiError: 401 ``Denied`` when a header is missing or malformed, the date is more than
            :data:`MAX_CLOCK_SKEW` away from ``now``, the content hash does not match the body, or the
            signature does not match. The message names the failed check; ``innererror`` has the
            ``stringToSign``, ``contentHash`` and ``host`` computed from the request, never the expected
            signature; its ``verdict`` is ``hmac: <the check that failed>``.
    """
    authorization = headers.get("Authorization")
    date = headers.get("x-ms-date")
    host = headers.get("Host") or ""
    body_hash = headers.get("x-ms-content-sha256")
    computed_hash = compute_content_hash(body)
    # A client that sent Date instead of x-ms-date most likely signed Date's value: explain with it.
    signed_date = date if date else headers.get("Date", "")
    computed = {
        "stringToSign": compute_string_to_sign(method, raw_target, signed_date, host, computed_hash),
        "contentHash": computed_hash,
        "host": host,
    }
    missing = [
        name
        for name, value in (
            ("Authorization", authorization),
            ("x-ms-date", date),
            ("Host", host),
            ("x-ms-content-sha256", body_hash),
        )
        if not value
    ]
    if missing or not authorization or not date or not body_hash:
        message = f"Missing required header(s): {', '.join(missing)}."
        if "x-ms-date" in missing and headers.get("Date"):
            message += " A Date header was sent: the service signs and reads x-ms-date only."
        raise _deny(f"missing header {', '.join(missing)}", "MissingHeader", message, computed)
    problem, signature = _signature_of(authorization)
    if problem is not None or signature is None:
        raise _deny("authorization header", "InvalidAuthorizationHeader", str(problem), computed)
    timestamp = _parse_date(date)
    if timestamp is None:
        raise _deny("date", "InvalidDate", "The x-ms-date header is not an RFC 1123 date.", computed)
    skew = timestamp - now
    if abs(skew) > MAX_CLOCK_SKEW:
        direction = "ahead of" if skew > 0 else "behind"
        raise _deny(
            "date",
            "ClockSkew",
            f"The x-ms-date header is {abs(skew):.0f} s {direction} the server time; "
            "at most 15 minutes are allowed (check the client's clock).",
            computed,
        )
    if not hmac.compare_digest(computed_hash.encode("ascii"), body_hash.encode("utf-8", "replace")):
        raise _deny(
            "content hash",
            "InvalidContentHash",
            "The x-ms-content-sha256 header does not match the request body "
            "(hash the exact bytes sent, after any re-serialisation).",
            computed,
        )
    expected = compute_signature(key, compute_string_to_sign(method, raw_target, date, host, body_hash))
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise _deny(
            "signature",
            "InvalidSignature",
            "The request signature is not valid for this access key. Compare innererror.stringToSign with "
            "the string the client signed: path and query as sent, x-ms-date, and Host with its port.",
            computed,
        )
