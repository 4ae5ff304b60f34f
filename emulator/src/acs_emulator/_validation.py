"""Pure request validation: JSON bodies, scopes, lifetimes, identity ids, assignments, exchange tokens.

Every function raises :class:`ApiError` with the service's code, message and ``target`` (400
``ValidationError``, or 401 ``InvalidAccessToken`` for unusable exchange tokens); none of them touches the
network, the clock or the database. Exchange tokens are read with PyJWT, signature not verified.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import jwt

from ._errors import ApiError
from ._versions import API_VERSIONS as _VERSION_TABLE

__all__ = [
    "API_VERSIONS",
    "DEFAULT_LIFETIME",
    "MAX_SCOPES",
    "SCOPES",
    "Assignment",
    "CreateRequest",
    "IssueRequest",
    "TeamsExchangeRequest",
    "check_guid_segment",
    "check_identity_id",
    "check_teams_exchange",
    "json_type_name",
    "parse_bearer",
    "parse_create_request",
    "parse_entra_assignment",
    "parse_entra_bulk_update",
    "parse_issue_request",
    "parse_json_object",
    "parse_teams_exchange",
    "parse_teams_extension_assignment",
    "required_claim",
    "token_expiry",
    "unverified_claims",
]

#: Every Identity api-version the emulator serves (see ``_versions`` for the operations of each).
API_VERSIONS: Final = frozenset(_VERSION_TABLE)

#: The token scopes the service accepts.
SCOPES: Final = frozenset({"chat", "voip", "chat.join", "chat.join.limited", "voip.join"})

#: At most this many entries in a scopes array (duplicates included): a bound on token size and work.
MAX_SCOPES: Final = 16

#: The service's bounds for ``expiresInMinutes`` (1 to 24 hours); 24 hours is also the default.
MIN_MINUTES: Final = 60
MAX_MINUTES: Final = 1440
DEFAULT_LIFETIME: Final = MAX_MINUTES * 60

#: Ids longer than this cannot be the emulator's own (ours are about 80 characters).
MAX_ID_LENGTH: Final = 512
#: The service's bound on ``customId``.
MAX_CUSTOM_ID_LENGTH: Final = 256
#: At most this many client ids in one assignment.
MAX_CLIENT_IDS: Final = 64

_TEAMS_EXTENSION_PRINCIPALS: Final = frozenset({"resourceAccount", "user"})
_ENTRA_PRINCIPALS: Final = frozenset({"user", "group", "tenant"})


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


@dataclass(frozen=True)
class Assignment:
    """A validated Teams-extension or Entra assignment body."""

    principal_type: str
    client_ids: tuple[str, ...] | None
    tenant_id: str | None = None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _has_lone_surrogate(value: object) -> str | None:
    """Return the top-level key whose value holds an unpaired surrogate (``""`` for the root), else None."""
    if isinstance(value, str):
        return "" if any("\ud800" <= ch <= "\udfff" for ch in value) else None
    if isinstance(value, list):
        return next(("" for item in value if _has_lone_surrogate(item) is not None), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if _has_lone_surrogate(key) is not None:
                return ""  # a property name is not Unicode text: no target can name it
            if _has_lone_surrogate(item) is not None:
                return str(key)
    return None


def _target(field: str) -> str:
    return field[:1].upper() + field[1:]


def parse_json_object(body: bytes, *, allow_empty: bool) -> dict[str, Any]:
    """Parse a request body that must be a JSON object.

    Args:
        body: the received bytes.
        allow_empty: when True an empty body means ``{}`` (the official client sends none for create).

    Raises:
        ApiError: 400 for an empty body (unless allowed), bytes that are not UTF-8 JSON (including
            NaN/Infinity, UTF-16/32 and nesting deep enough to exhaust the parser), JSON that is not an
            object, or a string holding an unpaired surrogate (``"\\ud800"``: not Unicode text).
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
    # Valid UTF-8 cannot hold a surrogate: only a \uD8xx-\uDFxx escape can, so most bodies skip the walk.
    if b"\\u" in body and b"\\ud" in body.lower():
        key = _has_lone_surrogate(value)
        if key is not None:
            raise ApiError.bad_request(
                f"{_target(key) or 'Body'}: The value contains an unpaired surrogate and is not valid Unicode text.",
                target=_target(key) or None,
            )
    return value


