"""HMAC-SHA256 request signing with an access key, as an azure-core pipeline policy.

The policy signs exactly what the transport sends: it rewrites the request URL to its canonical form
(:mod:`._url`) and puts the body bytes it hashed back on the request. The signing itself is
:mod:`._signing` and the body bytes come from :mod:`._body`, both shared with the httpx and requests
adapters (and the signing core with the emulator's verifier).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any, Final, cast

from azure.core.credentials import AzureKeyCredential, SupportsTokenInfo, TokenCredential
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, SansIOHTTPPolicy

from ._body import hash_body, sign_request_body
from ._connection_string import is_key_credential
from ._signing import (
    authorization_header,
    compute_signature,
    decode_access_key,
    format_date,
    string_to_sign,
)
from ._url import canonicalize

__all__ = [
    "COMMUNICATION_SCOPE",
    "CommunicationAccessKeyCredentialPolicy",
    "create_communication_auth_policy",
    "hash_body",
    "is_sync_function",
    "token_methods",
]

COMMUNICATION_SCOPE: Final = "https://communication.azure.com//.default"
"""The Entra ID scope of the ACS data plane (the double slash is part of the real scope)."""


class AccessKey:
    """The access key of a key credential, read on every use so that ``AzureKeyCredential.update()`` rotates it.

    The decoded key is cached per key string, so steady-state use costs one attribute read and one identity
    comparison.
    """

    __slots__ = ("_cached", "_credential")

    def __init__(self, credential: AzureKeyCredential | str) -> None:
        if not isinstance(credential, str) and not is_key_credential(credential):
            raise TypeError(
                f"Expected an AzureKeyCredential or a base64 access key (str), not {type(credential).__name__}."
            )
        self._credential = credential
        key = self._read()
        self._cached = (key, decode_access_key(key))

    def __repr__(self) -> str:
        return "AccessKey(key=***)"

    def _read(self) -> str:
        credential = self._credential
        return credential if isinstance(credential, str) else credential.key

    def decoded(self) -> bytes:
        """Return the decoded current key.

        Raises:
            ValueError: the credential was updated to a key that is not valid base64.
        """
        key = self._read()
        cached = self._cached
        if key is cached[0] or key == cached[0]:
            return cached[1]
        decoded = decode_access_key(key)
        self._cached = (key, decoded)
        return decoded


class CommunicationAccessKeyCredentialPolicy(SansIOHTTPPolicy[Any, Any]):
    """Sign every request with an ACS access key (HMAC-SHA256).

    Place it in the pipeline's authentication slot, after the retry policy, so that each retry is signed
    afresh (the date is part of the signature). Works in sync and async pipelines, with any transport: the
    request URL is rewritten to its canonical form and the body is set to the exact bytes that were hashed.

    Args:
        credential: an ``AzureKeyCredential`` (read on every request, so ``update()`` rotates the key) or the
            base64 access key itself.

    Raises:
        TypeError: ``credential`` is neither a key credential nor a string.
        ValueError: the key is not valid base64.
    """

    def __init__(
        self,
        credential: AzureKeyCredential | str,
        *,
        _clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._key = AccessKey(credential)
        self._clock = _clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}(credential=***)"

    def on_request(self, request: PipelineRequest[Any]) -> None:
        """Canonicalise the URL, fix the body bytes and add the ``x-ms-date``, hash and signature headers.

        Raises:
            ValueError: the URL is not an absolute http(s) URL or holds user info (``user:pass@``, which
                requests would send as Basic auth in place of the signature), the body cannot be signed without being
                consumed (multipart, async iterables, non-seekable streams), or the key was rotated to an
                invalid one.
        """
        http_request = request.http_request
        url = http_request.url
        canonical = canonicalize(url)
        if canonical.url != url:
            http_request.url = canonical.url
        body_hash = sign_request_body(http_request)
        headers = http_request.headers
        date = format_date(self._clock())
        to_sign = string_to_sign(
            http_request.method,
            canonical.path_and_query,
            date,
            headers.get("Host") or canonical.host,
            body_hash,
        )
        headers["x-ms-date"] = date
        headers["x-ms-content-sha256"] = body_hash
        headers["Authorization"] = authorization_header(compute_signature(self._key.decoded(), to_sign))


def token_methods(credential: object) -> tuple[Callable[..., Any], ...]:
    """The token methods a credential has, ``get_token`` and/or ``get_token_info``.

    azure-core's bearer policies accept a ``TokenCredential`` (``get_token``), a ``SupportsTokenInfo``
    (``get_token_info``) or a credential with both, and so do the factories.
    """
    methods = (getattr(credential, "get_token", None), getattr(credential, "get_token_info", None))
    return tuple(method for method in methods if callable(method))


def is_sync_function(method: Callable[..., Any]) -> bool:
    """Whether ``method`` is certainly synchronous: a Python function or method that is not ``async def``.

    Other callables (callable objects, mocks) cannot be told apart without calling them, so they are not.
    """
    plain = inspect.isfunction(method) or inspect.ismethod(method) or inspect.isbuiltin(method)
    return plain and not inspect.iscoroutinefunction(method)


def create_communication_auth_policy(
    credential: AzureKeyCredential | str | TokenCredential | SupportsTokenInfo, **kwargs: Any
) -> CommunicationAccessKeyCredentialPolicy | BearerTokenCredentialPolicy[Any, Any]:
    """Return the authentication policy for a credential, as the ACS clients choose it.

    Args:
        credential: a key credential or base64 access key (-> :class:`CommunicationAccessKeyCredentialPolicy`),
            or a ``TokenCredential`` or ``SupportsTokenInfo`` (``get_token`` or ``get_token_info``; ->
            azure-core's ``BearerTokenCredentialPolicy`` for the ACS scope).
        **kwargs: passed to the bearer token policy (e.g. ``enforce_https=False`` for a loopback test
            server); not used by the key policy, so the same call works for every credential type.

    Raises:
        TypeError: the credential is none of these, or is an async token credential (use
            :func:`azure.communication.common.aio.create_communication_auth_policy`).
        ValueError: the access key is not valid base64.
    """
    if isinstance(credential, str) or is_key_credential(credential):
        return CommunicationAccessKeyCredentialPolicy(cast("AzureKeyCredential | str", credential))
    methods = token_methods(credential)
    if not methods:
        raise TypeError(
            "Expected an AzureKeyCredential, a base64 access key (str) or a TokenCredential "
            f"(get_token or get_token_info), not {type(credential).__name__}."
        )
    if any(inspect.iscoroutinefunction(method) for method in methods):
        raise TypeError(
            "An async token credential needs the async policy: use "
            "azure.communication.common.aio.create_communication_auth_policy."
        )
    return BearerTokenCredentialPolicy(
        cast("TokenCredential | SupportsTokenInfo", credential), COMMUNICATION_SCOPE, **kwargs
    )
