"""User access tokens: input normalisation and the immutable token snapshot.

Everything here is pure: the current time is an argument. JWTs are read by :mod:`._jwt`, the package's one
reader, shared with the CLI (``acs-common token inspect``) and the emulator, so a token is parsed one way
everywhere. Token text never appears in an exception message, a ``repr`` or a log record.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from azure.core.credentials import AccessToken, AccessTokenInfo

from ._jwt import decode_jwt_header, decode_jwt_payload, jwt_expiry, parse_jwt_expiry

__all__ = [
    "NEVER_EXPIRES_PUBLIC",
    "OPAQUE_TOKEN_LIFETIME",
    "ParsedToken",
    "TokenInput",
    "TokenSnapshot",
    "check_undecodable_interval",
    "decode_jwt_header",
    "decode_jwt_payload",
    "normalize_token",
    "parse_jwt_expiry",
]

_LOGGER = logging.getLogger("azure.communication.common")

#: What a caller may pass as a token or return from a token refresher.
TokenInput = str | AccessToken | AccessTokenInfo

#: Lifetime assumed for a token whose expiry cannot be read (not a JWT, or no numeric ``exp``): the
#: proactive window, so such a token is refreshed soon rather than trusted for long. JS 2.5.0 calls it
#: ``undecodableTokenExpiryIntervalInSeconds`` and has the same default; the credential's
#: ``undecodable_token_expiry_interval`` keyword replaces it.
OPAQUE_TOKEN_LIFETIME: Final = 600.0

# The opaque-token notice is logged once per process: every refresh of an opaque token would repeat it.
_opaque_warned = False

#: What ``expires_on`` and ``refresh_on`` of the public token objects say for a token that never expires
#: (``expires_on=inf``): 9999-12-31T23:59:59Z, the last second a ``datetime`` can hold. Publishing 0 would
#: make azure-core's bearer policy think the token expired and call the credential on every request.
NEVER_EXPIRES_PUBLIC: Final = 253_402_300_799

# Mistaken token strings: a prefix test and a first-character test, cheap enough for every token.
_ISO_EXAMPLE: Final = "'2026-12-02T20:16:31.0000000Z'"


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


class _Frozen:
    """Base of the immutable, slotted values below (what ``@dataclass(frozen=True, slots=True)`` would give).

    Written by hand: building a frozen slotted dataclass costs about a millisecond at import, a noticeable
    part of the package's import time next to azure-core's.
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is immutable")


class ParsedToken(_Frozen):
    """A validated token input: the text, its expiry and the refresh time the supplier asked for (if any)."""

    __slots__ = ("expires_on", "refresh_on", "token")

    token: str
    expires_on: float
    refresh_on: float | None

    def __init__(self, token: str, expires_on: float, refresh_on: float | None = None) -> None:
        init = object.__setattr__
        init(self, "token", token)
        init(self, "expires_on", expires_on)
        init(self, "refresh_on", refresh_on)

    def __repr__(self) -> str:
        return f"ParsedToken(expires_on={self.expires_on!r}, refresh_on={self.refresh_on!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParsedToken):
            return NotImplemented
        return (self.token, self.expires_on, self.refresh_on) == (other.token, other.expires_on, other.refresh_on)

    def __hash__(self) -> int:
        return hash((self.token, self.expires_on, self.refresh_on))


def _of(source: str) -> str:
    # Sources are written with their article ("the token_refresher result") or without one ("token").
    return source if source.startswith("the ") else f"the {source}"


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
        raise TypeError(f"the token of {_of(source)} must be a str, not {type(token).__name__}.")
    stripped = token.strip()
    if not stripped:
        raise ValueError(f"{source} must not be empty or whitespace.")
    # A token read from a file often ends in a newline, which is never part of a token.
    return stripped


def _is_identity_response(document: object) -> bool:
    if not isinstance(document, dict):
        return False
    if isinstance(document.get("token"), str):
        return True
    inner = document.get("accessToken")
    # {"accessToken": "..."} (JS results), or the REST response {"accessToken": {"token": ..., "expiresOn": ...}}.
    return isinstance(inner, str) or (isinstance(inner, dict) and isinstance(inner.get("token"), str))


def _refuse_mistakes(token: str, source: str) -> None:
    """Refuse the usual wrong pastes, which would otherwise pass as tokens and fail at the service."""
    if token[:6].lower() == "bearer" and token[6:7].isspace():
        raise ValueError(
            f"{source} starts with 'Bearer ', the HTTP Authorization scheme: pass the bare token string "
            "without the prefix."
        )
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        # Copied with the quotes of the JSON or shell text it came from; a JWT's payload would still read.
        raise ValueError(f"{source} is wrapped in quotes: pass the bare token string without them.")
    if token.startswith("{"):
        try:
            document = json.loads(token)
        except (ValueError, RecursionError):
            return
        if _is_identity_response(document):
            raise ValueError(
                f"{source} is the JSON text of a whole identity response: pass only its token field, the bare "
                'token string (response["accessToken"]["token"] of the REST response, or token.token of the '
                "identity client's AccessToken)."
            )


