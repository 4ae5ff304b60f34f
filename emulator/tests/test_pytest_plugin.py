"""The pytest plugin, used the way a project uses it: a test file run by ``pytest`` in a subprocess.

The inner file creates users with the official identity client, sets chaos rules, and checks that the next
test sees none of it; two tests marked ``acs_emulator_shared`` share a user; the last one leaves a user
behind on purpose, so that the outer test can see which emulator the inner run used. It runs twice: with an
in-process emulator (no option), and against an emulator this test started (``ACS_EMULATOR_CONNECTION_STRING``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from acs_emulator import Emulator, pytest_plugin
from acs_emulator._control_client import ControlClient, EmulatorTarget, parse_connection_string
from acs_emulator.pytest_plugin import resolve_target

KEY = "cGx1Z2luLXRlc3Qta2V5LW5vdC1hLXJlYWwtb25lLTAxMjM0NTY3"

INNER = """
import json
import os

import pytest
from azure.communication.identity import CommunicationIdentityClient
from azure.core.credentials import AzureKeyCredential


def client(emu):
    return CommunicationIdentityClient(
        emu.endpoint, AzureKeyCredential(emu.access_key), connection_verify=emu.ca_bundle or True
    )


def test_a_test_creates_users_and_a_chaos_rule(acs_emulator):
    with open(os.environ["MODE_FILE"], "w") as mode:
        json.dump({"endpoint": acs_emulator.endpoint, "in_process": acs_emulator.emulator is not None}, mode)
    client(acs_emulator).create_user()
    client(acs_emulator).create_user()
    acs_emulator.set_chaos([{"method": "DELETE", "path": "*", "status": 503}])
    assert len(acs_emulator.identities()) == 2


def test_the_next_test_sees_none_of_it(acs_emulator, acs_connection_string):
    assert acs_emulator.identities() == []
    assert acs_emulator.requests() == []
    assert acs_emulator.chaos() == []
    assert acs_connection_string == acs_emulator.connection_string
    assert acs_connection_string.startswith("endpoint=" + acs_emulator.endpoint + "/;accesskey=")


@pytest.mark.acs_emulator_shared
def test_shared_one(acs_emulator):
    client(acs_emulator).create_user()


@pytest.mark.acs_emulator_shared
def test_shared_two_sees_the_first_ones_user(acs_emulator):
    assert len(acs_emulator.identities()) == 1


def test_after_the_shared_tests_all_is_clean_again(acs_emulator):
    assert acs_emulator.identities() == []


@pytest.mark.acs_emulator_shared
def test_zz_leaves_a_user_behind(acs_emulator_shared):
    client(acs_emulator_shared).create_user()
