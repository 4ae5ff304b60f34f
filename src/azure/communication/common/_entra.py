"""Exchanging a Microsoft Entra ID token for an ACS user access token (the Entra mode of the credential).

The sans-I/O part (endpoint and scope validation, the request, the response) is shared by the sync
:class:`EntraTokenExchanger` here and the asyncio one in :mod:`azure.communication.common.aio._entra`;
the shells only obtain the Entra token and run the request through an azure-core pipeline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessTokenInfo, TokenCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, map_error
from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import (
    HeadersPolicy,
    HttpLoggingPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest

from ._connection_string import validate_endpoint
from ._timestamps import parse_timestamp_seconds
from ._version import VERSION

if TYPE_CHECKING:
    from azure.core.pipeline.transport import HttpTransport
    from azure.core.rest import AsyncHttpResponse, HttpResponse

__all__ = [
    "DEFAULT_SCOPES",
    "ENTRA_SCOPE_PREFIX",
    "TEAMS_EXTENSION_SCOPE_PREFIXES",
    "EntraTokenExchanger",
    "ExchangeTarget",
    "build_policies",
    "parse_exchange_response",
    "pipeline_kwargs_for",
]

#: Scopes of a Teams Phone extension user (public and US government clouds); exchanged at
#: ``/access/teamsExtension``.
TEAMS_EXTENSION_SCOPE_PREFIXES = (
    "https://auth.msft.communication.azure.com/",
    "https://auth.msft.communication.azure.us/",
)
#: Scopes of an Entra user of Communication Services clients; exchanged at ``/access/entra``.
ENTRA_SCOPE_PREFIX = "https://communication.azure.com/clients/"
#: What the JS and .NET SDKs ask for when the caller names no scope.
DEFAULT_SCOPES = ("https://communication.azure.com/clients/.default",)

_TEAMS_EXTENSION_ROUTE = ("/access/teamsExtension/:exchangeAccessToken", "2025-06-30")
_ENTRA_ROUTE = ("/access/entra/:exchangeAccessToken", "2025-03-02-preview")

_SDK_MONIKER = f"communication-common/{VERSION}"
_ALLOWED_SCOPES_TEXT = " or ".join(repr(p) for p in (*TEAMS_EXTENSION_SCOPE_PREFIXES, ENTRA_SCOPE_PREFIX))


def _validate_scopes(scopes: object) -> tuple[tuple[str, ...], tuple[str, str]]:
    if scopes is None:
        return DEFAULT_SCOPES, _ENTRA_ROUTE
    if isinstance(scopes, (str, bytes)) or not isinstance(scopes, Sequence):
        raise TypeError(
            f"scopes must be a sequence of str such as [{DEFAULT_SCOPES[0]!r}], not {type(scopes).__name__}."
        )
    checked = tuple(scopes)
    for scope in checked:
        if not isinstance(scope, str):
            raise TypeError(f"Each scope must be a str, not {type(scope).__name__}.")
    if checked and all(s.startswith(TEAMS_EXTENSION_SCOPE_PREFIXES) for s in checked):
        return checked, _TEAMS_EXTENSION_ROUTE
    if checked and all(s.startswith(ENTRA_SCOPE_PREFIX) for s in checked):
        return checked, _ENTRA_ROUTE
    allowed = (*TEAMS_EXTENSION_SCOPE_PREFIXES, ENTRA_SCOPE_PREFIX)
    outside = [s for s in checked if not s.startswith(allowed)]
    if not checked:
        problem = "no scope was given"
    elif outside:
        problem = f"{outside[0][:200]!r} has none of the allowed prefixes"
    else:
        problem = "Teams extension and Communication clients scopes are mixed"
    raise ValueError(
        f"Scopes validation failed ({problem}): every scope must start with {_ALLOWED_SCOPES_TEXT}, "
        f"all with prefixes of the same kind."
    )


def _entra_token_text(access_token: object) -> str:
    token = getattr(access_token, "token", None)
    if not isinstance(token, str) or not token.strip():
        raise TypeError(
            "token_credential.get_token() must return an AccessToken with a non-empty str token, "
            f"got {type(access_token).__name__}."
        )
    if any(c in token for c in "\r\n"):
        raise ValueError("The Entra token from token_credential contains a line break.")
    return token


@dataclass(frozen=True)
class ExchangeTarget:
    """Where and how to exchange: the validated endpoint, scopes and exchange URL.

    Args:
        resource_endpoint: The Communication Services resource, e.g.
            ``https://<resource>.communication.azure.com``; a trailing ``/`` is dropped.
        scopes: The Entra scopes; ``None`` means :data:`DEFAULT_SCOPES`.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: The endpoint is not an http(s) URL with a host and no path beyond ``/`` (no query,
            fragment or user info), or the scopes are empty, mixed or outside the allowed prefixes.
    """

    resource_endpoint: str
    scopes: tuple[str, ...]
    url: str = field(repr=False)

    @classmethod
    def create(cls, resource_endpoint: str, scopes: Sequence[str] | None = None) -> ExchangeTarget:
        """Validate the arguments of an exchanger and build its target (see the class for the rules)."""
        # The library's one endpoint validator (it never quotes the value, which may hold a key or a
        # password); the exchange paths are appended to the endpoint, so its trailing "/" goes.
        endpoint = validate_endpoint(resource_endpoint, "resource_endpoint").rstrip("/")
        checked, (path, api_version) = _validate_scopes(scopes)
        return cls(endpoint, checked, f"{endpoint}{path}?api-version={api_version}")

    def build_request(self, entra_token: object) -> HttpRequest:
        """Build the exchange request for the token returned by the Entra credential's ``get_token``.

        Raises:
            TypeError: ``entra_token`` is not an access token with a non-empty ``token``.
            ValueError: The token contains a line break (it would split the header).
        """
        token = _entra_token_text(entra_token)
        return HttpRequest(
            "POST",
            self.url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            content=b"{}",
        )


def _malformed(response: HttpResponse | AsyncHttpResponse, what: str) -> HttpResponseError:
    # Built without ``response=``: HttpResponseError's str() appends the body, which holds the token.
    error = HttpResponseError(
        message=f"The token exchange response is malformed: {what}. Expected a JSON object "
        '{"accessToken": {"token": "<str>", "expiresOn": "<RFC 3339 timestamp>"}}.'
    )
    error.status_code = response.status_code
    error.reason = response.reason
    return error


def parse_exchange_response(response: HttpResponse | AsyncHttpResponse) -> AccessTokenInfo:
    """Turn the (fully read) exchange response into the ACS token.

    Args:
        response: The HTTP response; its body must already be loaded.

    Returns:
        The ACS token, expiring at ``accessToken.expiresOn`` rounded down to whole seconds.

    Raises:
        ClientAuthenticationError: The service answered 401 or 403 (the Entra token was refused).
        HttpResponseError: Any other non-2xx status, or a 2xx body that is not the expected JSON (the
            message says what is wrong and never quotes the body).
    """
    status = response.status_code
    if not 200 <= status < 300:
        map_error(status, response, {401: ClientAuthenticationError, 403: ClientAuthenticationError})
        raise HttpResponseError(response=response)
    try:
        body = json.loads(response.text())
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise _malformed(response, "the body is not JSON") from exc
    access_token = body.get("accessToken") if isinstance(body, dict) else None
    if not isinstance(access_token, dict):
        raise _malformed(response, "no 'accessToken' object")
    token = access_token.get("token")
    if not isinstance(token, str) or not token:
        raise _malformed(response, "'accessToken.token' is missing or not a non-empty string")
    expires_on = access_token.get("expiresOn")
    if isinstance(expires_on, str):
        try:
            expires_at = parse_timestamp_seconds(expires_on)
        except ValueError as exc:
            raise _malformed(response, "'accessToken.expiresOn' is not an RFC 3339 timestamp") from exc
    elif isinstance(expires_on, (int, float)) and not isinstance(expires_on, bool):
        # Epoch seconds: not what the service sends, but unambiguous, so accepted.
        if not math.isfinite(expires_on):
            raise _malformed(response, "'accessToken.expiresOn' is not finite")
        expires_at = math.floor(expires_on)
    else:
        raise _malformed(response, "'accessToken.expiresOn' is missing")
    return AccessTokenInfo(token, expires_at)


def build_policies(retry_policy: Any, kwargs: dict[str, Any]) -> list[Any]:
    """The exchange pipeline's policies, configured from the caller's pipeline keyword arguments.

    No authentication policy: the Entra token is put on the request itself (so plain http works against
    a loopback emulator), and no ``NetworkTraceLoggingPolicy`` (it would log the tokens in the bodies);
    ``HttpLoggingPolicy`` redacts the ``Authorization`` header and never logs bodies.
    """
    policies: list[Any] = [
        HeadersPolicy(**kwargs),
        UserAgentPolicy(sdk_moniker=_SDK_MONIKER, **kwargs),
        retry_policy,
        HttpLoggingPolicy(**kwargs),
    ]
    return policies


def pipeline_kwargs_for(pipeline_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the caller's pipeline keyword arguments, ready for :func:`build_policies`."""
    kwargs = dict(pipeline_kwargs)
    # The moniker is ours: a caller's one would reach UserAgentPolicy twice.
    kwargs.pop("sdk_moniker", None)
    return kwargs


