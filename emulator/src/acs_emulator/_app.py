"""The aiohttp application: the Identity REST routes, fault injection, JSON errors and the JWKS route.

Request order: fault injection (latency, then an injected 503) comes first so that clients' retry
policies are exercised; then HMAC authentication over the received bytes; then the api-version, the path
id, the body; only then the database. Every error leaves as ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from azure.communication.common._timestamps import format_timestamp

from ._auth import verify_hmac
from ._errors import HTTP_ERROR_CODES, ApiError, error_body
from ._store import IdentityRecord, IdentityStore, StoreWorker
from ._tokens import ACS_SCP, TEAMS_SCP, TokenIssuer
from ._validation import (
    DEFAULT_LIFETIME,
    EXCHANGE_API_VERSIONS,
    check_api_version,
    check_identity_id,
    parse_bearer,
    parse_create_request,
    parse_issue_request,
    parse_json_object,
    parse_teams_exchange,
    required_claim,
    token_expiry,
    unverified_claims,
)

__all__ = ["ACCESS_LOG_FORMAT", "JWKS_PATH", "MAX_BODY_SIZE", "IdentityService", "ServiceSettings"]

#: Where the JSON Web Key Set of the emulator's token-signing key is served.
JWKS_PATH: Final = "/.well-known/jwks.json"
#: The service answers bodies over 1 MiB with 413.
MAX_BODY_SIZE: Final = 1024 * 1024
#: Access log: peer, request line, status, size, seconds. No headers, so no Authorization and no tokens.
ACCESS_LOG_FORMAT: Final = '%a "%r" %s %b %Tf'
#: An exchanged token without an ``exp`` claim lives as long as a typical Entra ID token: one hour.
_DEFAULT_EXCHANGE_LIFETIME: Final = 3600.0

logger = logging.getLogger("acs_emulator")


@dataclass(frozen=True)
class ServiceSettings:
    """What the routes need to know about the emulator's configuration."""

    key: bytes = field(repr=False)
    resource_id: str
    allow_short_tokens: bool = False
    latency: float = 0.0
    fail_rate: float = 0.0
    retry_after: int = 1


def _json(status: int, payload: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload, separators=(",", ":")).encode("utf-8"),
        content_type="application/json",
    )


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=error_body(code, message),
        content_type="application/json",
        headers=headers,
    )


def _guid_claim(claims: dict[str, Any], name: str, what: str) -> str:
    value = required_claim(claims, name, what)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError.invalid_token(f"The {what} token's {name} claim is not a GUID.") from None


