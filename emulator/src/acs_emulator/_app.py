"""The aiohttp application: the Identity REST routes, fault injection, JSON errors and the JWKS route.

Request order: the request log (outermost, see :mod:`._control`); the service's response headers (``MS-CV``,
the echoed ``x-ms-client-request-id``, ``api-supported-versions``); then the chaos rules (latency, then an
injected error) so that clients' retry policies are exercised; then HMAC authentication over the received
bytes; then the api-version (does it serve this operation?), the path id, the body; only then the database.
Every error leaves as ``{"error": {"code", "message", "target"?, "innererror"?}}``; a storage failure is a 503.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_request import BaseRequest

from ._auth import verify_hmac
from ._chat import ChatService
from ._control import ControlPlane
from ._errors import HTTP_ERROR_CODES, ApiError, error_body
from ._store import AssignmentRecord, IdentityRecord, IdentityStore, StoreWorker
from ._timestamps import format_service_time
from ._tokens import ACS_SCP, TEAMS_SCP, TokenIssuer
from ._validation import (
    DEFAULT_LIFETIME,
    check_guid_segment,
    check_identity_id,
    check_teams_exchange,
    parse_bearer,
    parse_create_request,
    parse_entra_assignment,
    parse_entra_bulk_update,
    parse_issue_request,
    parse_json_object,
    parse_teams_exchange,
    parse_teams_extension_assignment,
    required_claim,
    token_expiry,
    unverified_claims,
)
from ._versions import check_api_version, serves, supported_versions

__all__ = ["ACCESS_LOG_FORMAT", "JWKS_PATH", "MAX_BODY_SIZE", "IdentityService", "ServiceSettings"]

#: Where the JSON Web Key Set of the emulator's token-signing key is served.
JWKS_PATH: Final = "/.well-known/jwks.json"
#: The service answers bodies over 1 MiB with 413.
MAX_BODY_SIZE: Final = 1024 * 1024
#: Access log: peer, request line, status, size, seconds. No headers, so no Authorization and no tokens.
ACCESS_LOG_FORMAT: Final = '%a "%r" %s %b %Tf'
#: An exchanged token without an ``exp`` claim lives as long as a typical Entra ID token: one hour.
_DEFAULT_EXCHANGE_LIFETIME: Final = 3600.0
#: How long a request body may take to arrive once its headers have (then 408 and the connection closes).
DEFAULT_BODY_TIMEOUT: Final = 30.0
#: Echoed ``x-ms-client-request-id`` values longer than this are dropped (the service caps them too).
_MAX_CLIENT_REQUEST_ID: Final = 256

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
    loose: bool = False
    body_timeout: float = DEFAULT_BODY_TIMEOUT


# Modules share per-request values by name: ``request["auth"]`` (the auth verdict the request log shows)
# and ``request["operation"]``. aiohttp >= 3.14 warns once per process for each string key (suggesting
# RequestKey objects, which other modules could not look up by name), so these are registered as seen.
_SEEN_KEYS = getattr(BaseRequest, "_seen_str_keys", None)
if isinstance(_SEEN_KEYS, set):  # pragma: no branch - aiohttp >= 3.14
    _SEEN_KEYS.update({"auth", "operation"})


# MS-CV values only correlate logs; a seeded PRNG avoids a getrandom() system call per response.
_CV_RANDOM = random.Random(os.urandom(16))


def _correlation_vector() -> str:
    # MS-CV: a base64 correlation vector and an increment, as the service sends (``Zr4s...Q.0``).
    return base64.b64encode(_CV_RANDOM.getrandbits(128).to_bytes(16, "big")).decode("ascii").rstrip("=") + ".0"


def _json(status: int, payload: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload, separators=(",", ":")).encode("utf-8"),
        content_type="application/json",
    )


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    if status in (429, 503):
        headers = {"Retry-After": "1", **(headers or {})}
    return web.Response(
        status=status,
        body=error_body(code, message),
        content_type="application/json",
        headers=headers,
    )


def _api_error(exc: ApiError) -> web.Response:
    response = web.Response(
        status=exc.status, body=exc.body(), content_type="application/json", headers=exc.headers or None
    )
    if exc.status == 408:
        response.force_close()
    return response


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

    def application(self, *, control_open: bool = False) -> web.Application:
        """Build the aiohttp application with every route and middleware.

        Args:
            control_open: serve the ``/_emulator/`` control plane unauthenticated (only when bound to loopback).
        """
        control = ControlPlane(
            self._settings,
            self._store,
            self._issuer,
            clock=self._clock,
            rng=self._rng,
            open_access=control_open,
            exempt=(JWKS_PATH,),
        )
        self.control = control
        # The request log is outermost, so it records what the client finally gets, errors included.
        middlewares = [
            control.log_middleware(),
            self._service_headers(),
            self._errors_middleware(),
            control.chaos_middleware(),
        ]
        app = web.Application(client_max_size=MAX_BODY_SIZE, middlewares=middlewares)
        router = app.router
        router.add_post("/identities", self.create_identity)
        router.add_get("/identities/{id}", self.get_identity)
        router.add_delete("/identities/{id}", self.delete_identity)
        router.add_post("/identities/{id}/:issueAccessToken", self.issue_access_token)
        router.add_post("/identities/{id}/:revokeAccessTokens", self.revoke_access_tokens)
        router.add_post("/teamsUser/:exchangeAccessToken", self.exchange_teams_token)
        router.add_post("/access/entra/:exchangeAccessToken", self.exchange_entra_token)
        router.add_post("/access/teamsExtension/:exchangeAccessToken", self.exchange_teams_extension_token)
        extension = "/access/teamsExtension/tenants/{tenantId}/assignments/{objectId}"
        router.add_get(extension, self.get_teams_extension_assignment)
        router.add_put(extension, self.put_teams_extension_assignment)
        router.add_delete(extension, self.delete_teams_extension_assignment)
        router.add_get("/access/entra/assignments", self.list_entra_assignments)
        router.add_patch("/access/entra/assignments", self.update_entra_assignments)
        router.add_get("/access/entra/assignments/{objectId}", self.get_entra_assignment)
        router.add_put("/access/entra/assignments/{objectId}", self.put_entra_assignment)
        router.add_delete("/access/entra/assignments/{objectId}", self.delete_entra_assignment)
        router.add_get(JWKS_PATH, self.jwks)
        self.chat = ChatService(
            self._store,
            self._issuer,
            resource_id=self._settings.resource_id,
            clock=self._clock,
            loose=self._settings.loose,
        )
        self.chat.add_routes(router)
        control.add_routes(router)
        return app

    # -- middlewares -------------------------------------------------------------------------------

    def _service_headers(self) -> Any:
        @web.middleware
        async def service_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
            # The request log reads the auth verdict; routes that authenticate replace it.
            request["auth"] = "none"
            response = await handler(request)
            headers = response.headers
            headers["MS-CV"] = _correlation_vector()
            client_request_id = request.headers.get("x-ms-client-request-id")
            if client_request_id and len(client_request_id) <= _MAX_CLIENT_REQUEST_ID:
                headers["x-ms-client-request-id"] = client_request_id
            operation = request.get("operation")
            if operation is not None:
                headers["api-supported-versions"] = supported_versions(operation)
            return response

        return service_headers

    def _errors_middleware(self) -> Any:
        @web.middleware
        async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                return await handler(request)
            except ApiError as exc:
                if exc.verdict is not None:
                    request["auth"] = exc.verdict
                return _api_error(exc)
            except web.HTTPException as exc:
                return self._http_exception(exc)
            except sqlite3.Error as exc:
                # The database failed under a valid request (locked, disk full, file gone): the client may
                # retry; a 400 would blame it. The text can quote the SQL, so only its type is logged.
                logger.error("Storage failure (%s) during %s %s", type(exc).__name__, request.method, request.path)
                return _api_error(ApiError.unavailable("The emulator's storage failed; retry later."))
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

    # -- helpers -----------------------------------------------------------------------------------

    async def _read(self, request: web.Request) -> bytes:
        """The request body, or a 408 (and a closed connection) when it does not arrive in time."""
        if request.content.is_eof():
            # Already received in full (the usual case for small bodies): no timer, no extra task.
            return await request.read()
        try:
            return await asyncio.wait_for(request.read(), self._settings.body_timeout)
        except asyncio.TimeoutError:
            raise ApiError(
                408,
                "RequestTimeout",
                f"The request body did not arrive within {self._settings.body_timeout:g} s.",
            ) from None

    async def _signed_body(self, request: web.Request, operation: str) -> tuple[bytes, str]:
        """Authenticate the request (HMAC) and check its api-version serves ``operation``."""
        request["operation"] = operation
        body = await self._read(request)
        verify_hmac(
            method=request.method,
            raw_target=request.raw_path,
            headers=request.headers,
            body=body,
            key=self._settings.key,
            now=self._clock(),
        )
        request["auth"] = "hmac: ok"
        version = check_api_version(request.query.getall("api-version", []), operation, loose=self._settings.loose)
        return body, version

    async def _access_token(
        self, skype_id: str, scopes: Sequence[str], iat: int, exp: int, scp: int = ACS_SCP
    ) -> dict[str, str]:
        token = await self._issuer.issue_async(skype_id=skype_id, scopes=scopes, iat=iat, exp=exp, scp=scp)
        return {"token": token, "expiresOn": format_service_time(exp)}

    def _path_id(self, request: web.Request) -> str:
        return check_identity_id(request.match_info["id"])

    # -- identity routes ---------------------------------------------------------------------------

    async def create_identity(self, request: web.Request) -> web.Response:
        """``POST /identities``: create an identity (or find it by ``customId``), maybe with a token."""
        body, version = await self._signed_body(request, "create")
        parsed = parse_create_request(
            body,
            allow_short=self._settings.allow_short_tokens,
            custom_ids=serves(version, "custom_id", loose=self._settings.loose),
        )
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
            result["accessToken"] = await self._access_token(record.id[2:], parsed.scopes, iat, iat + parsed.lifetime)
        return _json(201, result)

    async def get_identity(self, request: web.Request) -> web.Response:
        """``GET /identities/{id}``: ``{id, customId?, lastTokenIssuedAt?}``."""
        await self._signed_body(request, "get")
        identity_id = self._path_id(request)
        record = await self._store.call(lambda store: store.get(identity_id))
        if record is None:
            raise ApiError.not_found()
        result: dict[str, Any] = {"id": record.id}
        if record.custom_id is not None:
            result["customId"] = record.custom_id
        if record.last_token_issued_at is not None:
            result["lastTokenIssuedAt"] = format_service_time(record.last_token_issued_at)
        return _json(200, result)

    async def issue_access_token(self, request: web.Request) -> web.Response:
        """``POST /identities/{id}/:issueAccessToken``: ``{token, expiresOn}``."""
        body, _ = await self._signed_body(request, "issue")
        identity_id = self._path_id(request)
        parsed = parse_issue_request(body, allow_short=self._settings.allow_short_tokens)
        now = self._clock()
        if not await self._store.call(lambda store: store.record_issue(identity_id, now)):
            raise ApiError.not_found()
        iat = int(now)
        return _json(200, await self._access_token(identity_id[2:], parsed.scopes, iat, iat + parsed.lifetime))

    async def revoke_access_tokens(self, request: web.Request) -> web.Response:
        """``POST /identities/{id}/:revokeAccessTokens``: 204; tokens issued until now are revoked."""
        await self._signed_body(request, "revoke")
        identity_id = self._path_id(request)
        now = self._clock()
        if not await self._store.call(lambda store: store.revoke(identity_id, now)):
            raise ApiError.not_found()
        return web.Response(status=204)

    async def delete_identity(self, request: web.Request) -> web.Response:
        """``DELETE /identities/{id}``: 204; later calls for the id get 404."""
        await self._signed_body(request, "delete")
        identity_id = self._path_id(request)
        now = self._clock()
        if not await self._store.call(lambda store: store.delete(identity_id, now)):
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
        body, _ = await self._signed_body(request, "teams_exchange")
        # The service reads the token before anything else in the body: a bad one is a 401 first.
        obj, token = parse_teams_exchange(body)
        now = self._clock()
        claims = unverified_claims(token, "Teams")
        entra_exp = token_expiry(claims, "Teams", now)
        parsed = check_teams_exchange(obj, token)
        app_id = claims.get("appid", claims.get("azp"))
        if app_id != parsed.app_id:
            raise ApiError.bad_request("AAD application is not the expected one.", target="appId")
        if claims.get("oid") != parsed.user_id:
            raise ApiError.bad_request("Provided UserId has invalid format.", target="userId")
        iat, exp = self._exchange_expiry(entra_exp, now)
        return _json(200, await self._access_token(f"orgid:{parsed.user_id}", ("voip",), iat, exp, TEAMS_SCP))

    async def _entra_claims(self, request: web.Request, operation: str) -> tuple[str, str, float | None, float]:
        request["operation"] = operation
        # api-version routing comes first here: a version without the route has no bearer to check.
        check_api_version(request.query.getall("api-version", []), operation, loose=self._settings.loose)
        try:
            token = parse_bearer(request.headers.get("Authorization"))
        except ApiError:
            request["auth"] = "bearer: missing"
            raise
        request["auth"] = "bearer: claims read, signature not verified"
        parse_json_object(await self._read(request), allow_empty=True)
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
        tenant_id, object_id, entra_exp, now = await self._entra_claims(request, "entra_exchange")
        name = f"urn:acs-emulator:entra:{self._settings.resource_id}:{tenant_id}:{object_id}"
        identity_id = f"8:acs:{self._settings.resource_id}_{uuid.uuid5(uuid.NAMESPACE_URL, name)}"
        await self._store.call(lambda store: store.ensure(identity_id, now))
        iat, exp = self._exchange_expiry(entra_exp, now)
        return _json(
            200,
            {
                "identity": {"id": identity_id},
                "accessToken": await self._access_token(identity_id[2:], ("chat", "voip"), iat, exp),
            },
        )

    async def exchange_teams_extension_token(self, request: web.Request) -> web.Response:
        """``POST /access/teamsExtension/:exchangeAccessToken``: a Teams extension user's token.

        The identity is ``8:acs:{resourceId}_{tid}_{oid}`` (the Teams extension user raw id shape).
        """
        tenant_id, object_id, entra_exp, now = await self._entra_claims(request, "teams_extension_exchange")
        identity_id = f"8:acs:{self._settings.resource_id}_{tenant_id}_{object_id}"
        iat, exp = self._exchange_expiry(entra_exp, now)
        return _json(
            200,
            {
                "identity": {"id": identity_id},
                "accessToken": await self._access_token(identity_id[2:], ("voip",), iat, exp, TEAMS_SCP),
            },
        )

    # -- assignments -------------------------------------------------------------------------------

    @staticmethod
    def _assignment_json(record: AssignmentRecord) -> dict[str, Any]:
        result: dict[str, Any] = {
            "objectId": record.object_id,
            "tenantId": record.tenant_id,
            "principalType": record.principal_type,
        }
        if record.client_ids is not None:
            result["clientIds"] = list(record.client_ids)
        elif record.kind == "entra":
            result["clientIds"] = []
        return result

    def _extension_key(self, request: web.Request) -> tuple[str, str]:
        info = request.match_info
        return check_guid_segment(info["tenantId"], "tenantId"), check_guid_segment(info["objectId"], "objectId")

    async def get_teams_extension_assignment(self, request: web.Request) -> web.Response:
        """``GET /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}``."""
        await self._signed_body(request, "teams_extension_assignment_get")
        tenant_id, object_id = self._extension_key(request)
        record = await self._store.call(lambda store: store.get_assignment("teamsExtension", tenant_id, object_id))
        if record is None:
            raise ApiError(404, "AssignmentNotFound", "The Teams extension assignment does not exist.")
        return _json(200, self._assignment_json(record))

    async def put_teams_extension_assignment(self, request: web.Request) -> web.Response:
        """``PUT .../assignments/{objectId}``: 201 when created, 200 when replaced."""
        body, _ = await self._signed_body(request, "teams_extension_assignment_put")
        tenant_id, object_id = self._extension_key(request)
        parsed = parse_teams_extension_assignment(body)
        record = AssignmentRecord("teamsExtension", tenant_id, object_id, parsed.principal_type, parsed.client_ids)
        created = await self._store.call(lambda store: store.put_assignment(record))
        return _json(201 if created else 200, self._assignment_json(record))

    async def delete_teams_extension_assignment(self, request: web.Request) -> web.Response:
        """``DELETE .../assignments/{objectId}``: 204 (also when there was none, as the service answers)."""
        await self._signed_body(request, "teams_extension_assignment_delete")
        tenant_id, object_id = self._extension_key(request)
        await self._store.call(lambda store: store.delete_assignment("teamsExtension", tenant_id, object_id))
        return web.Response(status=204)

    async def list_entra_assignments(self, request: web.Request) -> web.Response:
        """``GET /access/entra/assignments``: ``{"value": [...]}``."""
        await self._signed_body(request, "entra_assignments_list")
        records = await self._store.call(lambda store: store.list_assignments("entra"))
        return _json(200, {"value": [self._assignment_json(r) for r in records]})

    async def update_entra_assignments(self, request: web.Request) -> web.Response:
        """``PATCH /access/entra/assignments``: add, replace (an object) or remove (null) by object id."""
        body, _ = await self._signed_body(request, "entra_assignments_update")
        updates = parse_entra_bulk_update(body)
        changes: list[tuple[str, AssignmentRecord | None]] = []
        for object_id, update in updates.items():
            record = None
            if update is not None:
                record = AssignmentRecord(
                    "entra", update.tenant_id or "", object_id, update.principal_type, update.client_ids
                )
            changes.append((object_id, record))
        records = await self._store.call(lambda store: store.update_assignments("entra", changes))
        if not records:  # only removals: nothing to show
            return web.Response(status=204)
        return _json(200, {"value": [self._assignment_json(r) for r in records]})

    async def get_entra_assignment(self, request: web.Request) -> web.Response:
        """``GET /access/entra/assignments/{objectId}``."""
        await self._signed_body(request, "entra_assignment_get")
        object_id = check_guid_segment(request.match_info["objectId"], "objectId")
        record = await self._store.call(lambda store: store.get_assignment("entra", None, object_id))
        if record is None:
            raise ApiError(404, "AssignmentNotFound", "The Entra assignment does not exist.")
        return _json(200, self._assignment_json(record))

    async def put_entra_assignment(self, request: web.Request) -> web.Response:
        """``PUT /access/entra/assignments/{objectId}``: 201 when created, 200 when replaced."""
        body, _ = await self._signed_body(request, "entra_assignment_put")
        object_id = check_guid_segment(request.match_info["objectId"], "objectId")
        parsed = parse_entra_assignment(body)
        record = AssignmentRecord("entra", parsed.tenant_id or "", object_id, parsed.principal_type, parsed.client_ids)
        created = await self._store.call(lambda store: store.put_assignment(record))
        return _json(201 if created else 200, self._assignment_json(record))

    async def delete_entra_assignment(self, request: web.Request) -> web.Response:
        """``DELETE /access/entra/assignments/{objectId}``: 204."""
        await self._signed_body(request, "entra_assignment_delete")
        object_id = check_guid_segment(request.match_info["objectId"], "objectId")
        await self._store.call(lambda store: store.delete_assignment("entra", None, object_id))
        return web.Response(status=204)

    # -- keys --------------------------------------------------------------------------------------

    async def jwks(self, request: web.Request) -> web.Response:
        """``GET /.well-known/jwks.json``: the public key that validates the emulator's tokens."""
        return web.Response(body=self._issuer.jwks_bytes, content_type="application/json")
