"""The ``pytest11`` entry point of acs-emulator, named ``acs_emulator`` (``-p no:acs_emulator`` turns it off).

pytest imports entry-point plugins before coverage measurement starts. Importing the ``acs_emulator``
package here would run its module-level code unmeasured, in the coverage report of every project that
tests with the plugin. So this module imports nothing of it: it adds the command-line options, and
registers :mod:`acs_emulator.pytest_plugin` (the fixtures, the marker) once pytest is configured.
"""

from __future__ import annotations

import pytest

__all__ = ["pytest_addoption", "pytest_configure"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """The options that point the fixtures at an emulator that is already running."""
    group = parser.getgroup("acs-emulator", "acs-emulator fixtures (acs_emulator, acs_connection_string)")
    group.addoption(
        "--acs-emulator-connection-string",
        metavar="CS",
        help="use the running emulator of this connection string (default: $ACS_EMULATOR_CONNECTION_STRING; "
        "without either, the fixtures start one in-process)",
    )
    group.addoption("--acs-emulator-url", metavar="URL", help="use the running emulator at URL (with a key)")
    group.addoption(
        "--acs-emulator-key",
        metavar="KEY",
        help="the access key of --acs-emulator-url (default: $ACS_EMULATOR_ACCESS_KEY)",
    )
    group.addoption(
        "--acs-emulator-ca-bundle",
        metavar="PEM",
        help="the CA bundle of a running HTTPS emulator (default: $ACS_EMULATOR_CA_BUNDLE)",
    )
    group.addoption(
        "--acs-emulator-https",
        action="store_true",
        default=False,
        help="serve the in-process emulator over HTTPS (its CA bundle is acs_emulator.ca_bundle)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register the fixtures module (it imports ``acs_emulator``, now that coverage may be measuring)."""
    from acs_emulator import pytest_plugin

    if not config.pluginmanager.is_registered(pytest_plugin):
        config.pluginmanager.register(pytest_plugin, "acs_emulator.fixtures")
