"""pytest fixtures for testing against the emulator: ``acs_emulator`` and ``acs_connection_string``.

Installed with acs-emulator and loaded by its ``pytest11`` entry point (``acs_emulator``; the options live in
the small entry-point module ``pytest_acs_emulator``, which registers this one once pytest is configured)::

    from azure.communication.identity import CommunicationIdentityClient
    from azure.core.credentials import AzureKeyCredential

    def test_create_user(acs_emulator):
        client = CommunicationIdentityClient(acs_emulator.endpoint, AzureKeyCredential(acs_emulator.access_key))
        user = client.create_user()
        assert [i["id"] for i in acs_emulator.identities()] == [user.properties["id"]]

- One emulator serves the whole session: started in-process on first use (``--acs-emulator-https`` for
  TLS), or the one already running that ``--acs-emulator-connection-string``, ``--acs-emulator-url`` with
  ``--acs-emulator-key`` (or ``$ACS_EMULATOR_ACCESS_KEY``), or ``$ACS_EMULATOR_CONNECTION_STRING`` names
  (``--acs-emulator-ca-bundle`` or ``$ACS_EMULATOR_CA_BUNDLE`` for an HTTPS one).
- Nothing leaks between tests: ``acs_emulator`` resets the emulator (``POST /_emulator/reset``: identities,
  tokens, chat data, the request log, the chaos rules) before and after each test that uses it.
- Shared state on request: a test marked ``@pytest.mark.acs_emulator_shared`` is not reset around, and the
  session-scoped ``acs_emulator_shared`` fixture (for module- or session-scoped fixtures) never resets.

The fixtures' value is a :class:`ControlClient`: ``endpoint``, ``access_key``, ``connection_string``,
``ca_bundle``, the control-plane calls (``requests()``, ``identities()``, ``chat_threads()``, ``reset()``,
``chaos()``, ``set_chaos(rules)``) and ``emulator``, the in-process :class:`~acs_emulator.Emulator` or None.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import pytest

from ._control_client import ControlClient, EmulatorTarget, parse_connection_string

__all__ = [
    "CA_BUNDLE_ENV",
    "CONNECTION_STRING_ENV",
    "SHARED_MARKER",
    "ControlClient",
    "acs_connection_string",
    "acs_emulator",
    "acs_emulator_shared",
    "resolve_target",
]

#: The environment variable naming an emulator that is already running.
CONNECTION_STRING_ENV = "ACS_EMULATOR_CONNECTION_STRING"
#: The environment variable naming the CA bundle of an HTTPS emulator that is already running.
CA_BUNDLE_ENV = "ACS_EMULATOR_CA_BUNDLE"
#: The marker of tests that share the emulator's state with others (no reset around them).
SHARED_MARKER = "acs_emulator_shared"

_ACCESS_KEY_ENV = "ACS_EMULATOR_ACCESS_KEY"
_TARGET = pytest.StashKey["EmulatorTarget | None"]()


def resolve_target(
    *,
    connection_string: str | None,
    url: str | None,
    key: str | None,
    ca_bundle: str | None,
    environ: Mapping[str, str],
) -> EmulatorTarget | None:
    """Which running emulator the options name, or None for an in-process one.

    Precedence: ``--acs-emulator-connection-string``, then ``--acs-emulator-url`` (with
    ``--acs-emulator-key`` or ``$ACS_EMULATOR_ACCESS_KEY``), then ``$ACS_EMULATOR_CONNECTION_STRING``.

    Raises:
        ValueError: the options are incomplete or malformed (the key is never quoted).
    """
    ca = ca_bundle or environ.get(CA_BUNDLE_ENV) or None
    if connection_string:
        return parse_connection_string(connection_string, ca)
    if url:
        access_key = key or environ.get(_ACCESS_KEY_ENV)
        if not access_key:
            raise ValueError(f"--acs-emulator-url needs --acs-emulator-key (or ${_ACCESS_KEY_ENV}).")
        return EmulatorTarget(url, access_key, ca)
    if key:
        raise ValueError("--acs-emulator-key needs --acs-emulator-url.")
    from_env = environ.get(CONNECTION_STRING_ENV)
    if from_env:
        return parse_connection_string(from_env, ca)
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and check the options now, so a mistake is one line before any test runs."""
    config.addinivalue_line(
        "markers", f"{SHARED_MARKER}: the acs_emulator fixture does not reset the emulator around this test"
    )
    try:
        config.stash[_TARGET] = resolve_target(
            connection_string=config.getoption("acs_emulator_connection_string", None),
            url=config.getoption("acs_emulator_url", None),
            key=config.getoption("acs_emulator_key", None),
            ca_bundle=config.getoption("acs_emulator_ca_bundle", None),
            environ=os.environ,
        )
    except ValueError as exc:
        raise pytest.UsageError(f"acs-emulator: {exc}") from None


def pytest_report_header(config: pytest.Config) -> str:
    """Say which emulator the fixtures use (never the key)."""
    target = config.stash.get(_TARGET, None)
    if target is None:
        return "acs-emulator: in-process emulator, started when a test first asks for it"
    return f"acs-emulator: the running emulator at {target.endpoint}"


@pytest.fixture(scope="session")
def acs_emulator_shared(pytestconfig: pytest.Config) -> Iterator[ControlClient]:
    """The session's emulator, never reset (for fixtures and tests that share state on purpose)."""
    target = pytestconfig.stash.get(_TARGET, None)
    if target is not None:
        client = ControlClient(target)
        client.health()  # a clear error now beats a connection error inside the first test
        yield client
        return
    from ._server import Emulator

    emulator = Emulator(https=bool(pytestconfig.getoption("acs_emulator_https", False)))
    emulator.start()
    try:
        yield ControlClient(
            EmulatorTarget(emulator.endpoint, emulator.access_key, emulator.ca_bundle), emulator=emulator
        )
    finally:
        emulator.stop()


@pytest.fixture
def acs_emulator(request: pytest.FixtureRequest, acs_emulator_shared: ControlClient) -> Iterator[ControlClient]:
    """The session's emulator, reset before and after the test (unless it is marked ``acs_emulator_shared``)."""
    shared = request.node.get_closest_marker(SHARED_MARKER) is not None
    if not shared:
        acs_emulator_shared.reset()
    yield acs_emulator_shared
    if not shared:
        acs_emulator_shared.reset()


@pytest.fixture
def acs_connection_string(acs_emulator: ControlClient) -> str:
    """The connection string of the test's (reset) emulator: ``endpoint=...;accesskey=...``."""
    return acs_emulator.connection_string
