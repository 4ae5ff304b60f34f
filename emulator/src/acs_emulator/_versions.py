"""Which Identity operations each api-version serves, after the published OpenAPI documents.

The documents vendored with the tests (``emulator/tests/specs/Identity``) decide the sets of
``2023-10-01``, ``2025-03-02-preview``, ``2025-06-30`` and ``2026-09-23``. The older versions have no
document here; they serve what ``2023-10-01`` serves, as the emulator always did. A request whose version
does not serve its operation is answered as ASP.NET API versioning (what the service runs) answers it: 405
when the route serves other methods on that version, else 400 ``UnsupportedApiVersion``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from ._errors import ApiError

__all__ = [
    "API_VERSIONS",
    "NEWEST_STABLE",
    "OPERATIONS",
    "check_api_version",
    "serves",
    "supported_versions",
]

#: Every Identity operation, by name, with its route template and method.
OPERATIONS: Final[Mapping[str, tuple[str, str]]] = {
    "create": ("POST", "/identities"),
    "get": ("GET", "/identities/{id}"),
    "delete": ("DELETE", "/identities/{id}"),
    "issue": ("POST", "/identities/{id}/:issueAccessToken"),
    "revoke": ("POST", "/identities/{id}/:revokeAccessTokens"),
    "teams_exchange": ("POST", "/teamsUser/:exchangeAccessToken"),
    "teams_extension_exchange": ("POST", "/access/teamsExtension/:exchangeAccessToken"),
    "teams_extension_assignment_get": ("GET", "/access/teamsExtension/tenants/{tenantId}/assignments/{objectId}"),
    "teams_extension_assignment_put": ("PUT", "/access/teamsExtension/tenants/{tenantId}/assignments/{objectId}"),
    "teams_extension_assignment_delete": (
        "DELETE",
        "/access/teamsExtension/tenants/{tenantId}/assignments/{objectId}",
    ),
    "entra_exchange": ("POST", "/access/entra/:exchangeAccessToken"),
    "entra_assignments_list": ("GET", "/access/entra/assignments"),
    "entra_assignments_update": ("PATCH", "/access/entra/assignments"),
    "entra_assignment_get": ("GET", "/access/entra/assignments/{objectId}"),
    "entra_assignment_put": ("PUT", "/access/entra/assignments/{objectId}"),
    "entra_assignment_delete": ("DELETE", "/access/entra/assignments/{objectId}"),
    # Not a route: ``customId`` in the create body (ignored, like any unknown property, where not served).
    "custom_id": ("", ""),
}

_CLASSIC: Final = frozenset({"create", "delete", "issue", "revoke", "teams_exchange"})
_TEAMS_EXTENSION: Final = frozenset(
    {
        "teams_extension_exchange",
        "teams_extension_assignment_get",
        "teams_extension_assignment_put",
        "teams_extension_assignment_delete",
    }
)
_PREVIEW_ONLY: Final = frozenset(
    {
        "get",
        "custom_id",
        "entra_exchange",
        "entra_assignments_list",
        "entra_assignments_update",
        "entra_assignment_get",
        "entra_assignment_put",
        "entra_assignment_delete",
    }
)
_EVERYTHING: Final = frozenset(OPERATIONS)

#: Every Identity api-version the emulator serves, with the operations of each.
API_VERSIONS: Final[Mapping[str, frozenset[str]]] = {
    "2021-03-07": _CLASSIC,
    "2021-10-31-preview": _CLASSIC,
    "2021-11-01": _CLASSIC,
    "2022-06-01": _CLASSIC,
    "2022-10-01": _CLASSIC,
    "2023-08-01": _CLASSIC,
    "2023-10-01": _CLASSIC,
    "2025-03-02-preview": _CLASSIC | _TEAMS_EXTENSION | _PREVIEW_ONLY,
    "2025-06-30": _CLASSIC | _TEAMS_EXTENSION,
    "2026-09-23": _CLASSIC | _TEAMS_EXTENSION,
}

#: The newest stable version (the ``--loose`` behaviour for versions the emulator does not know is the
#: union of every operation, each with its newest behaviour).
NEWEST_STABLE: Final = "2026-09-23"

_SHOWN_VERSION: Final = re.compile(r"[0-9A-Za-z.-]{1,40}")


def _supported(operation: str) -> str:
    return ", ".join(v for v, ops in API_VERSIONS.items() if operation in ops)


_SUPPORTED: Final[Mapping[str, str]] = {name: _supported(name) for name in OPERATIONS}


def supported_versions(operation: str) -> str:
    """The ``api-supported-versions`` header value of an operation."""
    return _SUPPORTED[operation]


def serves(version: str, operation: str, *, loose: bool = False) -> bool:
    """Whether ``version`` serves ``operation`` (any unknown version serves everything with ``loose``)."""
    operations = API_VERSIONS.get(version)
    if operations is None:
        return loose
    return operation in operations


def check_api_version(values: Sequence[str], operation: str, *, loose: bool = False) -> str:
    """Return the single ``api-version`` query value, raising the service's error when it cannot be served.

    Args:
        values: every ``api-version`` value of the query.
        operation: the operation the route resolved to (a key of :data:`OPERATIONS`).
        loose: accept any version (``--loose``): an unknown one serves every operation.

    Raises:
        ApiError: 400 ``MissingApiVersionParameter`` / ``InvalidApiVersionParameter`` (given twice),
            405 for a method the version serves elsewhere on the route, else 400 ``UnsupportedApiVersion``.
    """
    if not values:
        raise ApiError.bad_request("The api-version query parameter is required.", code="MissingApiVersionParameter")
    if len(values) > 1:
        raise ApiError.bad_request(
            "The api-version query parameter must be given once.", code="InvalidApiVersionParameter"
        )
    version = values[0]
    operations = API_VERSIONS.get(version)
    if operations is None:
        if loose:
            return version
        operations = frozenset()
    if operation in operations:
        return version
    method, route = OPERATIONS[operation]
    allowed = sorted({m for name, (m, r) in OPERATIONS.items() if r == route and name in operations})
    if allowed:
        raise ApiError(
            405,
            "MethodNotAllowed",
            f"The requested resource does not support http method '{method}' in API version '{version}'.",
            headers={"Allow": ", ".join(allowed)},
        )
    shown = f"'{version}'" if _SHOWN_VERSION.fullmatch(version) else f"given (length {len(version)})"
    raise ApiError.bad_request(
        f"The HTTP resource that matches the request URI '{route}' does not support the API version {shown}.",
        code="UnsupportedApiVersion",
    )
