"""The Emulator object: arguments, start/stop in a thread and on a loop, properties, reprs."""

from __future__ import annotations

import asyncio
import socket

import pytest

from acs_emulator import Emulator
from acs_emulator._server import _host_for_url
from emulator_support import VERSION, send

KEY = "bGlmZWN5Y2xlLXRlc3Qta2V5LWZvci1lbXVsYXRvcg=="


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"access_key": "not base64!"}, "not valid base64"),
        ({"access_key": ""}, "empty"),
        ({"host": ""}, "host"),
        ({"port": -1}, "port"),
        ({"port": 70000}, "port"),
        ({"port": True}, "port"),
        ({"latency": -0.1}, "latency"),
        ({"latency": float("inf")}, "latency"),
        ({"fail_rate": 1.01}, "fail_rate"),
        ({"retry_after": -1}, "retry_after"),
        ({"retry_after": 1.5}, "retry_after"),
        ({"resource_id": "not-a-guid"}, "GUID"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        Emulator(**kwargs)  # type: ignore[arg-type]
    assert "not base64!" not in str(info.value)


def test_properties_and_repr_hide_the_key() -> None:
    emu = Emulator(KEY, resource_id="12345678-1234-1234-1234-123456789ABC")
    assert emu.access_key == KEY
    assert emu.resource_id == "12345678-1234-1234-1234-123456789abc"
    assert "not started" in repr(emu)
    for name in ("endpoint", "connection_string", "jwks_url", "port"):
        with pytest.raises(RuntimeError, match="not running"):
            getattr(emu, name)
    with pytest.raises(RuntimeError, match="not running"):
        emu._identity_rows()
    assert emu.unexpected_errors == 0
    with emu:
        assert emu.endpoint == f"http://127.0.0.1:{emu.port}"
        assert emu.connection_string == f"endpoint={emu.endpoint}/;accesskey={KEY}"
        assert emu.endpoint in repr(emu)
        assert KEY not in repr(emu)
        assert KEY not in str(emu)
    assert "not started" in repr(emu)


def test_generated_keys_are_32_random_bytes() -> None:
    import base64

    first, second = Emulator(), Emulator()
    assert len(base64.b64decode(first.access_key)) == 32
    assert first.access_key != second.access_key


def test_start_twice_stop_twice_and_restart() -> None:
    emu = Emulator(KEY).start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            emu.start()
        first_port = emu.port
        assert send(first_port, "POST", f"/identities?api-version={VERSION}", {}, key=KEY).status == 201
    finally:
        emu.stop()
    emu.stop()  # idempotent
    with pytest.raises(OSError):
        send(first_port, "GET", "/.well-known/jwks.json", unsigned=True)
    # A stopped emulator starts again (in-memory: with an empty database).
    with emu:
        assert emu._identity_rows() == []


def test_a_port_in_use_raises_and_leaves_it_stopped() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        emu = Emulator(port=taken.getsockname()[1])
        with pytest.raises(OSError):
            emu.start()
    with pytest.raises(RuntimeError):
        emu.endpoint  # noqa: B018
    emu.stop()  # nothing to stop


async def test_async_with_runs_on_the_current_loop() -> None:
    emu = Emulator(KEY)
    async with emu:
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(
            None, lambda: send(emu.port, "POST", f"/identities?api-version={VERSION}", {}, key=KEY)
        )
        assert reply.status == 201
        with pytest.raises(RuntimeError, match="already running"):
            await emu.astart()
        with pytest.raises(RuntimeError, match="async with"):
            emu.stop()
    await emu.astop()  # idempotent
    with pytest.raises(RuntimeError):
        emu.endpoint  # noqa: B018


async def test_async_start_failure_closes_the_database() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        emu = Emulator(port=taken.getsockname()[1])
        with pytest.raises(OSError):
            await emu.astart()
    with pytest.raises(RuntimeError):
        emu._identity_rows()


def test_stop_from_the_emulators_own_thread_is_refused() -> None:
    with Emulator() as emu:
        loop = emu._loop
        assert loop is not None
        future = asyncio.run_coroutine_threadsafe(_call_stop(emu), loop)
        with pytest.raises(RuntimeError, match="own thread"):
            future.result(10)


async def _call_stop(emu: Emulator) -> None:
    emu.stop()


def test_host_for_url() -> None:
    assert _host_for_url("127.0.0.1") == "127.0.0.1"
    assert _host_for_url("::1") == "[::1]"
    assert _host_for_url("localhost") == "localhost"


def test_an_ipv6_loopback_endpoint() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        emu = Emulator(KEY, host="::1").start()
    except OSError:
        pytest.skip("::1 cannot be bound here")
    try:
        assert emu.endpoint == f"http://[::1]:{emu.port}"
    finally:
        emu.stop()
