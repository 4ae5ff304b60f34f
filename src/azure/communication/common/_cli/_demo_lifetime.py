"""A per-call policy for the official identity client: ask the emulator for a token lifetime in seconds.

Its own module because it subclasses azure-core's policy: the CLI's offline commands must not import azure-core.
"""

from __future__ import annotations

import json
from typing import Any, Final

from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.rest import HttpRequest

__all__ = ["LIFETIME_OPTION", "LifetimePolicy"]

#: The keyword a caller passes to the identity client's ``get_token``, read (and removed) by the policy.
LIFETIME_OPTION: Final = "acs_demo_expires_in_seconds"


class LifetimePolicy(SansIOHTTPPolicy[Any, Any]):
    """Rewrites the body of an issue-token call that asked for a lifetime in seconds.

    The official client can only ask for whole minutes (``token_expires_in``); the emulator's short-token
    switch also takes ``expiresInSeconds``. A call that passes ``acs_demo_expires_in_seconds=N`` gets its
    body rewritten before it is signed (per-call policies run before the client's authentication policy).
    """

    def on_request(self, request: Any) -> None:
        """Replace ``expiresInMinutes`` with ``expiresInSeconds`` when the call asked for seconds."""
        seconds = request.context.options.pop(LIFETIME_OPTION, None)
        if seconds is None:
            return
        original = request.http_request
        body = json.loads(original.content)
        body.pop("expiresInMinutes", None)
        body["expiresInSeconds"] = int(seconds)
        headers = {k: v for k, v in original.headers.items() if k.lower() != "content-length"}
        request.http_request = HttpRequest(original.method, original.url, headers=headers, json=body)
