"""The pure HMAC-SHA256 signing core shared by every signer and by the emulator's verifier.

Azure Communication Services authenticates access-key requests with HMAC-SHA256 over
``METHOD\\npath_and_query\\ndate;host;content_hash``. Each step here is a small pure function so that the
azure-core policy, the httpx and requests auths and the emulator's verifier all compute the same bytes, and
each step can be checked against published vectors. Nothing here reads the clock: the date is an argument.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "EMPTY_CONTENT_HASH",
    "SIGNED_HEADERS",
    "authorization_header",
    "compute_signature",
    "content_hash",
    "decode_access_key",
    "format_date",
    "sign",
    "string_to_sign",
]

SIGNED_HEADERS: Final = "x-ms-date;host;x-ms-content-sha256"
EMPTY_CONTENT_HASH: Final = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# One cached (second, text) pair: every request in the same second shares the formatted date.
_date_cache: tuple[int, str] = (-1, "")


# hashlib and hmac load OpenSSL, a few milliseconds that azure-core's own import does not pay: they are
# imported at the first signature, not with the package. Each function below replaces itself with the
# library function on its first call, so later calls pay nothing for the laziness.


def _first_sha256(data: Any) -> Any:
    global _sha256
    import hashlib

    _sha256 = hashlib.sha256
    return _sha256(data)


def _first_hmac_sha256(key: bytes, message: bytes) -> bytes:
    global _hmac_sha256
    import hmac
    from functools import partial

    _hmac_sha256 = partial(hmac.digest, digest="sha256")
    return _hmac_sha256(key, message)


_sha256: Callable[[Any], Any] = _first_sha256
_hmac_sha256: Callable[[bytes, bytes], bytes] = _first_hmac_sha256


def content_hash(body: bytes | bytearray | memoryview) -> str:
    """Return the base64 SHA-256 of the body bytes (the ``x-ms-content-sha256`` header)."""
    if not body:
        return EMPTY_CONTENT_HASH
    return base64.b64encode(_sha256(body).digest()).decode("ascii")


def format_date(timestamp: float) -> str:
    """Format a POSIX timestamp as RFC 1123 (``Wed, 13 Apr 2022 18:09:12 GMT``), independent of locale."""
    global _date_cache
    second = int(timestamp)
    cached = _date_cache
    if cached[0] == second:
        return cached[1]
    t = time.gmtime(second)
    text = (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )
    _date_cache = (second, text)
    return text


def string_to_sign(method: str, path_and_query: str, date: str, host: str, body_hash: str) -> str:
    """Build the string the service signs: ``METHOD\\npath_and_query\\ndate;host;content_hash``."""
    return f"{method.upper()}\n{path_and_query}\n{date};{host};{body_hash}"


def compute_signature(key: bytes, to_sign: str) -> str:
    """Return the base64 HMAC-SHA256 of ``to_sign`` (UTF-8) under the decoded access key."""
    return base64.b64encode(_hmac_sha256(key, to_sign.encode("utf-8"))).decode("ascii")


def authorization_header(signature: str) -> str:
    """Return the ``Authorization`` header value for a signature."""
    return f"HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}"


def decode_access_key(key: str) -> bytes:
    """Decode a base64 access key, raising ``ValueError`` (never quoting the key) when it is not base64.

    Raises:
        TypeError: the key is not a string.
        ValueError: the key is empty or not valid base64.
    """
    if not isinstance(key, str):
        raise TypeError(f"The access key must be a str, not {type(key).__name__}.")
    stripped = key.strip()
    if not stripped:
        raise ValueError("The access key is empty.")
    decoded: bytes | None
    try:
        decoded = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        decoded = None
    # Raised outside the except block, so the new error has no __context__ at all: for a key with a
    # non-ASCII character (a pasted zero-width space) the inner UnicodeEncodeError's .object is the key.
    if decoded is None:
        raise ValueError(
            f"The access key is not valid base64 (length {len(key)}); "
            "use the key from the resource's 'Keys' page or connection string."
        )
    if not decoded:
        raise ValueError("The access key decodes to zero bytes.")
    return decoded


def sign(*, method: str, path_and_query: str, host: str, body_hash: str, key: bytes, date: str) -> dict[str, str]:
    """Return the three signing headers for one request.

    Args:
        method: the HTTP method.
        path_and_query: the request target exactly as sent (canonical path and query).
        host: the ``Host`` header value exactly as sent (``host[:port]``).
        body_hash: :func:`content_hash` of the body bytes as sent.
        key: the decoded access key (:func:`decode_access_key`).
        date: the ``x-ms-date`` value (:func:`format_date`).
    """
    signature = compute_signature(key, string_to_sign(method, path_and_query, date, host, body_hash))
    return {
        "x-ms-date": date,
        "x-ms-content-sha256": body_hash,
        "Authorization": authorization_header(signature),
    }
