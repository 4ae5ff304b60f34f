"""The service's error shape, ``{"error": {"code", "message", "target"?, "innererror"?}}``, as an exception.

The shape is the Common documents' ``CommunicationErrorResponse``: ``innererror`` is itself a
``CommunicationError`` (``code`` and ``message`` required, other properties allowed), which is where the
explained 401s put what the emulator computed from the request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["HTTP_ERROR_CODES", "ApiError", "error_body"]

# Status codes for the aiohttp exceptions the router and the body reader raise, in the service's words.
HTTP_ERROR_CODES: Final = {
    400: "BadRequest",
    401: "Denied",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "RequestTimeout",
    413: "RequestEntityTooLarge",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
}

#: What a storage failure or an overloaded emulator tells clients to wait, in seconds.
DEFAULT_RETRY_AFTER: Final = 1


def error_body(
    code: str,
    message: str,
    *,
    target: str | None = None,
    innererror: Mapping[str, Any] | None = None,
) -> bytes:
    """Return the JSON bytes of an error response.

    Args:
        code: a short machine-readable code (``Denied``, ``ValidationError`` ...).
        message: a human-readable message; never a secret, never the expected signature.
        target: the request field the error is about, as the service names it.
        innererror: a nested ``CommunicationError`` (``code``, ``message`` and extra diagnostics).
    """
    error: dict[str, Any] = {"code": code, "message": message}
    if target is not None:
        error["target"] = target
    if innererror is not None:
        error["innererror"] = dict(innererror)
    return json.dumps({"error": error}).encode("utf-8")


class ApiError(Exception):
    """A request the emulator answers with a 4xx/5xx JSON error.

    Attributes:
        status: the HTTP status.
        code: the ``error.code`` value.
        message: the ``error.message`` value.
        target: the ``error.target`` value, or None.
        innererror: the ``error.innererror`` object, or None.
        headers: extra response headers (``Retry-After`` ...).
        verdict: for an authentication failure, the request log's verdict (``hmac: signature`` ...).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        innererror: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.innererror = innererror
        self.headers: dict[str, str] = dict(headers or {})
        self.verdict: str | None = None
        if status in (429, 503) and "Retry-After" not in self.headers:
            self.headers["Retry-After"] = str(DEFAULT_RETRY_AFTER)

    def body(self) -> bytes:
        """The JSON bytes of this error."""
        return error_body(self.code, self.message, target=self.target, innererror=self.innererror)

    @classmethod
    def bad_request(cls, message: str, code: str = "ValidationError", *, target: str | None = None) -> ApiError:
        """A 400 for a body or query that breaks a validation rule."""
        return cls(400, code, message, target=target)

    @classmethod
    def denied(cls, message: str, innererror: Mapping[str, Any] | None = None) -> ApiError:
        """A 401 for a request that fails authentication (the service's ``Denied`` code)."""
        return cls(401, "Denied", message, innererror=innererror)

    @classmethod
    def invalid_token(cls, detail: str | None = None) -> ApiError:
        """A 401 for an exchange whose Teams or Entra token is unusable.

        The message is the service's; ``detail`` (what exactly is wrong) goes into ``innererror``.
        """
        inner = None if detail is None else {"code": "InvalidAccessToken", "message": detail}
        return cls(401, "InvalidAccessToken", "Provided access token is not valid.", innererror=inner)

    @classmethod
    def not_found(cls, message: str = "The identity does not exist or was deleted.") -> ApiError:
        """A 404 for an unknown or deleted identity."""
        return cls(404, "IdentityNotFound", message)

    @classmethod
    def unavailable(cls, message: str) -> ApiError:
        """A 503 ``ServiceUnavailable`` (with ``Retry-After``) for a failure the client may retry."""
        return cls(503, "ServiceUnavailable", message)