"""


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, autoload: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the inner file; ``autoload=False`` loads only this plugin (2 s less of other plugins' imports)."""
    (tmp_path / "test_inner.py").write_text(INNER)
    ini = "[pytest]\nfilterwarnings = error\n"
    (tmp_path / "pytest.ini").write_text(ini + ("asyncio_default_fixture_loop_scope = function\n" if autoload else ""))
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("ACS_EMULATOR_", "PYTEST_", "COV_"))
    }
    environment.update({"MODE_FILE": str(tmp_path / "mode.json"), **(env or {})})
    plugins = ["-p", "no:cov"] if autoload else ["-p", "pytest_acs_emulator"]
    if not autoload:
        environment["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins, *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_in_process_mode_loaded_by_its_entry_point(tmp_path: Path) -> None:
    result = _run(tmp_path, "test_inner.py", "-v")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout
    assert "acs-emulator: in-process emulator" in result.stdout
    mode = json.loads((tmp_path / "mode.json").read_text())
    assert mode["in_process"] is True
    assert mode["endpoint"].startswith("http://127.0.0.1:")


def test_already_running_mode_through_the_environment(tmp_path: Path) -> None:
    with Emulator(access_key=KEY) as emu:
        control = ControlClient(EmulatorTarget(emu.endpoint, emu.access_key))
        control.set_chaos([{"path": "/left-over", "status": 500}])
        result = _run(
            tmp_path,
            "test_inner.py",
            "-v",
            env={"ACS_EMULATOR_CONNECTION_STRING": emu.connection_string},
            autoload=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "6 passed" in result.stdout
        assert f"acs-emulator: the running emulator at {emu.endpoint}" in result.stdout
        assert KEY not in result.stdout + result.stderr
        mode = json.loads((tmp_path / "mode.json").read_text())
        assert mode == {"endpoint": emu.endpoint, "in_process": False}
        # The inner run reset this emulator (its chaos rule is gone) and its last test left one user here.
        assert control.chaos() == []
        assert len(control.identities()) == 1


class _Config:
    """What the plugin's ``pytest_configure`` reads of a ``pytest.Config``."""

    def __init__(self, **options: object) -> None:
        self.options = options
        self.stash = pytest.Stash()
        self.lines: list[tuple[str, str]] = []

    def getoption(self, name: str, default: object = None) -> object:
        return self.options.get(name, default)

    def addinivalue_line(self, name: str, line: str) -> None:
        self.lines.append((name, line))


def test_bad_options_are_one_line_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACS_EMULATOR_ACCESS_KEY", raising=False)
    config: Any = _Config(acs_emulator_url="http://127.0.0.1:9")
    with pytest.raises(pytest.UsageError, match=r"^acs-emulator: --acs-emulator-url needs --acs-emulator-key"):
        pytest_plugin.pytest_configure(config)
    assert config.lines[0][0] == "markers"
    assert config.lines[0][1].startswith("acs_emulator_shared:")
    good: Any = _Config(acs_emulator_url="http://127.0.0.1:9", acs_emulator_key=KEY)
    pytest_plugin.pytest_configure(good)
    assert pytest_plugin.pytest_report_header(good) == "acs-emulator: the running emulator at http://127.0.0.1:9"


def test_resolve_target_precedence_and_errors() -> None:
    none: dict[str, str] = {}
    assert resolve_target(connection_string=None, url=None, key=None, ca_bundle=None, environ=none) is None
    from_option = resolve_target(
        connection_string=f"endpoint=https://127.0.0.1:1/;accesskey={KEY}",
        url="http://127.0.0.1:2",
        key=KEY,
        ca_bundle="/ca.pem",
        environ={"ACS_EMULATOR_CONNECTION_STRING": f"endpoint=http://127.0.0.1:3/;accesskey={KEY}"},
    )
    assert from_option == EmulatorTarget("https://127.0.0.1:1", KEY, "/ca.pem")
    from_url = resolve_target(
        connection_string=None,
        url="http://127.0.0.1:2/",
        key=None,
        ca_bundle=None,
        environ={"ACS_EMULATOR_ACCESS_KEY": KEY, "ACS_EMULATOR_CA_BUNDLE": "/env-ca.pem"},
    )
    assert from_url == EmulatorTarget("http://127.0.0.1:2", KEY, "/env-ca.pem")
    from_env = resolve_target(
        connection_string=None,
        url=None,
        key=None,
        ca_bundle=None,
        environ={"ACS_EMULATOR_CONNECTION_STRING": f"Endpoint=http://127.0.0.1:3/;AccessKey={KEY}"},
    )
    assert from_env is not None
    assert from_env.endpoint == "http://127.0.0.1:3"
    assert KEY not in repr(from_env)
    with pytest.raises(ValueError, match="needs --acs-emulator-url"):
        resolve_target(connection_string=None, url=None, key=KEY, ca_bundle=None, environ=none)
    with pytest.raises(ValueError, match=r"endpoint=\.\.\.;accesskey="):
        parse_connection_string("endpoint=http://127.0.0.1:3/")
    with pytest.raises(ValueError, match="http"):
        EmulatorTarget("ftp://127.0.0.1", KEY)
    with pytest.raises(ValueError, match="not valid base64") as bad_key:
        EmulatorTarget("http://127.0.0.1:1", "not base64!")
    assert "not base64!" not in str(bad_key.value)
    with pytest.raises(ValueError, match="empty"):
        EmulatorTarget("http://127.0.0.1:1", "")


def test_the_control_client_reports_an_emulator_that_does_not_answer() -> None:
    with Emulator() as emu:
        endpoint = emu.endpoint
    client = ControlClient(EmulatorTarget(endpoint, KEY), timeout=2)
    assert "already running" in repr(client)
    with pytest.raises(RuntimeError, match="No acs-emulator answers at"):
        client.health()