class IdentityService:
    """The emulated Identity service: route handlers over a store and a token issuer.

    Args:
        settings: configuration (access key, switches, fault injection).
        store: the database worker.
        issuer: the token issuer (its resource id is the one in ``settings``).
        clock: the POSIX clock (a seam for tests).
        rng: the random source of fault injection (seedable for deterministic tests).
    """

    def __init__(
        self,
        settings: ServiceSettings,
        store: StoreWorker,
        issuer: TokenIssuer,
        *,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self._settings = settings
        self._store = store
        self._issuer = issuer
        self._clock = clock
        self._rng = rng
        #: How many requests hit an unexpected exception (answered 400, logged); tests assert zero.
        self.unexpected_errors = 0

    def application(self) -> web.Application:
        """Build the aiohttp application with every route and middleware."""
        app = web.Application(client_max_size=MAX_BODY_SIZE, middlewares=[self._errors_middleware(), self._faults()])
        router = app.router
        router.add_post("/identities", self.create_identity)
        router.add_get("/identities/{id}", self.get_identity)
        router.add_delete("/identities/{id}", self.delete_identity)
        router.add_post("/identities/{id}/:issueAccessToken", self.issue_access_token)
        router.add_post("/identities/{id}/:revokeAccessTokens", self.revoke_access_tokens)
        router.add_post("/teamsUser/:exchangeAccessToken", self.exchange_teams_token)
        router.add_post("/access/entra/:exchangeAccessToken", self.exchange_entra_token)
        router.add_post("/access/teamsExtension/:exchangeAccessToken", self.exchange_teams_extension_token)
        router.add_get(JWKS_PATH, self.jwks)
        return app

    # -- middlewares -------------------------------------------------------------------------------

    def _errors_middleware(self) -> Any:
        @web.middleware
        async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                return await handler(request)
            except ApiError as exc:
                return _error(exc.status, exc.code, exc.message)
            except web.HTTPException as exc:
                return self._http_exception(exc)
            except ConnectionError as exc:
                # The client hung up mid-request (e.g. a body cut short): nobody is left to answer,
                # and it is the client's doing, not the emulator's.
                logger.debug(
                    "Client went away (%s) during %s %s", type(exc).__name__, request.method, request.rel_url.path
                )
                return _error(400, "BadRequest", "The connection was closed before the request was complete.")
            except Exception as exc:
                # A safety net, not a code path: log the type only (the text could quote input).
                self.unexpected_errors += 1
                logger.error(
                    "Unexpected %s while handling %s %s",
                    type(exc).__name__,
                    request.method,
                    request.rel_url.path,
                )
                return _error(400, "BadRequest", "The request could not be processed.")

        return errors

    @staticmethod
    def _http_exception(exc: web.HTTPException) -> web.Response:
        status = exc.status
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        if status == 413:
            message = f"The request body is larger than {MAX_BODY_SIZE} bytes."
        elif status == 404:
            message = "No such route."
        else:
            message = exc.reason
        return _error(status, HTTP_ERROR_CODES.get(status, "BadRequest"), message, headers)

    def _faults(self) -> Any:
        settings = self._settings

        @web.middleware
        async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.rel_url.path != JWKS_PATH:
                if settings.latency > 0:
                    await asyncio.sleep(settings.latency)
                if settings.fail_rate > 0 and self._rng.random() < settings.fail_rate:
                    return _error(
                        503,
                        "ServiceUnavailable",
                        "Injected failure (fault injection); retry later.",
                        {"Retry-After": str(settings.retry_after)},
                    )
            return await handler(request)

        return faults

    # -- helpers -----------------------------------------------------------------------------------

    async def _signed_body(self, request: web.Request) -> bytes:
        body = await request.read()
        verify_hmac(
            method=request.method,
            raw_target=request.raw_path,
            headers=request.headers,
            body=body,
            key=self._settings.key,
            now=self._clock(),
        )
        check_api_version(request.query.getall("api-version", []))
        return body

    def _access_token(
        self, skype_id: str, scopes: Sequence[str], iat: int, exp: int, scp: int = ACS_SCP
    ) -> dict[str, str]:
        token = self._issuer.issue(skype_id=skype_id, scopes=scopes, iat=iat, exp=exp, scp=scp)
        return {"token": token, "expiresOn": format_timestamp(exp)}

    def _path_id(self, request: web.Request) -> str:
        return check_identity_id(request.match_info["id"])

    # -- identity routes ---------------------------------------------------------------------------

    async def create_identity(self, request: web.Request) -> web.Response:
        """``POST /identities``: create an identity (or find it by ``customId``), maybe with a token."""
        body = await self._signed_body(request)
        parsed = parse_create_request(body, allow_short=self._settings.allow_short_tokens)
        now = self._clock()
        new_id = f"8:acs:{self._settings.resource_id}_{uuid.uuid4()}"
        with_token = bool(parsed.scopes)

        def create(store: IdentityStore) -> IdentityRecord:
            return store.create(new_id, parsed.custom_id, now, with_token=with_token)

        record = await self._store.call(create)
        identity: dict[str, Any] = {"id": record.id}
        if record.custom_id is not None:
            identity["customId"] = record.custom_id
        result: dict[str, Any] = {"identity": identity}
        if with_token:
            iat = int(now)
            result["accessToken"] = self._access_token(record.id[2:], parsed.scopes, iat, iat + parsed.lifetime)
        return _json(201, result)

    async def get_identity(self, request: web.Request) -> web.Response:
        """``GET /identities/{id}``: ``{id, customId?, lastTokenIssuedAt?}``."""
        await self._signed_body(request)
        identity_id = self._path_id(request)
        record = await self._store.call(lambda store: store.get(identity_id))
        if record is None:
            raise ApiError.not_found()
        result: dict[str, Any] = {"id": record.id}
        if record.custom_id is not None:
            result["customId"] = record.custom_id
        if record.last_token_issued_at is not None:
            result["lastTokenIssuedAt"] = format_timestamp(record.last_token_issued_at)
        return _json(200, result)

    async def issue_access_token(self, request: web.Request) -> web.Response:
        """``POST /identities/{id}/:issueAccessToken``: ``{token, expiresOn}``."""
        body = await self._signed_body(request)
        identity_id = self._path_id(request)
        parsed = parse_issue_request(body, allow_short=self._settings.allow_short_tokens)
        now = self._clock()
        if not await self._store.call(lambda store: store.record_issue(identity_id, now)):
            raise ApiError.not_found()
        iat = int(now)
        return _json(200, self._access_token(identity_id[2:], parsed.scopes, iat, iat + parsed.lifetime))

    async def revoke_access_tokens(self, request: web.Request) -> web.Response:
        """``POST /identities/{id}/:revokeAccessTokens``: 204; tokens issued until now are revoked."""
        await self._signed_body(request)
        identity_id = self._path_id(request)
        now = self._clock()
        if not await self._store.call(lambda store: store.revoke(identity_id, now)):
            raise ApiError.not_found()
        return web.Response(status=204)

    async def delete_identity(self, request: web.Request) -> web.Response:
        """``DELETE /identities/{id}``: 204; later calls for the id get 404."""
        await self._signed_body(request)
        identity_id = self._path_id(request)
        if not await self._store.call(lambda store: store.delete(identity_id)):
            raise ApiError.not_found()
        return web.Response(status=204)

    # -- exchanges ---------------------------------------------------------------------------------

    def _exchange_expiry(self, entra_exp: float | None, now: float) -> tuple[int, int]:
        # The service matches the exchanged token's expiry to the Entra token's, capped at 24 hours.
        end = entra_exp if entra_exp is not None else now + _DEFAULT_EXCHANGE_LIFETIME
        end = min(end, now + DEFAULT_LIFETIME)
        return int(now), int(end)

    async def exchange_teams_token(self, request: web.Request) -> web.Response:
        """``POST /teamsUser/:exchangeAccessToken``: a Teams user's Entra token for an ACS token.

        The Entra token's signature is not verified (an emulator limitation); its ``appid`` (or
        ``azp``) and ``oid`` claims must match ``appId`` and ``userId``.
        """
        body = await self._signed_body(request)
        parsed = parse_teams_exchange(body)
        now = self._clock()
        claims = unverified_claims(parsed.token, "Teams")
        entra_exp = token_expiry(claims, "Teams", now)
        app_id = claims.get("appid", claims.get("azp"))
        if app_id != parsed.app_id:
            raise ApiError(400, "AppIdMismatch", "appId does not match the token's appid claim.")
        if claims.get("oid") != parsed.user_id:
            raise ApiError(400, "UserIdMismatch", "userId does not match the token's oid claim.")
        iat, exp = self._exchange_expiry(entra_exp, now)
        return _json(200, self._access_token(f"orgid:{parsed.user_id}", ("voip",), iat, exp, TEAMS_SCP))

    async def _entra_claims(self, request: web.Request) -> tuple[str, str, float | None, float]:
        token = parse_bearer(request.headers.get("Authorization"))
        check_api_version(request.query.getall("api-version", []), EXCHANGE_API_VERSIONS)
        parse_json_object(await request.read(), allow_empty=True)
        now = self._clock()
        claims = unverified_claims(token, "Entra ID")
        entra_exp = token_expiry(claims, "Entra ID", now)
        tenant_id = _guid_claim(claims, "tid", "Entra ID")
        object_id = _guid_claim(claims, "oid", "Entra ID")
        return tenant_id, object_id, entra_exp, now

    async def exchange_entra_token(self, request: web.Request) -> web.Response:
        """``POST /access/entra/:exchangeAccessToken``: an Entra ID token for a Communication user's.

        Authenticated by ``Authorization: Bearer <Entra JWT>`` (claims read, signature not verified).
        The user id is derived from the token's ``tid`` and ``oid``, so it is stable per Entra user.
        """
        tenant_id, object_id, entra_exp, now = await self._entra_claims(request)
        name = f"urn:acs-emulator:entra:{self._settings.resource_id}:{tenant_id}:{object_id}"
        identity_id = f"8:acs:{self._settings.resource_id}_{uuid.uuid5(uuid.NAMESPACE_URL, name)}"
        await self._store.call(lambda store: store.ensure(identity_id, now))
        iat, exp = self._exchange_expiry(entra_exp, now)
        return _json(
            200,
            {
                "identity": {"id": identity_id},
                "accessToken": self._access_token(identity_id[2:], ("chat", "voip"), iat, exp),
            },
        )

    async def exchange_teams_extension_token(self, request: web.Request) -> web.Response:
        """``POST /access/teamsExtension/:exchangeAccessToken``: a Teams extension user's token.

        The identity is ``8:acs:{resourceId}_{tid}_{oid}`` (the Teams extension user raw id shape).
        """
        tenant_id, object_id, entra_exp, now = await self._entra_claims(request)
        identity_id = f"8:acs:{self._settings.resource_id}_{tenant_id}_{object_id}"
        iat, exp = self._exchange_expiry(entra_exp, now)
        return _json(
            200,
            {
                "identity": {"id": identity_id},
                "accessToken": self._access_token(identity_id[2:], ("voip",), iat, exp, TEAMS_SCP),
            },
        )

    # -- keys --------------------------------------------------------------------------------------

    async def jwks(self, request: web.Request) -> web.Response:
        """``GET /.well-known/jwks.json``: the public key that validates the emulator's tokens."""
        return web.Response(body=self._issuer.jwks_bytes, content_type="application/json")