class ExchangerBase:
    """What the sync and async exchangers share: the target, a repr without tokens, no pickling."""

    _target: ExchangeTarget
    _closed: bool

    def _setup(
        self,
        resource_endpoint: str,
        token_credential: object,
        scopes: Sequence[str] | None,
        pipeline_kwargs: dict[str, Any],
        credential_type: str,
    ) -> dict[str, Any]:
        """Validate the arguments both flavours take; return the pipeline kwargs ready for the policies."""
        self._target = ExchangeTarget.create(resource_endpoint, scopes)
        if not callable(getattr(token_credential, "get_token_info", None)) and not callable(
            getattr(token_credential, "get_token", None)
        ):
            raise TypeError(
                f"token_credential must be an azure-core {credential_type} (with get_token_info or get_token), "
                f"not {type(token_credential).__name__}."
            )
        self._closed = False
        return pipeline_kwargs_for(pipeline_kwargs)

    @property
    def resource_endpoint(self) -> str:
        """The resource endpoint, without a trailing ``/``."""
        return self._target.resource_endpoint

    @property
    def scopes(self) -> tuple[str, ...]:
        """The Entra scopes asked for."""
        return self._target.scopes

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(resource_endpoint={self._target.resource_endpoint!r}, "
            f"scopes={list(self._target.scopes)!r}, closed={self._closed})"
        )

    def __reduce__(self) -> Any:
        raise TypeError(f"{type(self).__name__} cannot be pickled: it holds a credential and a pipeline.")