def _to_seconds(value: object, what: str, source: str) -> float:
    """A time given as a number, an ACS/ISO 8601 timestamp string or an aware datetime, in epoch seconds."""
    if isinstance(value, str):
        # Imported here: only the official clients' string expiries need it, and every import would pay for it.
        from ._timestamps import parse_timestamp

        try:
            return parse_timestamp(value.strip())
        except ValueError:
            pass
        # Raised outside the except block and without quoting the value (the parser's error quotes it): a
        # mistaken value here could be anything, a token included.
        raise ValueError(
            f"the {what} of {_of(source)} is a str that is not an ISO 8601 timestamp such as {_ISO_EXAMPLE} "
            "('Z' or a '+HH:MM' offset)."
        )
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"the {what} of {_of(source)} is a naive datetime: it must be timezone-aware "
                "(e.g. datetime.now(timezone.utc)), so that it names one instant."
            )
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"the {what} of {_of(source)} must be a number (seconds since the epoch), an ISO 8601 timestamp "
            f"string or an aware datetime, not {type(value).__name__}."
        )
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        raise ValueError(f"the {what} of {_of(source)} must be a number within float range.") from None
    if math.isnan(number):
        raise ValueError(f"the {what} of {_of(source)} must be a number, not NaN.")
    return number


def check_undecodable_interval(value: object, what: str = "undecodable_token_expiry_interval") -> float:
    """Validate the assumed lifetime of undecodable tokens: a positive, finite number of seconds.

    Raises:
        TypeError: ``value`` is not a number (``bool`` included).
        ValueError: ``value`` is not positive and finite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}.")
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{what} must be a positive, finite number of seconds, got {value!r}.")
    return seconds


def _opaque_expiry(now: float, lifetime: float) -> float:
    global _opaque_warned
    if not _opaque_warned:
        _opaque_warned = True
        _LOGGER.warning(
            "A token without a readable JWT 'exp' claim is treated as opaque and assumed valid for %g seconds.",
            lifetime,
        )
    return now + lifetime


def _text_expiry(token: str, now: float, source: str, lifetime: float) -> float:
    # Before decoding: "Bearer eyJ..." and '{"accessToken": "eyJ..."}' still hold a readable payload segment.
    _refuse_mistakes(token, source)
    exp = jwt_expiry(token)
    return _opaque_expiry(now, lifetime) if exp is None else exp


def normalize_token(
    value: object,
    now: float,
    *,
    source: str = "token",
    undecodable_lifetime: float = OPAQUE_TOKEN_LIFETIME,
) -> ParsedToken:
    """Turn a caller's token (``str``, ``AccessToken`` or ``AccessTokenInfo``) into a :class:`ParsedToken`.

    A string's expiry is its JWT ``exp`` claim; a string without one is opaque and assumed valid for
    ``undecodable_lifetime`` seconds from ``now`` (logged once per process). An ``AccessToken`` or
    ``AccessTokenInfo`` carries its own ``expires_on`` (and ``refresh_on``): a number of seconds since the
    epoch, an ISO 8601 string as the official identity client returns (``"2026-12-02T20:16:31.0000000Z"``)
    or an aware ``datetime``. ``inf`` means "never expires".

    Args:
        value: The token as given.
        now: The current time (seconds since the epoch); only used for opaque tokens.
        source: How error messages name the value (``"token"``, ``"the token_refresher result"``).
        undecodable_lifetime: Seconds an opaque token is assumed valid (JS 2.5.0's
            ``undecodableTokenExpiryIntervalInSeconds``); checked by the credential, see
            :func:`check_undecodable_interval`.

    Raises:
        TypeError: ``value`` is of another type; the message says to pass the bare token string and,
            for the usual mistakes (a whole identity response), which field to pass.
        ValueError: The token is empty or whitespace, carries a ``Bearer`` prefix, is the JSON text of an
            identity response, or its expiry is NaN, a naive datetime or a string that is not a timestamp.
    """
    if isinstance(value, str):
        token = _check_text(value, source)
        return ParsedToken(token, _text_expiry(token, now, source, undecodable_lifetime))
    # AccessToken before tuple: it is a tuple, and the (user, AccessToken) tuple is a different mistake.
    if isinstance(value, AccessToken):
        token = _check_text(value.token, source)
        expires_on = _to_seconds(value.expires_on, "expires_on", source)
        _refuse_mistakes(token, source)
        return ParsedToken(token, expires_on)
    if isinstance(value, AccessTokenInfo):
        token = _check_text(value.token, source)
        expires_on = _to_seconds(value.expires_on, "expires_on", source)
        refresh_on = value.refresh_on
        hint = None if refresh_on is None else _to_seconds(refresh_on, "refresh_on", source)
        _refuse_mistakes(token, source)
        return ParsedToken(token, expires_on, hint)
    raise _type_error(value, source)


def _public_time(value: float) -> int:
    if value == math.inf:
        return NEVER_EXPIRES_PUBLIC
    return math.floor(value) if math.isfinite(value) else 0


class TokenSnapshot(_Frozen):
    """One immutable view of the cached token, swapped whole on every refresh (compared by identity).

    ``refresh_on`` is when the token stops being fresh (``+inf`` for a static credential, ``-inf`` when
    there is no token yet or the credential is closed). The public azure-core objects are built once
    here, so the hot path returns them without allocating.
    """

    __slots__ = ("access_token", "access_token_info", "expires_on", "refresh_on", "token")

    token: str
    expires_on: float
    refresh_on: float
    access_token: AccessToken
    access_token_info: AccessTokenInfo

    def __init__(
        self,
        token: str,
        expires_on: float,
        refresh_on: float,
        access_token: AccessToken,
        access_token_info: AccessTokenInfo,
    ) -> None:
        init = object.__setattr__
        init(self, "token", token)
        # Floats always: the hot path compares ``refresh_on`` with ``time.time()``, and CPython specialises
        # only a float-float comparison (an int here costs the fresh path about a third of its time).
        init(self, "expires_on", float(expires_on))
        init(self, "refresh_on", float(refresh_on))
        init(self, "access_token", access_token)
        init(self, "access_token_info", access_token_info)

    def __repr__(self) -> str:
        return f"TokenSnapshot(expires_on={self.expires_on!r}, refresh_on={self.refresh_on!r})"

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
