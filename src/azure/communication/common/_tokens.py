"""User access tokens: JWT decoding, input normalisation and the immutable token snapshot.

Everything here is pure: the current time is an argument. The credential shells, the CLI
(``acs-common token inspect``) and the benchmarks share these functions, so a token is parsed one way
everywhere. Token text never appears in an exception message, a ``repr`` or a log record.
"""

from __future__ import annotations

import binascii
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from azure.core.credentials import AccessToken, AccessTokenInfo

__all__ = [
    "OPAQUE_TOKEN_LIFETIME",
    "ParsedToken",
    "TokenInput",
    "TokenSnapshot",
    "decode_jwt_header",
    "decode_jwt_payload",
    "normalize_token",
    "parse_jwt_expiry",
]

_LOGGER = logging.getLogger("azure.communication.common")

#: What a caller may pass as a token or return from a token refresher.
TokenInput = str | AccessToken | AccessTokenInfo

#: Lifetime assumed for a token whose expiry cannot be read (not a JWT, or no numeric ``exp``): the
#: proactive window, so such a token is refreshed soon rather than trusted for long.
OPAQUE_TOKEN_LIFETIME: Final = 600.0

_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
_PADDING: Final = (b"", b"=", b"==", b"===")
_NOT_A_JWT: Final = "not a JWT: expected three dot-separated base64url segments with a JSON object"

# The opaque-token notice is logged once per process: every refresh of an opaque token would repeat it.
_opaque_warned = False


def _segment_bytes(segment: str, what: str) -> bytes:
    unpadded = segment.rstrip("=")
    size = len(unpadded)
    if size % 4 == 1 or len(segment) - size > 2:
        raise ValueError(f"{_NOT_A_JWT} (the {what} has an impossible base64url length)")
    if "+" in unpadded or "/" in unpadded:
        raise ValueError(f"{_NOT_A_JWT} (the {what} holds characters outside base64url)")
    try:
        # urlsafe_b64decode without its wrapper layers: this runs for every token a refresher returns.
        raw = binascii.a2b_base64(unpadded.encode("ascii").translate(_FROM_URLSAFE) + _PADDING[-size % 4])
    except ValueError:  # binascii.Error, or non-ASCII text
        raw = b""
    # The decoder skips characters outside the alphabet instead of failing; each one skipped makes the
    # result shorter than the length of the text implies, which is cheaper to check than a pattern.
    if len(raw) != size * 3 // 4:
        raise ValueError(f"{_NOT_A_JWT} (the {what} holds characters outside base64url)")
    return raw


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        # Not chained: the decoder errors can carry fragments of the token.
        raise ValueError(f"{_NOT_A_JWT} (the {what} is not base64url-encoded JSON)") from None
    except RecursionError:
        # JSON nested deep enough to exhaust the decoder: no real token looks like that, and letting
        # RecursionError escape would turn a bad token into a crash (or a hung refresh) instead of a
        # "not a JWT" (an opaque token where one is accepted).
        raise ValueError(f"{_NOT_A_JWT} (the {what} is JSON nested too deeply)") from None
    if not isinstance(value, dict):
        raise ValueError(f"{_NOT_A_JWT} (the {what} is JSON but not an object)")
    return value


def _decode_segment(segment: str, what: str) -> dict[str, Any]:
    return _json_object(_segment_bytes(segment, what), what)


def _segments(token: str) -> list[str]:
    if not isinstance(token, str):
        raise TypeError(f"a JWT must be a str, not {type(token).__name__}")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ValueError(f"{_NOT_A_JWT} (found {len(parts)} segments)")
    return parts


def _payload_segment(token: str) -> str:
    # The payload alone, without copying the (larger) signature: reading `exp` is on the refresh path.
    first = token.find(".")
    second = token.find(".", first + 1)
    if first < 0 or second < 0 or token.find(".", second + 1) >= 0 or token[:1].isspace():
        return _segments(token)[1]
    return token[first + 1 : second]


def decode_jwt_payload(token: str) -> dict[str, Any]:
    """Decode the claims of a JWT without verifying its signature.

    Args:
        token: A compact JWT (``header.payload.signature``); base64url with or without padding.

    Returns:
        The payload's JSON object.

    Raises:
        TypeError: ``token`` is not a str.
        ValueError: ``token`` is not a JWT (the message never quotes the token).
    """
    return _decode_segment(_segments(token)[1], "payload")


