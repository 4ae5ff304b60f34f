"""Pure request validation: api-versions, JSON bodies, scopes, lifetimes, identity ids, exchange tokens.

Every function raises :class:`ApiError` (400, or 401 for unusable exchange tokens) with a message that
names the rule that was broken; none of them touches the network, the clock or the database.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from azure.communication.common._tokens import decode_jwt_header, decode_jwt_payload

from ._errors import ApiError

__all__ = [
    "API_VERSIONS",
    "DEFAULT_LIFETIME",
    "EXCHANGE_API_VERSIONS",
    "SCOPES",
    "CreateRequest",
    "IssueRequest",
    "TeamsExchangeRequest",
    "check_api_version",
    "check_identity_id",
    "parse_bearer",
    "parse_create_request",
    "parse_issue_request",
    "parse_json_object",
    "parse_teams_exchange",
    "required_claim",
    "token_expiry",
    "unverified_claims",
]

#: Every Identity api-version the service has published (the official Python client 1.5.0 sends
#: 2023-10-01; custom ids and GET /identities/{id} came with 2025-03-02-preview).
API_VERSIONS: Final = frozenset(
    {
        "2021-03-07",
        "2021-10-31-preview",
        "2021-11-01",
        "2022-06-01",
        "2022-10-01",
        "2023-08-01",
        "2023-10-01",
        "2025-03-02-preview",
        "2025-06-30",
    }
)

#: The Entra exchange endpoints exist from 2025-03-02-preview on (teamsExtension went GA in 2025-06-30).
EXCHANGE_API_VERSIONS: Final = frozenset({"2025-03-02-preview", "2025-06-30"})

#: The token scopes the service accepts.
SCOPES: Final = frozenset({"chat", "voip", "chat.join", "chat.join.limited", "voip.join"})

#: The service's bounds for ``expiresInMinutes`` (1 to 24 hours); 24 hours is also the default.
MIN_MINUTES: Final = 60
MAX_MINUTES: Final = 1440
DEFAULT_LIFETIME: Final = MAX_MINUTES * 60

#: Ids longer than this cannot be the emulator's own (ours are about 80 characters).
MAX_ID_LENGTH: Final = 512


@dataclass(frozen=True)
class CreateRequest:
    """A validated ``POST /identities`` body."""

    scopes: tuple[str, ...]
    lifetime: int
    custom_id: str | None


@dataclass(frozen=True)
class IssueRequest:
    """A validated ``:issueAccessToken`` body."""

    scopes: tuple[str, ...]
    lifetime: int


@dataclass(frozen=True)
class TeamsExchangeRequest:
    """A validated ``/teamsUser/:exchangeAccessToken`` body (the token is a secret: kept out of repr)."""

    token: str
    app_id: str
    user_id: str

    def __repr__(self) -> str:
        return f"TeamsExchangeRequest(app_id={self.app_id!r}, user_id={self.user_id!r})"


def check_api_version(values: Sequence[str], allowed: frozenset[str] = API_VERSIONS) -> str:
    """Return the single ``api-version`` query value, raising a 400 when it is missing or unknown."""
    if not values:
        raise ApiError.bad_request("The api-version query parameter is required.", code="MissingApiVersionParameter")
    if len(values) > 1:
        raise ApiError.bad_request(
            "The api-version query parameter must be given once.", code="InvalidApiVersionParameter"
        )
    version = values[0]
    if version not in allowed:
        supported = ", ".join(sorted(allowed))
        raise ApiError.bad_request(
            f"Unsupported api-version (length {len(version)}); supported versions: {supported}.",
            code="UnsupportedApiVersion",
        )
    return version


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def parse_json_object(body: bytes, *, allow_empty: bool) -> dict[str, Any]:
    """Parse a request body that must be a JSON object.

    Args:
        body: the received bytes.
        allow_empty: when True an empty body means ``{}`` (the official client sends none for create).

    Raises:
        ApiError: 400 for an empty body (unless allowed), bytes that are not UTF-8 JSON (including
            NaN/Infinity, UTF-16/32 and nesting deep enough to exhaust the parser), or JSON that is not
            an object.
    """
    if not body.strip():
        if allow_empty:
            return {}
        raise ApiError.bad_request("The request body is required.", code="BadRequest")
    try:
        # Decoded as UTF-8 first: json.loads(bytes) would also accept UTF-16/32, which the service does not.
        value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError, UnicodeDecodeError and over-long integers; RecursionError
        # is what the C scanner raises for deeply nested arrays ("JSON bombs").
        raise ApiError.bad_request("The request body is not valid JSON.", code="BadRequest") from None
    if not isinstance(value, dict):
        raise ApiError.bad_request("The request body must be a JSON object.", code="BadRequest")
    return value


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _parse_scopes(value: object, field: str, *, required: bool) -> tuple[str, ...]:
    if value is None:
        if required:
            raise ApiError.bad_request(f"{field} is required.")
        return ()
    if not isinstance(value, list):
        raise ApiError.bad_request(f"{field} must be an array of strings, not {_type_name(value)}.")
    if required and not value:
        raise ApiError.bad_request(f"{field} must contain at least one scope.")
    scopes: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ApiError.bad_request(f"{field} must contain strings, not {_type_name(item)}.")
        if item not in SCOPES:
            allowed = ", ".join(sorted(SCOPES))
            raise ApiError.bad_request(f"{field} contains an unknown scope (length {len(item)}); allowed: {allowed}.")
        scopes.append(item)
    return tuple(scopes)


def _parse_whole_number(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError.bad_request(f"{field} must be an integer, not {_type_name(value)}.")
    return value


def _parse_lifetime(obj: dict[str, Any], *, allow_short: bool) -> int:
    minutes = obj.get("expiresInMinutes")
    seconds = obj.get("expiresInSeconds")
    if seconds is not None:
        if not allow_short:
            raise ApiError.bad_request(
                "expiresInSeconds is only accepted when the emulator runs with allow_short_tokens "
                "(--allow-short-tokens)."
            )
        if minutes is not None:
            raise ApiError.bad_request("Give expiresInMinutes or expiresInSeconds, not both.")
        seconds = _parse_whole_number(seconds, "expiresInSeconds")
        if not 1 <= seconds <= DEFAULT_LIFETIME:
            raise ApiError.bad_request(f"expiresInSeconds must be between 1 and {DEFAULT_LIFETIME}.")
        return seconds
    if minutes is None:
        return DEFAULT_LIFETIME
    minutes = _parse_whole_number(minutes, "expiresInMinutes")
    low = 1 if allow_short else MIN_MINUTES
    if not low <= minutes <= MAX_MINUTES:
        raise ApiError.bad_request(f"expiresInMinutes must be between {low} and {MAX_MINUTES}.")
    return minutes * 60


def parse_create_request(body: bytes, *, allow_short: bool) -> CreateRequest:
    """Validate a ``POST /identities`` body (empty means: an identity without a token)."""
    obj = parse_json_object(body, allow_empty=True)
    scopes = _parse_scopes(obj.get("createTokenWithScopes"), "createTokenWithScopes", required=False)
    lifetime = _parse_lifetime(obj, allow_short=allow_short)
    custom_id = obj.get("customId")
    if custom_id is not None:
        if not isinstance(custom_id, str):
            raise ApiError.bad_request(f"customId must be a string, not {_type_name(custom_id)}.")
        if not custom_id.strip() or len(custom_id) > MAX_ID_LENGTH:
            raise ApiError.bad_request(f"customId must be a non-blank string of at most {MAX_ID_LENGTH} characters.")
    return CreateRequest(scopes=scopes, lifetime=lifetime, custom_id=custom_id)


def parse_issue_request(body: bytes, *, allow_short: bool) -> IssueRequest:
    """Validate an ``:issueAccessToken`` body (``scopes`` is required and non-empty)."""
    obj = parse_json_object(body, allow_empty=False)
    scopes = _parse_scopes(obj.get("scopes"), "scopes", required=True)
    return IssueRequest(scopes=scopes, lifetime=_parse_lifetime(obj, allow_short=allow_short))


def parse_teams_exchange(body: bytes) -> TeamsExchangeRequest:
    """Validate a ``/teamsUser/:exchangeAccessToken`` body: ``token``, ``appId``, ``userId`` strings."""
    obj = parse_json_object(body, allow_empty=False)
    values: dict[str, str] = {}
    for field in ("token", "appId", "userId"):
        value = obj.get(field)
        if value is None:
            raise ApiError.bad_request(f"{field} is required.")
        if not isinstance(value, str) or not value.strip():
            raise ApiError.bad_request(f"{field} must be a non-empty string.")
        values[field] = value
    return TeamsExchangeRequest(token=values["token"], app_id=values["appId"], user_id=values["userId"])


def check_identity_id(raw: str) -> str:
    """Return ``raw`` when it can be an ACS user id, else raise a 400 (unknown ids are a 404 later)."""
    if (
        not raw.startswith("8:acs:")
        or len(raw) > MAX_ID_LENGTH
        or not raw.isprintable()
        or any(ch in raw for ch in "/\\\"' ")
    ):
        raise ApiError.bad_request(
            f"The identity id is not a Communication user id (length {len(raw)}).",
            code="InvalidIdentifier",
        )
    return raw


def unverified_claims(token: str, what: str) -> dict[str, Any]:
    """Decode a JWT's claims *without* verifying its signature (a documented emulator limitation).

    The library's own decoder reads them, so the emulator accepts exactly the tokens the library can read:
    three base64url segments (padding optional) whose header and payload are JSON objects.

    Raises:
        ApiError: 401 ``InvalidAccessToken`` when the token is not a JWT with JSON object header and payload.
    """
    try:
        decode_jwt_header(token)
        return decode_jwt_payload(token)
    except (ValueError, TypeError, RecursionError):  # RecursionError: JSON nested deep enough to exhaust the parser
        raise ApiError.invalid_token(f"The {what} token is not a valid JWT.") from None


def token_expiry(claims: dict[str, Any], what: str, now: float) -> float | None:
    """Return the ``exp`` claim of an exchange token, raising a 401 when it is malformed or past.

    An ``exp`` beyond float range is ``inf`` (the caller caps the exchanged token's lifetime anyway).
    """
    exp = claims.get("exp")
    if exp is None:
        return None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise ApiError.invalid_token(f"The {what} token's exp claim is not a number.")
    try:
        expires_at = float(exp)
    except OverflowError:  # an integer beyond float range: as far in the future (or past) as it gets
        expires_at = math.inf if exp > 0 else -math.inf
    if math.isnan(expires_at):
        raise ApiError.invalid_token(f"The {what} token's exp claim is not a number.")
    if expires_at <= now:
        raise ApiError.invalid_token(f"The {what} token has expired.")
    return expires_at


def required_claim(claims: dict[str, Any], name: str, what: str) -> str:
    """Return a non-empty string claim of an exchange token, raising a 401 when it is missing."""
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError.invalid_token(f"The {what} token has no {name} claim.")
    return value


def parse_bearer(header: str | None) -> str:
    """Return the token of an ``Authorization: Bearer <token>`` header, raising a 401 otherwise."""
    if not header:
        raise ApiError.denied("The Authorization header with a Bearer Entra ID token is required.")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError.denied("The Authorization header must be 'Bearer <Entra ID token>'.")
    return token.strip()
