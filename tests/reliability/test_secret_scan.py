"""The secret scan of the suite-wide conftest.py finds what it should, and only that.

These tests drive private instances of the registry and the record keeper (built from the session's
fixtures' types), so the planted leaks never reach the session-wide scan.
"""

from __future__ import annotations

import base64
import builtins
import logging
import sys
from typing import Any

import pytest

# Auto-registered by the conftest from this module's source (a connection string and a key credential).
CONNECTION_STRING = "endpoint=https://scan.example/;accesskey=c2NhbnNlY3JldGtleQ=="
KEY_LITERAL = 'AzureKeyCredential("bGl0ZXJhbGtleTEyMzQ=")'
PLANTED = "c2VjcmV0LXBsYW50ZWQtaW4tYS10ZXN0"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2lnbmF0dXJl"
# Module constants named like secrets are registered too, computed or not; ordinary words are not.
COMPUTED_KEY = base64.b64encode(b"computed at import time").decode()
FIELD_KEYS = ("endpoint", "accesskey", "communicationUser")
ACCESS_TOKEN_LIFETIME = 3600.0


@pytest.fixture
def registry(secret_registry: Any) -> Any:
    return type(secret_registry)()


@pytest.fixture
def keeper(kept_log_records: Any) -> Any:
    keeper = type(kept_log_records)()
    logger = logging.getLogger("tests.reliability.scan.private")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(keeper)
    yield keeper
    logger.removeHandler(keeper)


def test_long_secret_found_anywhere_and_reported_without_its_text(registry: Any) -> None:
    registry.register(PLANTED, "the planted key")
    findings = registry.find(f"prefix{PLANTED}suffix", "a place")
    assert [f.label for f in findings] == ["the planted key"]
    assert PLANTED not in str(findings[0])
    assert registry.find("c2VjcmV0LXBsYW50ZWQtaW4tYS10ZXN", "elsewhere") == []


def test_short_secret_matched_only_as_a_whole_base64_word(registry: Any) -> None:
    registry.register("pw==")
    assert registry.find("key pw== in a sentence", "x")
    assert registry.find("accesskey=pw==;", "x")
    assert not registry.find("Signature=abcpw==", "x")
    assert not registry.find("pw==x", "x")


def test_empty_and_non_text_values_are_not_registered(registry: Any) -> None:
    for value in ("", "   ", None, 42):
        assert registry.register(value) is value
    assert len(registry) == 0
    registry.register(b"bytes-secret-value")
    assert "bytes-secret-value" in registry


def test_leak_shapes_need_no_registration(registry: Any) -> None:
    assert [f.label.split(" ")[:2] for f in registry.find(f"Bearer {JWT}", "x")] == [["a", "JWT"]]
    assert registry.find("endpoint=https://h/;AccessKey=Zm9vYmFyYmF6", "x")
    assert registry.find("accesskey = Zm9v", "x")
    assert not registry.find("endpoint=https://h/;accesskey=***", "x")
    assert not registry.find("accesskey=<hidden, 44 chars>", "x")
    assert not registry.find("header.payload.signature eyJhbGciOiJIUzI1NiJ9 alone", "x")


def test_assert_clean_checks_str_repr_and_args(registry: Any) -> None:
    registry.register(PLANTED)
    registry.assert_clean(ValueError("the key is not valid base64 (length 32)"), object())
    with pytest.raises(AssertionError, match="secret in str/repr"):
        registry.assert_clean(ValueError(f"bad key {PLANTED}"))
    with pytest.raises(AssertionError):
        registry.assert_clean(KeyError(("nested", PLANTED)))

    class Leaky:
        def __repr__(self) -> str:
            return f"Leaky(key={PLANTED!r})"

    with pytest.raises(AssertionError):
        registry.assert_clean(Leaky())


def _encode_failure(text: str) -> UnicodeEncodeError:
    try:
        text.encode("ascii")
    except UnicodeEncodeError as exc:
        return exc
    raise AssertionError("the text encoded")


def test_assert_clean_walks_the_chain_and_the_exceptions_attributes(registry: Any) -> None:
    registry.register(PLANTED, "the planted key")
    pasted = PLANTED + "\u200b"
    # A clean message whose context holds the key only in a UnicodeEncodeError's .object.
    try:
        try:
            raise _encode_failure(pasted)
        except UnicodeEncodeError:
            raise ValueError("the key is not base64") from None
    except ValueError as exc:
        suppressed = exc
    assert suppressed.__suppress_context__
    with pytest.raises(AssertionError, match=r"the planted key in .*__context__ \(UnicodeEncodeError\)"):
        registry.assert_clean(suppressed)
    # An explicit cause, an attribute set on the exception, a note, a group member: each is found.
    caused = RuntimeError("clean")
    caused.__cause__ = KeyError("clean too")
    caused.__cause__.__context__ = OSError(f"reading {PLANTED}")
    holder = ValueError("clean")
    holder.secret_value = PLANTED  # type: ignore[attr-defined]
    more: list[BaseException] = []
    if sys.version_info >= (3, 11):  # notes and exception groups are 3.11 features
        noted = ValueError("clean")
        noted.add_note(f"hint: {PLANTED}")
        group_type: Any = getattr(builtins, "ExceptionGroup")  # noqa: B009 - the name is 3.11+ only
        more += [noted, group_type("clean", [ValueError("fine"), TypeError(PLANTED)])]
    for error in (caused, holder, *more):
        with pytest.raises(AssertionError, match="the planted key"):
            registry.assert_clean(error)
    # A chain with nothing secret in it passes, and a cycle does not loop forever.
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    registry.assert_clean(first, ValueError("clean", 42))