def decode_jwt_header(token: str) -> dict[str, Any]:
    """Decode the header (``alg``, ``kid``, ...) of a JWT without verifying its signature.

    Raises:
        TypeError: ``token`` is not a str.
        ValueError: ``token`` is not a JWT (the message never quotes the token).
    """
    return _decode_segment(_segments(token)[0], "header")


def _numeric_exp(claims: Mapping[str, Any]) -> float | None:
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    try:
        value = float(exp)
    except OverflowError:  # an integer beyond float range
        return None
    return value if math.isfinite(value) else None


# Reads `exp` from a flat payload without building the claims dict (the JSON parse is most of the cost
# of reading a token). Taken only when the payload has a single `{` (no nested object can hold another
# `exp`) and a single `"exp"` not preceded by a backslash (so it cannot sit inside a string); for valid
# JSON the result is then the one json.loads gives. Anything else goes through json.loads.
_FLAT_EXP_VALUE = re.compile(
    rb"[ \t\r\n]*:[ \t\r\n]*(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)[ \t\r\n]*[,}]"
)


def _flat_exp(raw: bytes) -> tuple[bool, float | None]:
    """``(True, exp)`` when the fast path applies, ``(False, None)`` when json.loads must decide."""
    at = raw.find(b'"exp"')
    if (
        at <= 0
        or raw[at - 1] == 0x5C  # a backslash: the quote is inside a string
        or raw.find(b'"exp"', at + 5) != -1
        or raw[:1] != b"{"
        or raw[-1:] != b"}"
        or raw.find(b"{", 1) != -1
    ):
        return False, None
    match = _FLAT_EXP_VALUE.match(raw, at + 5)
    if match is None:
        return False, None
    value = float(match.group(1))
    return True, (value if math.isfinite(value) else None)


def _payload_exp(token: str) -> float | None:
    if not isinstance(token, str):
        raise TypeError(f"a JWT must be a str, not {type(token).__name__}")
    raw = _segment_bytes(_payload_segment(token), "payload")
    applies, exp = _flat_exp(raw)
    if applies:
        return exp
    return _numeric_exp(_json_object(raw, "payload"))


def parse_jwt_expiry(token: str) -> float:
    """Return the ``exp`` claim of a JWT as a float (fractional values are kept).

    Raises:
        TypeError: ``token`` is not a str.
        ValueError: ``token`` is not a JWT, or it has no numeric ``exp`` claim.
    """
    exp = _payload_exp(token)
    if exp is None:
        raise ValueError("the JWT has no numeric 'exp' claim")
    return exp


def _expiry_or_none(token: str) -> float | None:
    try:
        return _payload_exp(token)
    except ValueError:
        return None


class _HiddenAccessToken(AccessToken):
    """azure-core's ``AccessToken`` whose ``repr`` (and so ``str``) hides the token text."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"AccessToken(token=<hidden, {len(self.token)} chars>, expires_on={self.expires_on})"


class _HiddenAccessTokenInfo(AccessTokenInfo):
    """azure-core's ``AccessTokenInfo`` whose ``repr`` hides the token text (azure-core's prints it)."""

    def __repr__(self) -> str:
        return (
            f"AccessTokenInfo(token=<hidden, {len(self.token)} chars>, expires_on={self.expires_on}, "
            f"token_type={self.token_type!r}, refresh_on={self.refresh_on})"
        )


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A validated token input: the text, its expiry and the refresh time the supplier asked for (if any)."""

    token: str = field(repr=False)
    expires_on: float
    refresh_on: float | None = None


def _type_error(value: object, source: str) -> TypeError:
    kind = type(value).__name__
    expected = f"{source} must be a token string, an AccessToken or an AccessTokenInfo, not {kind}"
    if isinstance(value, tuple) and len(value) >= 2 and isinstance(value[1], AccessToken):
        hint = (
            "this looks like the (user, AccessToken) result of "
            "CommunicationIdentityClient.create_user_and_token(); pass result[1].token"
        )
    elif isinstance(value, Mapping) and "token" in value:
        hint = 'this looks like a token response; pass only its "token" field (the bare token string)'
    elif isinstance(getattr(value, "token", None), str):
        hint = "pass only its token field (value.token, the bare token string), not the whole response"
    elif isinstance(value, (bytes, bytearray)):
        hint = "decode the bytes to str first"
    else:
        hint = "pass the bare token string"
    return TypeError(f"{expected}; {hint}.")


def _check_text(token: object, source: str) -> str:
    if not isinstance(token, str):
        raise TypeError(f"the token of the {source} must be a str, not {type(token).__name__}.")
    stripped = token.strip()
    if not stripped:
        raise ValueError(f"{source} must not be empty or whitespace.")
    # A token read from a file often ends in a newline, which is never part of a token.
    return stripped


