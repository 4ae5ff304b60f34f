"""The service's error shape, ``{"error": {"code", "message"}}``, as an exception the handlers raise."""

from __future__ import annotations

import json
from typing import Final

__all__ = ["ApiError", "error_body"]

# Status codes for the aiohttp exceptions the router and the body reader raise, in the service's words.
HTTP_ERROR_CODES: Final = {
    400: "BadRequest",
    401: "Denied",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "RequestEntityTooLarge",
    503: "ServiceUnavailable",
}


def error_body(code: str, message: str) -> bytes:
    """Return the JSON bytes of an error response.

    Args:
        code: a short machine-readable code (``Denied``, ``ValidationError`` ...).
        message: a human-readable message; never a secret, never the expected signature.
    """
    return json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")


class ApiError(Exception):
    """A request the emulator answers with a 4xx/5xx JSON error.

    Attributes:
        status: the HTTP status.
        code: the ``error.code`` value.
        message: the ``error.message`` value.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def bad_request(cls, message: str, code: str = "ValidationError") -> ApiError:
        """A 400 for a body or query that breaks a validation rule."""
        return cls(400, code, message)

    @classmethod
    def denied(cls, message: str) -> ApiError:
        """A 401 for a request that fails authentication (the service's ``Denied`` code)."""
        return cls(401, "Denied", message)

    @classmethod
    def invalid_token(cls, message: str) -> ApiError:
        """A 401 for an exchange whose Teams or Entra token is unusable."""
        return cls(401, "InvalidAccessToken", message)

    @classmethod
    def not_found(cls, message: str = "The identity does not exist or was deleted.") -> ApiError:
        """A 404 for an unknown or deleted identity."""
        return cls(404, "IdentityNotFound", message)