def test_keeper_formats_arguments_and_tracebacks(registry: Any, keeper: Any) -> None:
    logger = logging.getLogger("tests.reliability.scan.private")
    registry.register(PLANTED, "the planted key")
    logger.debug("nothing to see")
    assert keeper.scan(registry) == []
    logger.debug("refreshed with %s", PLANTED)
    try:
        raise RuntimeError(f"failed with {JWT}")
    except RuntimeError:
        logger.warning("refresh failed", exc_info=True)
    findings = keeper.scan(registry)
    labels = sorted(f.label.split(" (")[0] for f in findings)
    assert labels == ["a JWT", "the planted key"]
    assert all("tests.reliability.scan.private" in f.where for f in findings)
    assert all(PLANTED not in str(f) and JWT not in str(f) for f in findings)
    # Scanning from an index skips what came before.
    assert keeper.scan(registry, start=len(keeper.records)) == []


def test_keeper_keeps_a_record_once_even_through_two_handlers(keeper: Any) -> None:
    logger = logging.getLogger("tests.reliability.scan.private")
    child = logging.getLogger("tests.reliability.scan.private.child")
    child.addHandler(keeper)
    try:
        child.info("one record")
    finally:
        child.removeHandler(keeper)
    assert [r.text for r in keeper.records] == ["INFO tests.reliability.scan.private.child: one record"]
    assert logger.propagate is False


def test_session_keeper_sees_library_debug_records_with_the_test_name(
    kept_log_records: Any, request: pytest.FixtureRequest
) -> None:
    start = len(kept_log_records.records)
    logging.getLogger("azure.communication.common").debug("scan probe %d", 7)
    mine = kept_log_records.records[start:]
    assert [(r.test, r.text) for r in mine] == [(request.node.nodeid, "DEBUG azure.communication.common: scan probe 7")]


def test_literal_secrets_of_test_modules_are_registered_automatically(secret_registry: Any) -> None:
    assert "c2NhbnNlY3JldGtleQ==" in secret_registry
    assert "bGl0ZXJhbGtleTEyMzQ=" in secret_registry
    assert JWT in secret_registry
    assert "pw==" in secret_registry
    assert COMPUTED_KEY in secret_registry
    assert not any(word in secret_registry for word in FIELD_KEYS)
    assert ACCESS_TOKEN_LIFETIME not in secret_registry


LEAKY_TESTS = """
import logging

KEY = "bGVha3ktdGVzdC1rZXktdmFsdWU="


def test_clean(secret_registry):
    secret_registry.register(KEY)
    logging.getLogger("azure.communication.common").debug("nothing secret")


def test_leaks_a_registered_key(secret_registry):
    secret_registry.register(KEY, "the leaky key")
    logging.getLogger("azure.communication.common").debug("signing with %s", KEY)


def test_leaks_a_connection_string():
    logging.getLogger("acs_emulator").info(
        "started: endpoint=http://127.0.0.1:1/;accesskey=c29tZWtleQ=="
    )
"""


def test_a_leak_fails_its_test_and_the_session(tmp_path: Any) -> None:
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    shutil.copy(Path(__file__).parents[2] / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_leaky.py").write_text(LEAKY_TESTS)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "--show-capture=no",
            "test_leaky.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "3 passed, 2 errors" in output, output
    assert "ERROR at teardown of test_leaks_a_registered_key" in output
    assert "the leaky key in a log record of 'azure.communication.common'" in output
    assert "an unmasked accesskey=" in output
    assert "SECRET SCAN: secrets found in log records of this session" in output
    # The report names the secret, never quotes it (pytest's own captured-log section is turned off).
    assert "bGVha3ktdGVzdC1rZXktdmFsdWU=" not in output.replace('KEY = "bGVha3ktdGVzdC1rZXktdmFsdWU="', "")


async def test_emulator_keys_are_registered_however_it_starts(secret_registry: Any) -> None:
    from acs_emulator import Emulator

    with Emulator() as threaded:
        assert threaded.access_key in secret_registry
    async with Emulator() as on_this_loop:
        assert on_this_loop.access_key in secret_registry
