"""The one JWT reader of the package: the credential, ``acs-common token inspect`` and the emulator use it.

A token is read, never verified: the credential only needs its ``exp`` claim, the CLI shows its claims. The
rules are strict so that every caller reaches the same verdict on the same text, whatever the payload's shape:

- three dot-separated segments (``header.payload.signature``; the signature may be empty);
- the payload is base64url (``-`` and ``_``; padding optional, and when present, correct) of strict UTF-8
  (no BOM, so no UTF-16 or UTF-32) holding strict JSON (RFC 8259: no trailing commas, no ``NaN`` or
  ``Infinity``), and that JSON is an object;
- the expiry is the payload's ``exp`` when it is a finite number (``bool`` is not a number), else there is none.

The verdict depends on the payload alone, as in the JavaScript SDK (whose ``jwt-decode`` reads only the
payload): the header is decoded by the same rules when it is asked for, and :func:`read_jwt` reports an
undecodable header as missing rather than failing the token.

Standard library only: ``acs-common token inspect`` imports this module without loading azure-core. Messages
never quote the token, and decoder errors (which can hold fragments of it) are never chained.
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any, Final, NoReturn

__all__ = [
    "NOT_A_JWT",
    "JwtParts",
    "decode_jwt_header",
    "decode_jwt_payload",
    "jwt_expiry",
    "numeric_exp",
    "parse_jwt_expiry",
    "read_jwt",
]

NOT_A_JWT: Final = "not a JWT: expected three dot-separated base64url segments with a JSON object"

_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
_PADDING: Final = (b"", b"=", b"==", b"===")


class JwtParts:
    """A decoded JWT: its header (None when undecodable), its claims and the expiry (None: no numeric ``exp``).

    A plain slotted class rather than a ``NamedTuple``: building a ``NamedTuple`` class costs about 0.1 ms
    at import. Unpacks like one (``header, claims, expires_on = read_jwt(token)``).
    """

    __slots__ = ("claims", "expires_on", "header")

    def __init__(self, header: dict[str, Any] | None, claims: dict[str, Any], expires_on: float | None) -> None:
        self.header = header
        self.claims = claims
        self.expires_on = expires_on

    def __iter__(self) -> Iterator[Any]:
        return iter((self.header, self.claims, self.expires_on))

    def __repr__(self) -> str:
        # Claims are not secret, but a repr that lands in a log should not carry a whole token's payload.
        return f"JwtParts(expires_on={self.expires_on!r})"


def _refuse_constant(name: str) -> NoReturn:
    # json.loads accepts NaN, Infinity and -Infinity by default; RFC 8259 does not.
    raise ValueError(f"{name} is not JSON")


# One decoder, built once: json.loads(text, parse_constant=...) would build a new decoder on every call.
_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def _loads(text: str) -> Any:
    # raw_decode skips decode()'s two whitespace scans, which a token's JSON never needs; text it does not
    # consume whole (surrounding whitespace, or not JSON) goes through decode(), which decides.
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:
        return _DECODER.decode(text)
    return value if end == len(text) else _DECODER.decode(text)


def _segment_bytes(segment: str, what: str) -> bytes:
    unpadded = segment.rstrip("=")
    size = len(unpadded)
    padding = len(segment) - size
    if size % 4 == 1 or (padding and (size + padding) % 4):
        raise ValueError(f"{NOT_A_JWT} (the {what} has an impossible base64url length)")
    if "+" in unpadded or "/" in unpadded:
        raise ValueError(f"{NOT_A_JWT} (the {what} holds characters outside base64url)")
    try:
        # urlsafe_b64decode without its wrapper layers: this runs for every token a refresher returns.
        raw = binascii.a2b_base64(unpadded.encode("ascii").translate(_FROM_URLSAFE) + _PADDING[-size % 4])
    except ValueError:  # binascii.Error, or non-ASCII text
        raw = b""
    # The decoder skips characters outside the alphabet instead of failing; each one skipped makes the
    # result shorter than the length of the text implies, which is cheaper to check than a pattern.
    if len(raw) != size * 3 // 4:
        raise ValueError(f"{NOT_A_JWT} (the {what} holds characters outside base64url)")
    return raw


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    problem = None
    try:
        # Decoded here, not by json.loads: given bytes, it guesses UTF-16 and UTF-32 and skips a BOM.
        value = _loads(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        problem = "is not base64url-encoded UTF-8 JSON"
    except RecursionError:
        # JSON nested deep enough to exhaust the decoder: no real token looks like that, and letting
        # RecursionError escape would turn a bad token into a crash instead of an undecodable token.
        problem = "is JSON nested too deeply"
    # Raised outside the except blocks, so nothing is chained: the decoder's errors hold the decoded text
    # (.doc, .object), fragments of the token.
    if problem is not None:
        raise ValueError(f"{NOT_A_JWT} (the {what} {problem})")
    if not isinstance(value, dict):
        raise ValueError(f"{NOT_A_JWT} (the {what} is JSON but not an object)")
    return value


def _segments(token: str) -> list[str]:
    if not isinstance(token, str):
        raise TypeError(f"a JWT must be a str, not {type(token).__name__}")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ValueError(f"{NOT_A_JWT} (found {len(parts)} segments)")
    return parts


def _payload_segment(token: str) -> str:
    # The payload alone, without copying the (larger) signature: reading `exp` is on the refresh path.
    if not isinstance(token, str):
        raise TypeError(f"a JWT must be a str, not {type(token).__name__}")
    first = token.find(".")
    second = token.find(".", first + 1)
    if first < 0 or second < 0 or token.find(".", second + 1) >= 0 or token[:1].isspace() or token[-1:].isspace():
        return _segments(token)[1]
    return token[first + 1 : second]


def _claims(token: str) -> dict[str, Any]:
    return _json_object(_segment_bytes(_payload_segment(token), "payload"), "payload")


def numeric_exp(claims: Mapping[str, Any]) -> float | None:
    """The ``exp`` claim as a float when it is a finite number (not a bool), else None."""
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    try:
        value = float(exp)
    except OverflowError:  # an integer beyond float range
        return None
    return value if math.isfinite(value) else None


def read_jwt(token: str) -> JwtParts:
    """Decode a JWT's claims (and header) without verifying its signature, and read its expiry.

    Args:
        token: A compact JWT (``header.payload.signature``); surrounding whitespace is ignored.

    Returns:
        The header (None when it is not base64url JSON: the verdict does not depend on it), the claims, and
        ``exp`` as a float (None when it is missing or not a finite number).

    Raises:
        TypeError: ``token`` is not a str.
        ValueError: ``token`` is not a JWT by the rules of this module (the message never quotes it).
    """
    header, payload, _ = _segments(token)
    claims = _json_object(_segment_bytes(payload, "payload"), "payload")
    try:
        decoded_header: dict[str, Any] | None = _json_object(_segment_bytes(header, "header"), "header")
    except ValueError:
        decoded_header = None
    return JwtParts(decoded_header, claims, numeric_exp(claims))


def decode_jwt_payload(token: str) -> dict[str, Any]:
    """Decode the claims of a JWT (this module's rules) without verifying its signature.

    Raises:
        TypeError: ``token`` is not a str.
        ValueError: ``token`` is not a JWT (the message never quotes the token).
    """
    return _claims(token)


def decode_jwt_header(token: str) -> dict[str, Any]:
    """Decode the header (``alg``, ``kid``, ...) of a JWT by the payload's rules, strictly.

    Raises:
        TypeError: ``token`` is not a str.
        ValueError: ``token`` does not have three segments, or its header is not base64url JSON (the message
            never quotes the token).
    """
    return _json_object(_segment_bytes(_segments(token)[0], "header"), "header")


def parse_jwt_expiry(token: str) -> float:
    """Return the ``exp`` claim of a JWT as a float (fractional values are kept).

    Raises:
        TypeError: ``token`` is not a str.
        ValueError: ``token`` is not a JWT, or it has no finite numeric ``exp`` claim.
    """
    exp = numeric_exp(_claims(token))
    if exp is None:
        raise ValueError("the JWT has no numeric 'exp' claim")
    return exp


def jwt_expiry(token: str) -> float | None:
    """The expiry of a JWT, or None when the token is undecodable (the credential's opaque tokens).

    Raises:
        TypeError: ``token`` is not a str.
    """
    try:
        claims = _claims(token)
    except ValueError:
        return None
    return numeric_exp(claims)
