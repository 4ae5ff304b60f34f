"""A local Azure Communication Services Identity emulator, for offline development and tests.

Like Azurite for Storage: a real HTTP server that speaks the Identity REST API the official clients
call, authenticates HMAC-SHA256 signed requests with its access key, and issues RS256 tokens shaped like
the service's. It needs the ``emulator`` extra (aiohttp, PyJWT with cryptography); the library itself
never imports this package.

In process::

    from acs_emulator import Emulator

    with Emulator() as emu:                    # or: emu = Emulator().start(); ...; emu.stop()
        client = CommunicationIdentityClient(emu.endpoint, AzureKeyCredential(emu.access_key))

    async with Emulator() as emu:              # on the current event loop
        ...

From a shell: ``acs-emulator --port 0`` (or ``acs-common emulator``; ``--https`` for TLS, ``--loose`` for any
api-version) prints the endpoint, a connection string, the CA bundle, the JWKS, inspector and control-plane
URLs, and serves until SIGINT/SIGTERM.

Routes, each on the api-versions whose published document has it (``2021-03-07`` ... ``2023-10-01``,
``2025-03-02-preview``, ``2025-06-30``, ``2026-09-23``; see ``API_VERSIONS``; an unknown version or one
without the route gets the service's 400 or 405):

- ``POST /identities``, ``DELETE /identities/{id}``, ``POST /identities/{id}/:issueAccessToken``,
  ``POST /identities/{id}/:revokeAccessTokens``, ``POST /teamsUser/:exchangeAccessToken`` (HMAC; all versions).
- ``GET|PUT|DELETE /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`` (HMAC) and
  ``POST /access/teamsExtension/:exchangeAccessToken`` (``Authorization: Bearer <Entra ID JWT>``):
  2025-03-02-preview, 2025-06-30, 2026-09-23.
- ``GET /identities/{id}``, ``customId`` on create, ``POST /access/entra/:exchangeAccessToken`` (bearer) and
  the Entra assignments (``GET|PATCH /access/entra/assignments``, ``GET|PUT|DELETE
  /access/entra/assignments/{objectId}``): 2025-03-02-preview only.
- ``GET /.well-known/jwks.json``: the public key that validates the emulator's tokens.

A failed HMAC check is a 401 whose ``error.innererror`` holds the ``stringToSign``, ``contentHash`` and
``host`` computed from the received request (never the expected signature or the key).

Limitations (it is an emulator): the signatures of Teams and Entra ID tokens given to the exchange
routes are not verified (only their claims are read, with PyJWT: ``appid``/``azp``, ``oid``, ``tid``,
``exp``); assignments are stored and served but do not gate the exchanges; the token-signing key is new
for every ``Emulator`` object, so tokens from a previous run do not validate; with a database file the
access key is not stored (pass the same key again). The one place the
emulator's generated key is printed is the CLI's start-up banner, because the user asked for it.
Fault injection (``latency``, ``fail_rate``, ``retry_after``) applies to every route but the JWKS.
"""

from ._app import JWKS_PATH, MAX_BODY_SIZE
from ._auth import MAX_CLOCK_SKEW
from ._cli import ACCESS_KEY_ENV, DEFAULT_PORT, add_cli_arguments, run_cli
from ._server import LOOSE_ENV, Emulator
from ._store import StorageError
from ._validation import API_VERSIONS, SCOPES

__all__ = [
    "ACCESS_KEY_ENV",
    "API_VERSIONS",
    "DEFAULT_PORT",
    "JWKS_PATH",
    "LOOSE_ENV",
    "MAX_BODY_SIZE",
    "MAX_CLOCK_SKEW",
    "SCOPES",
    "Emulator",
    "StorageError",
    "add_cli_arguments",
    "run_cli",
]
