"""Sign plain httpx requests with an ACS access key: ``httpx.Client(auth=AccessKeyAuth(key))``.

This module imports httpx (the ``httpx`` extra); nothing else in the package does. The absolute
``import httpx`` below is the real library, not this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator

from azure.core.credentials import AzureKeyCredential

try:
    import httpx
except ImportError:
    # Not chained: the bare ModuleNotFoundError says what is missing, this says how to install it.
    raise ImportError(
        "azure.communication.common.httpx needs the httpx library: pip install 'azure-communication-common[httpx]'",
        name="httpx",
    ) from None

from ._policy import AccessKey
from ._signing import content_hash, format_date, sign
from ._url import canonicalize

__all__ = ["AccessKeyAuth"]


class AccessKeyAuth(httpx.Auth):
    """HMAC-SHA256 access-key authentication for ``httpx.Client`` and ``httpx.AsyncClient``.

    Each request is signed with the same core and the same canonical URL as
    :class:`~azure.communication.common.CommunicationAccessKeyCredentialPolicy`: the request URL is replaced
    by its canonical form, and the ``Host`` header and body bytes httpx is about to send are signed. httpx
    reads a streamed body into memory first (``requires_request_body``), so every body can be signed.

    httpx follows redirects inside one authentication step, so a redirected request is not signed again;
    ACS does not redirect, and httpx does not follow redirects unless asked to.

    Args:
        credential: an ``AzureKeyCredential`` (read on every request, so ``update()`` rotates the key) or the
            base64 access key itself.

    Raises:
        TypeError: ``credential`` is neither a key credential nor a string.
        ValueError: the key is not valid base64.
    """

    requires_request_body = True

    def __init__(self, credential: AzureKeyCredential | str, *, _clock: Callable[[], float] = time.time) -> None:
        self._key = AccessKey(credential)
        self._clock = _clock

    def __repr__(self) -> str:
        return "AccessKeyAuth(credential=***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign ``request`` (its body is already read) and send it once.

        Raises:
            ValueError: the URL is not an absolute http(s) URL or holds user info (refused before anything is
                sent).
        """
        url = str(request.url)
        canonical = canonicalize(url)
        if canonical.url != url:
            request.url = httpx.URL(canonical.url)
        # httpx set Host from the URL when the request was built (or the caller set it): sign what is sent.
        host = request.headers.get("Host") or canonical.host
        request.headers.update(
            sign(
                method=request.method,
                path_and_query=canonical.path_and_query,
                host=host,
                body_hash=content_hash(request.content),
                key=self._key.decoded(),
                date=format_date(self._clock()),
            )
        )
        yield request