def json_type_name(value: object) -> str:
    """The JSON type of a parsed value, as the service's error texts name it (``string``, ``array``...)."""
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
    target = _target(field)
    if value is None or (required and value == []):
        if required:
            raise ApiError.bad_request(f"{target}: The {target} field is required.", target=target)
        return ()
    if not isinstance(value, list):
        raise ApiError.bad_request(
            f"{target}: The value must be an array of strings, not {json_type_name(value)}.", target=target
        )
    if len(value) > MAX_SCOPES:
        raise ApiError.bad_request(
            f"{target}: At most {MAX_SCOPES} scopes are allowed ({len(value)} were given).", target=target
        )
    scopes: dict[str, None] = {}
    for item in value:
        if not isinstance(item, str):
            raise ApiError.bad_request(
                f"{target}: The value must contain strings, not {json_type_name(item)}.", target=target
            )
        if item not in SCOPES:
            allowed = ", ".join(sorted(SCOPES))
            raise ApiError.bad_request(
                f"{target}: The value contains an unknown scope (length {len(item)}); allowed: {allowed}.",
                target=target,
            )
        scopes[item] = None
    # Duplicates are harmless but pointless: the token lists each scope once.
    return tuple(scopes)


def _parse_whole_number(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        target = _target(field)
        raise ApiError.bad_request(
            f"{target}: The value must be an integer, not {json_type_name(value)}.", target=target
        )
    return value


def _parse_lifetime(obj: dict[str, Any], *, allow_short: bool) -> int:
    minutes = obj.get("expiresInMinutes")
    seconds = obj.get("expiresInSeconds")
    if seconds is not None:
        if not allow_short:
            raise ApiError.bad_request(
                "expiresInSeconds is only accepted when the emulator runs with allow_short_tokens "
                "(--allow-short-tokens).",
                target="ExpiresInSeconds",
            )
        if minutes is not None:
            raise ApiError.bad_request(
                "Give expiresInMinutes or expiresInSeconds, not both.", target="ExpiresInSeconds"
            )
        seconds = _parse_whole_number(seconds, "expiresInSeconds")
        if not 1 <= seconds <= DEFAULT_LIFETIME:
            raise ApiError.bad_request(
                f"ExpiresInSeconds value {seconds} is invalid. Value must be within the [1, {DEFAULT_LIFETIME}] "
                "interval.",
                target="ExpiresInSeconds",
            )
        return seconds
    if minutes is None:
        return DEFAULT_LIFETIME
    minutes = _parse_whole_number(minutes, "expiresInMinutes")
    low = 1 if allow_short else MIN_MINUTES
    if not low <= minutes <= MAX_MINUTES:
        raise ApiError.bad_request(
            f"ExpiresInMinutes value {minutes} is invalid. Value must be within the [{low}, {MAX_MINUTES}] interval.",
            target="ExpiresInMinutes",
        )
    return minutes * 60


def parse_create_request(body: bytes, *, allow_short: bool, custom_ids: bool = True) -> CreateRequest:
    """Validate a ``POST /identities`` body (empty means: an identity without a token).

    Args:
        body: the received bytes.
        allow_short: accept the emulator's short lifetimes.
        custom_ids: the api-version knows ``customId``; when False it is ignored like any unknown property.
    """
    obj = parse_json_object(body, allow_empty=True)
    scopes = _parse_scopes(obj.get("createTokenWithScopes"), "createTokenWithScopes", required=False)
    lifetime = _parse_lifetime(obj, allow_short=allow_short)
    custom_id = obj.get("customId") if custom_ids else None
    if custom_id is not None:
        if not isinstance(custom_id, str):
            raise ApiError.bad_request(
                f"CustomId: The value must be a string, not {json_type_name(custom_id)}.", target="CustomId"
            )
        if not custom_id.strip() or len(custom_id) > MAX_CUSTOM_ID_LENGTH:
            raise ApiError.bad_request(
                f"CustomId: The value must be a non-blank string of at most {MAX_CUSTOM_ID_LENGTH} characters.",
                target="CustomId",
            )
    return CreateRequest(scopes=scopes, lifetime=lifetime, custom_id=custom_id)


def parse_issue_request(body: bytes, *, allow_short: bool) -> IssueRequest:
    """Validate an ``:issueAccessToken`` body (``scopes`` is required and non-empty)."""
    obj = parse_json_object(body, allow_empty=False)
    scopes = _parse_scopes(obj.get("scopes"), "scopes", required=True)
    return IssueRequest(scopes=scopes, lifetime=_parse_lifetime(obj, allow_short=allow_short))


def parse_teams_exchange(body: bytes) -> tuple[dict[str, Any], str]:
    """Parse a ``/teamsUser/:exchangeAccessToken`` body and return it with its token.

    The service checks the token before anything else in the body: a missing, empty or unreadable one
    is a 401 ``InvalidAccessToken``; :func:`check_teams_exchange` then checks ``appId`` and ``userId``.
    """
    obj = parse_json_object(body, allow_empty=True)
    token = obj.get("token")
    if not isinstance(token, str) or not token.strip():
        raise ApiError.invalid_token("The token field is missing or empty.")
    return obj, token


def check_teams_exchange(obj: dict[str, Any], token: str) -> TeamsExchangeRequest:
    """Return the validated exchange request: ``appId`` and ``userId`` must be non-empty strings."""
    values: dict[str, str] = {}
    for field in ("appId", "userId"):
        value = obj.get(field)
        if not isinstance(value, str) or not value.strip():
            name = _target(field)
            raise ApiError.bad_request(f"{name}: The {name} field is required.", target=field)
        values[field] = value
    return TeamsExchangeRequest(token=token, app_id=values["appId"], user_id=values["userId"])


def check_identity_id(raw: str) -> str:
    """Return ``raw`` when it can be an ACS user id, else raise a 400 (unknown ids are a 404 later)."""
    if (
        not raw.startswith("8:acs:")
        or len(raw) > MAX_ID_LENGTH
        or not raw.isprintable()
        or any(ch in raw for ch in "/\\\"' ")
    ):
        raise ApiError.bad_request(
            f"Provided identity id has invalid format (length {len(raw)}).",
            target="id",
        )
    return raw


def check_guid_segment(raw: str, name: str) -> str:
    """Return a path segment that must be a GUID (tenant and object ids), lower case, else raise a 400."""
    try:
        if len(raw) > 64:
            raise ValueError(raw)
        return str(uuid.UUID(raw))
    except ValueError:
        raise ApiError.bad_request(
            f"{_target(name)}: The value is not a GUID (length {len(raw)}).", target=name
        ) from None


def _client_ids(value: object, *, required: bool) -> tuple[str, ...] | None:
    if value is None:
        if required:
            raise ApiError.bad_request("ClientIds: The ClientIds field is required.", target="clientIds")
        return None
    if not isinstance(value, list) or len(value) > MAX_CLIENT_IDS:
        raise ApiError.bad_request(
            f"ClientIds: The value must be an array of at most {MAX_CLIENT_IDS} GUID strings.", target="clientIds"
        )
    ids: dict[str, None] = {}
    for item in value:
        if not isinstance(item, str):
            raise ApiError.bad_request("ClientIds: The value must contain strings.", target="clientIds")
        ids[check_guid_segment(item, "clientIds")] = None
    return tuple(ids)


def _principal(obj: dict[str, Any], allowed: frozenset[str]) -> str:
    value = obj.get("principalType")
    if value is None:
        raise ApiError.bad_request("PrincipalType: The PrincipalType field is required.", target="principalType")
    if not isinstance(value, str) or value not in allowed:
        raise ApiError.bad_request(
            f"PrincipalType: The value must be one of: {', '.join(sorted(allowed))}.", target="principalType"
        )
    return value


def parse_teams_extension_assignment(body: bytes) -> Assignment:
    """Validate a Teams-extension assignment body: ``principalType`` (required) and ``clientIds``."""
    obj = parse_json_object(body, allow_empty=False)
    principal = _principal(obj, _TEAMS_EXTENSION_PRINCIPALS)
    return Assignment(principal, _client_ids(obj.get("clientIds"), required=False))


def _entra_assignment(obj: object) -> Assignment:
    if not isinstance(obj, dict):
        raise ApiError.bad_request("The assignment must be a JSON object.", code="BadRequest")
    principal = _principal(obj, _ENTRA_PRINCIPALS)
    tenant = obj.get("tenantId")
    if not isinstance(tenant, str):
        raise ApiError.bad_request("TenantId: The TenantId field is required.", target="tenantId")
    return Assignment(
        principal, _client_ids(obj.get("clientIds"), required=True), check_guid_segment(tenant, "tenantId")
    )


def parse_entra_assignment(body: bytes) -> Assignment:
    """Validate an Entra assignment body: ``principalType``, ``tenantId`` and ``clientIds``, all required."""
    return _entra_assignment(parse_json_object(body, allow_empty=False))


def parse_entra_bulk_update(body: bytes) -> dict[str, Assignment | None]:
    """Validate a bulk update: object id -> assignment to add or replace, or null to remove."""
    obj = parse_json_object(body, allow_empty=False)
    if len(obj) > 100:
        raise ApiError.bad_request("At most 100 assignments can be updated at once.")
    return {
        check_guid_segment(object_id, "objectId"): None if value is None else _entra_assignment(value)
        for object_id, value in obj.items()
    }


def unverified_claims(token: str, what: str) -> dict[str, Any]:
    """Decode a JWT's claims with PyJWT *without* verifying its signature (a documented emulator limitation).

    Raises:
        ApiError: 401 ``InvalidAccessToken`` when the token is not a JWT with JSON object header and payload.
    """
    try:
        jwt.get_unverified_header(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            options={
                "verify_signature": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        # RecursionError: JSON nested deep enough to exhaust the parser.
        raise ApiError.invalid_token(f"The {what} token is not a valid JWT.") from None
    return claims


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