def _check_time(value: object, what: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"the {what} of the {source} must be a number, not {type(value).__name__}.")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        raise ValueError(f"the {what} of the {source} must be a number within float range.") from None
    if math.isnan(number):
        raise ValueError(f"the {what} of the {source} must be a number, not NaN.")
    return number


def _opaque_expiry(now: float) -> float:
    global _opaque_warned
    if not _opaque_warned:
        _opaque_warned = True
        _LOGGER.warning(
            "A token without a readable JWT 'exp' claim is treated as opaque and assumed valid for %d seconds.",
            OPAQUE_TOKEN_LIFETIME,
        )
    return now + OPAQUE_TOKEN_LIFETIME


def normalize_token(value: object, now: float, *, source: str = "token") -> ParsedToken:
    """Turn a caller's token (``str``, ``AccessToken`` or ``AccessTokenInfo``) into a :class:`ParsedToken`.

    A string's expiry is its JWT ``exp`` claim; a string without one is opaque and assumed valid for
    :data:`OPAQUE_TOKEN_LIFETIME` seconds from ``now`` (logged once per process).

    Args:
        value: The token as given.
        now: The current time (seconds since the epoch); only used for opaque tokens.
        source: How error messages name the value (``"token"``, ``"the token_refresher result"``).

    Raises:
        TypeError: ``value`` is of another type; the message says to pass the bare token string and,
            for the usual mistakes (a whole identity response), which field to pass.
        ValueError: The token is empty or whitespace, or its expiry is NaN.
    """
    if isinstance(value, str):
        token = _check_text(value, source)
        exp = _expiry_or_none(token)
        return ParsedToken(token, _opaque_expiry(now) if exp is None else exp)
    # AccessToken before tuple: it is a tuple, and the (user, AccessToken) tuple is a different mistake.
    if isinstance(value, AccessToken):
        token = _check_text(value.token, source)
        return ParsedToken(token, _check_time(value.expires_on, "expires_on", source))
    if isinstance(value, AccessTokenInfo):
        token = _check_text(value.token, source)
        expires_on = _check_time(value.expires_on, "expires_on", source)
        refresh_on = value.refresh_on
        hint = None if refresh_on is None else _check_time(refresh_on, "refresh_on", source)
        return ParsedToken(token, expires_on, hint)
    raise _type_error(value, source)


def _public_time(value: float) -> int:
    return math.floor(value) if math.isfinite(value) else 0


@dataclass(frozen=True, slots=True, eq=False)
class TokenSnapshot:
    """One immutable view of the cached token, swapped whole on every refresh.

    ``refresh_on`` is when the token stops being fresh (``+inf`` for a static credential, ``-inf`` when
    there is no token yet or the credential is closed). The public azure-core objects are built once
    here, so the hot path returns them without allocating.
    """

    token: str = field(repr=False)
    expires_on: float
    refresh_on: float
    access_token: AccessToken = field(repr=False)
    access_token_info: AccessTokenInfo = field(repr=False)

    @classmethod
    def build(cls, token: str, expires_on: float, refresh_on: float) -> TokenSnapshot:
        """Build a snapshot and its public token objects (times exposed as whole seconds, rounded down)."""
        public_expiry = _public_time(expires_on)
        public_refresh = math.floor(refresh_on) if math.isfinite(refresh_on) else None
        return cls(
            token,
            expires_on,
            refresh_on,
            _HiddenAccessToken(token, public_expiry),
            _HiddenAccessTokenInfo(token, public_expiry, refresh_on=public_refresh),
        )

    @classmethod
    def empty(cls) -> TokenSnapshot:
        """A snapshot with no token: never fresh, always expired (so every call takes the slow path)."""
        return cls.build("", -math.inf, -math.inf)

    def never_fresh(self) -> TokenSnapshot:
        """The same token and public objects with ``refresh_on`` at minus infinity.

        Published instead of the real snapshot while a shell must see the next call on its slow path (an
        asyncio credential not yet bound to a running loop), without adding work to the fresh path.
        """
        return TokenSnapshot(self.token, self.expires_on, -math.inf, self.access_token, self.access_token_info)

    def with_refresh_on(self, refresh_on: float) -> TokenSnapshot:
        """The same token with another refresh time (e.g. the end of a retry gap)."""
        return TokenSnapshot.build(self.token, self.expires_on, refresh_on)
