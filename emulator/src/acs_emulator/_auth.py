"""Verification of HMAC-SHA256 signed requests, built on the library's own signing core.

The verifier recomputes the signature from what was *received*: the raw request target, the ``Host``
header and the body bytes, exactly as the service does. It never builds a second signing path: the
string to sign and the HMAC come from :mod:`azure.communication.common._signing`.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Final

from azure.communication.common._signing import SIGNED_HEADERS, compute_signature, content_hash, string_to_sign

from ._errors import ApiError

__all__ = ["MAX_CLOCK_SKEW", "verify_hmac"]

#: The service rejects an ``x-ms-date`` more than 15 minutes away from its own clock. There is no nonce,
#: so an identical request inside that window is legitimate (a retry of a lost response).
MAX_CLOCK_SKEW: Final = 15 * 60.0

_SCHEME: Final = "hmac-sha256"

# One cached (text, timestamp) pair: concurrent clients sign with the same second's date.
_date_cache: tuple[str, float] = ("", 0.0)


def _parse_date(text: str) -> float:
    global _date_cache
    cached = _date_cache
    if cached[0] == text:
        return cached[1]
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        raise ApiError.denied("The x-ms-date header is not an RFC 1123 date.") from None
    if parsed.tzinfo is None:
        # parsedate_to_datetime returns a naive datetime for "-0000", which RFC 5322 defines as UTC.
        parsed = parsed.replace(tzinfo=timezone.utc)
    timestamp = parsed.timestamp()
    _date_cache = (text, timestamp)
    return timestamp


def _parse_authorization(value: str) -> tuple[str, str]:
    scheme, _, params = value.strip().partition(" ")
    if scheme.lower() != _SCHEME:
        raise ApiError.denied("The Authorization header must use the HMAC-SHA256 scheme.")
    fields: dict[str, str] = {}
    for part in params.strip().split("&"):
        name, sep, field_value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = field_value.strip()
    signed_headers = fields.get("signedheaders")
    signature = fields.get("signature")
    if signed_headers is None or signature is None:
        raise ApiError.denied("The Authorization header needs SignedHeaders and Signature.")
    if signed_headers.lower() != SIGNED_HEADERS:
        raise ApiError.denied(f"SignedHeaders must be {SIGNED_HEADERS}.")
    return signed_headers, signature


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
            signature does not match. The message names the failed check, never the expected value.
    """
    authorization = headers.get("Authorization")
    date = headers.get("x-ms-date")
    host = headers.get("Host")
    body_hash = headers.get("x-ms-content-sha256")
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
    if missing or authorization is None or date is None or host is None or body_hash is None:
        raise ApiError.denied(f"Missing required header(s): {', '.join(missing)}.")
    _, signature = _parse_authorization(authorization)
    if abs(_parse_date(date) - now) > MAX_CLOCK_SKEW:
        raise ApiError.denied("The x-ms-date header is more than 15 minutes away from the server time.")
    if not hmac.compare_digest(content_hash(body).encode("ascii"), body_hash.encode("utf-8", "replace")):
        raise ApiError.denied("The x-ms-content-sha256 header does not match the request body.")
    expected = compute_signature(key, string_to_sign(method, raw_target, date, host, body_hash))
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise ApiError.denied("The request signature is not valid for this access key.")
