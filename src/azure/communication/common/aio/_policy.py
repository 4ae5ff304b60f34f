"""The asyncio authentication-policy factory: async token credentials get azure-core's async bearer policy."""

from __future__ import annotations

from typing import Any, cast

from azure.core.credentials import AzureKeyCredential
from azure.core.credentials_async import AsyncSupportsTokenInfo, AsyncTokenCredential
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy

from .._connection_string import is_key_credential
from .._policy import (
    COMMUNICATION_SCOPE,
    CommunicationAccessKeyCredentialPolicy,
    is_sync_function,
    token_methods,
)

__all__ = ["create_communication_auth_policy"]


def create_communication_auth_policy(
    credential: AzureKeyCredential | str | AsyncTokenCredential | AsyncSupportsTokenInfo, **kwargs: Any
) -> CommunicationAccessKeyCredentialPolicy | AsyncBearerTokenCredentialPolicy[Any, Any]:
    """Return the authentication policy for a credential in an async pipeline.

    Args:
        credential: a key credential or base64 access key (-> :class:`CommunicationAccessKeyCredentialPolicy`,
            which works in async pipelines too), or an ``AsyncTokenCredential`` or ``AsyncSupportsTokenInfo``
            (``async def get_token`` or ``get_token_info``; -> azure-core's ``AsyncBearerTokenCredentialPolicy``
            for the ACS scope).
        **kwargs: passed to the bearer token policy (e.g. ``enforce_https=False``); not used by the key policy.

    Raises:
        TypeError: the credential is none of these, or its token methods are synchronous (use
            :func:`azure.communication.common.create_communication_auth_policy`).
        ValueError: the access key is not valid base64.
    """
    if isinstance(credential, str) or is_key_credential(credential):
        return CommunicationAccessKeyCredentialPolicy(cast("AzureKeyCredential | str", credential))
    methods = token_methods(credential)
    if not methods:
        raise TypeError(
            "Expected an AzureKeyCredential, a base64 access key (str) or an AsyncTokenCredential "
            f"(get_token or get_token_info), not {type(credential).__name__}."
        )
    if any(is_sync_function(method) for method in methods):
        # azure-core's async policy would call it on the event loop, blocking every task while it runs.
        raise TypeError(
            "A sync token credential needs the sync policy: use "
            "azure.communication.common.create_communication_auth_policy, or pass an AsyncTokenCredential "
            "(async def get_token / get_token_info)."
        )
    return AsyncBearerTokenCredentialPolicy(
        cast("AsyncTokenCredential | AsyncSupportsTokenInfo", credential), COMMUNICATION_SCOPE, **kwargs
    )
