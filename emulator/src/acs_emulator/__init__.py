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

From a shell: ``python -m acs_emulator --port 0`` (or ``acs-common emulator``)
prints the endpoint and a connection string, and serves until SIGINT/SIGTERM.

Routes (every published api-version from 2021-03-07 to 2025-06-30, see ``API_VERSIONS``; unknown -> 400;
``customId`` and ``GET /identities/{id}``, 2025-03-02-preview features, are accepted with any of them):

- ``POST /identities``, ``GET|DELETE /identities/{id}``, ``POST /identities/{id}/:issueAccessToken``,
  ``POST /identities/{id}/:revokeAccessTokens``, ``POST /teamsUser/:exchangeAccessToken`` (HMAC).
- ``POST /access/entra/:exchangeAccessToken`` and ``POST /access/teamsExtension/:exchangeAccessToken``
  (``Authorization: Bearer <Entra ID JWT>``; api-version 2025-03-02-preview or 2025-06-30).
- ``GET /.well-known/jwks.json``: the public key that validates the emulator's tokens.

Limitations (it is an emulator): the signatures of Teams and Entra ID tokens given to the exchange
routes are not verified (only their claims are read: ``appid``/``azp``, ``oid``, ``tid``, ``exp``); the
token-signing key is new for every ``Emulator`` object, so tokens from a previous run do not validate;
with a database file the access key is not stored (pass the same key again). The one place the
emulator's generated key is printed is the CLI's start-up banner, because the user asked for it.
Fault injection (``latency``, ``fail_rate``, ``retry_after``) applies to every route but the JWKS.
"""

from ._app import JWKS_PATH, MAX_BODY_SIZE
from ._auth import MAX_CLOCK_SKEW
from ._cli import ACCESS_KEY_ENV, DEFAULT_PORT, add_cli_arguments, run_cli
from ._server import Emulator
from ._validation import API_VERSIONS, SCOPES

__all__ = [
    "ACCESS_KEY_ENV",
    "API_VERSIONS",
    "DEFAULT_PORT",
    "JWKS_PATH",
    "MAX_BODY_SIZE",
    "MAX_CLOCK_SKEW",
    "SCOPES",
    "Emulator",
    "add_cli_arguments",
    "run_cli",
]