class EntraTokenExchanger(ExchangerBase):
    """Exchanges an Entra ID token for an ACS user access token, for the credential's Entra mode.

    Each call asks ``token_credential`` for an Entra token (through ``get_token_info`` when it has one, as
    azure-core's bearer policy does), so a changed Entra token is exchanged anew, and posts it to the exchange
    endpoint chosen by the scopes. Nothing is sent at construction.

    Args:
        resource_endpoint: The Communication Services resource, e.g.
            ``https://<resource>.communication.azure.com``, with no path beyond ``/`` (http is accepted,
            e.g. for a local emulator).
        token_credential: An azure-core ``TokenCredential`` or ``SupportsTokenInfo`` for the Entra user (e.g.
            from azure-identity); its ``get_token_info`` is used when it has one.
        scopes: The Entra scopes, all starting with ``https://communication.azure.com/clients/`` or all
            with ``https://auth.msft.communication.azure.com/`` / ``https://auth.msft.communication.azure.us/``
            (Teams Phone extension). Default: ``["https://communication.azure.com/clients/.default"]``.
        **pipeline_kwargs: azure-core pipeline options: ``transport`` (default a new ``RequestsTransport``),
            ``retry_total``, ``retry_backoff_factor``, ``headers``, ``user_agent`` and the like.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: The endpoint or the scopes are not valid (see :class:`ExchangeTarget`).
    """

    def __init__(
        self,
        resource_endpoint: str,
        token_credential: TokenCredential,
        scopes: Sequence[str] | None = None,
        **pipeline_kwargs: Any,
    ) -> None:
        kwargs = self._setup(resource_endpoint, token_credential, scopes, pipeline_kwargs, "TokenCredential")
        self._credential = token_credential
        transport: HttpTransport[Any, Any] | None = kwargs.pop("transport", None)
        if transport is None:
            # Imported here: the core package must not need requests unless this default is used.
            from azure.core.pipeline.transport import RequestsTransport

            transport = RequestsTransport(**kwargs)
        policies = build_policies(RetryPolicy(**kwargs), kwargs)
        self._pipeline: Pipeline[HttpRequest, HttpResponse] = Pipeline(transport, policies)

    def __call__(self) -> AccessTokenInfo:
        """Get an Entra token and exchange it for an ACS token.

        Returns:
            The ACS token and its expiry.

        Raises:
            RuntimeError: The exchanger is closed.
            ClientAuthenticationError: The service refused the Entra token (401/403).
            HttpResponseError: Any other failure of the exchange.
            Exception: Whatever ``token_credential.get_token`` raises, unchanged.
        """
        if self._closed:
            raise RuntimeError("EntraTokenExchanger is closed.")
        # get_token_info first, as azure-core's bearer policy does: a SupportsTokenInfo-only credential
        # (azure-identity's newer ones may be) works too.
        get_token_info = getattr(self._credential, "get_token_info", None)
        if callable(get_token_info):
            entra_token = get_token_info(*self._target.scopes)
        else:
            entra_token = self._credential.get_token(*self._target.scopes)
        request = self._target.build_request(entra_token)
        response = self._pipeline.run(request)
        return parse_exchange_response(response.http_response)

    def close(self) -> None:
        """Close the pipeline and its transport; later calls raise ``RuntimeError``. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pipeline.__exit__()

    def __enter__(self) -> EntraTokenExchanger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
