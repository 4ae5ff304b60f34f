"""Sign plain requests calls with an ACS access key: ``requests.get(url, auth=AccessKeyAuth(key))``.

This module imports requests; nothing else in the package does. The absolute ``import requests`` below is
the real library, not this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from azure.core.credentials import AzureKeyCredential

try:
    import requests
except ImportError:
    # Not chained: the bare ModuleNotFoundError says what is missing, this says how to install it.
    raise ImportError(
        "azure.communication.common.requests needs the requests library: "
        "pip install 'azure-communication-common[requests]'",
        name="requests",
    ) from None

from ._body import hash_body
from ._policy import AccessKey
from ._signing import format_date, sign
from ._url import canonicalize

__all__ = ["AccessKeyAuth"]


class AccessKeyAuth(requests.auth.AuthBase):
    """HMAC-SHA256 access-key authentication for requests (``auth=AccessKeyAuth(key)``).

    Each request is signed with the same core and the same canonical URL as
    :class:`~azure.communication.common.CommunicationAccessKeyCredentialPolicy`: the prepared URL is replaced
    by its canonical form and the body bytes are hashed. A str body is sent as UTF-8 (http.client would
    otherwise encode it as Latin-1); seekable binary files are hashed and rewound. Generators and other
    streams cannot be hashed without being consumed and are refused with ``ValueError``.

    requests does not re-run authentication on redirects, so a redirected request keeps the old signature;
    ACS does not redirect.

    Args:
        credential: an ``AzureKeyCredential`` (read on every request, so ``update()`` rotates the key) or the
            base64 access key itself.

    Raises:
        TypeError: ``credential`` is neither a key credential nor a string.
        ValueError: the key is not valid base64.
    """

    def __init__(self, credential: AzureKeyCredential | str, *, _clock: Callable[[], float] = time.time) -> None:
        self._key = AccessKey(credential)
        self._clock = _clock

    def __repr__(self) -> str:
        return "AccessKeyAuth(credential=***)"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Sign a prepared request (requests recomputes ``Content-Length`` from the body afterwards).

        Raises:
            ValueError: the body is a stream that cannot be hashed without being consumed, or the URL is not
                an absolute http(s) URL or holds user info (requests would send it as Basic auth instead of the
                signature: refused before anything is sent).
        """
        canonical = canonicalize(r.url or "")
        r.url = canonical.url
        body_hash, body = hash_body(r.body)
        if body is not None:
            # http.client would send a str as Latin-1; requests recomputes Content-Length from these bytes.
            r.body = body
        r.headers.update(
            sign(
                method=r.method or "GET",
                path_and_query=canonical.path_and_query,
                host=r.headers.get("Host") or canonical.host,
                body_hash=body_hash,
                key=self._key.decoded(),
                date=format_date(self._clock()),
            )
        )
        return r
