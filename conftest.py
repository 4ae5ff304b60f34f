"""Suite-wide settings: hypothesis profiles sized for a 2-core machine, and the secret scan.

The secret scan (issue 8) keeps every log record of the whole session, formatted at DEBUG, and fails
when a secret shows up in one:

- A handler on the root logger (the root and the library's loggers are set to DEBUG) formats and keeps every
  record, with the test that was running when it was logged.
- Secrets get registered through the ``secret_registry`` fixture (``secret_registry.register(key)``); the
  well-known test secrets are registered automatically: the published vector key ``pw==``; every access
  key, key credential and JWT literal written in the source of the collected test modules; the values of
  their module constants named like secrets (``KEY``, ``WRONG_KEY``, ``ENTRA_TOKENS``, computed or not); and
  the access key of every in-process emulator (its ``start`` is wrapped for the session).
- Besides registered secrets, two shapes are leaks wherever they appear in a log record: a whole JWT
  (three base64url segments starting ``eyJ``), and a connection string's ``accesskey=`` with an unmasked value.
- After each test, the records logged while it ran are scanned against every secret registered so far; a hit
  turns the test's teardown into an error that names the logger and the secret's label (never the secret).
  At session end, every record is scanned again against every secret (a secret registered late, a record
  logged by a background thread after its test), and a hit fails the session.
- ``secret_registry.assert_clean(*objects)`` checks ``str`` and ``repr`` of exceptions and other objects, for
  tests that want to assert that what they raised or built hides its secrets; for an exception, the whole
  chain (``__cause__``, ``__context__``, group members) and each exception's args and attributes (such as
  the ``.object`` of a ``UnicodeError``, which holds the whole text that failed to encode).

Note for test authors: because the root logger is at DEBUG for the whole session, ``caplog.records`` also
holds DEBUG records of other libraries (asyncio, aiohttp, urllib3); filter on ``record.name`` or use
``caplog.at_level(level, logger=...)``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("ACS_HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("default")

# Every server in the suite is on loopback: an environment proxy must never see those requests. Done at
# import, before any test module is collected, so clients built at import time and subprocesses inherit it.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.lower(), None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"


# ---------------------------------------------------------------------------------------------------------
# Secret scan
# ---------------------------------------------------------------------------------------------------------

# Loggers set to DEBUG besides the root (their level may have been set higher by someone; the scan wants all).
SCANNED_LOGGERS = (
    "azure.communication.common",
    "acs_emulator",
    "aiohttp.access",
    "aiohttp.server",
)

# A whole JWT: two base64url JSON segments and a (possibly empty) signature. The library never logs one.
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# A connection string's key with a value that is not masked (masks start with '*' or '<').
ACCESS_KEY_PATTERN = re.compile(r"accesskey\s*=\s*(?![*<])(?=[A-Za-z0-9+/=]{4})([A-Za-z0-9+/]+={0,2})", re.IGNORECASE)

# Shorter secrets are matched only as whole base64 words, so that 'pw==' does not match inside other text.
_SHORT_SECRET = 8
_B64_WORD = r"A-Za-z0-9+/_\-"
_B64_CHARS = _B64_WORD + "="

# Source patterns for the well-known test secrets written as literals in test modules.
_SOURCE_SECRET_PATTERNS = (
    ACCESS_KEY_PATTERN,
    JWT_PATTERN,
    re.compile(r"AzureKeyCredential\(\s*[\"']([^\"'\s]{4,})[\"']"),
    re.compile(r"CommunicationTokenCredential\(\s*[\"']([^\"'\s]{8,})[\"']"),
    re.compile(r"\bAccessToken(?:Info)?\(\s*[\"']([^\"'\s]{8,})[\"']"),
)
# The published vector key of the JS and Python SDK test suites.
WELL_KNOWN_SECRETS = ("pw==",)


def _describe(secret: str) -> str:
    """Name a secret in a report without quoting it."""
    return f"{len(secret)} chars starting {secret[:3]!r}"


@dataclass(frozen=True)
class Finding:
    """One secret found in one piece of text."""

    label: str
    where: str

    def __str__(self) -> str:
        return f"{self.label} in {self.where}"


@dataclass
class SecretRegistry:
    """The secrets the tests use; register with :meth:`register`, check objects with :meth:`assert_clean`.

    Thousands of secrets (every token a soak test hands out) stay cheap to scan for: long secrets are
    indexed by their last 8 characters, and a text is first reduced to the set of its 8-character windows,
    so a scan costs about one pass over the text plus one search per candidate secret.
    """

    _secrets: dict[str, str] = field(default_factory=dict)
    _short: dict[str, re.Pattern[str]] = field(default_factory=dict)
    _by_tail: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # What find() reads: rebuilt after registrations, so a find costs nothing per registered secret.
    _snapshot: tuple[dict[str, str], list[tuple[str, re.Pattern[str]]], dict[str, tuple[str, ...]]] | None = None

    def register(self, value: Any, label: str | None = None) -> Any:
        """Register a secret (a str, or bytes that are decoded) and return it unchanged, for chaining.

        Empty and whitespace-only values are ignored: they would match everything.
        """
        text = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else value
        if not isinstance(text, str) or not text.strip():
            return value
        with self._lock:
            self._snapshot = None
            known = text in self._secrets
            if label is not None or not known:
                # An explicit label replaces the generic one of an earlier registration.
                self._secrets[text] = label or f"secret ({_describe(text)})"
            if not known:
                if len(text) < _SHORT_SECRET:
                    # '=' only ends base64, so it may precede a short secret ("accesskey=pw==").
                    self._short[text] = re.compile(rf"(?<![{_B64_WORD}]){re.escape(text)}(?![{_B64_CHARS}])")
                else:
                    self._by_tail.setdefault(text[-_SHORT_SECRET:], []).append(text)
        return value

    __call__ = register

    def register_all(self, values: Iterable[Any]) -> None:
        """Register several secrets."""
        for value in values:
            self.register(value)

    def __contains__(self, value: object) -> bool:
        return value in self._secrets

    def __len__(self) -> int:
        return len(self._secrets)

    def secrets(self) -> list[tuple[str, str]]:
        """Return ``(secret, label)`` pairs (a snapshot)."""
        with self._lock:
            return list(self._secrets.items())

    def find(self, text: str, where: str) -> list[Finding]:
        """Return the registered secrets and the leak shapes (JWTs, unmasked ``accesskey=``) in ``text``."""
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None:
                snapshot = self._snapshot = (
                    dict(self._secrets),
                    list(self._short.items()),
                    {tail: tuple(group) for tail, group in self._by_tail.items()},
                )
        labels, short, by_tail = snapshot
        found: list[Finding] = []
        if by_tail:
            windows = {text[i - _SHORT_SECRET : i] for i in range(_SHORT_SECRET, len(text) + 1)}
            for tail in windows & by_tail.keys():
                found.extend(Finding(labels[s], where) for s in by_tail[tail] if s in text)
        found.extend(Finding(labels[s], where) for s, pattern in short if pattern.search(text))
        found.extend(find_leak_shapes(text, where))
        return found

    def assert_clean(self, *objects: object) -> None:
        """Assert that ``str`` and ``repr`` of each object hold no secret.

        For an exception the whole chain is checked, as a traceback logger would print it and more: every
        exception reachable through ``__cause__``, ``__context__`` (suppressed or not) and the members of
        exception groups, and of each its args, its ``__notes__`` and its attributes (``.object`` of a
        ``UnicodeError``, ``.doc`` of a ``JSONDecodeError``, anything set on it).
        """
        for obj in objects:
            where = f"str/repr of {type(obj).__name__}"
            texts = [(t, where) for t in (str(obj), repr(obj))]
            if isinstance(obj, BaseException):
                texts = exception_texts(obj)
            findings = [f for text, place in texts for f in self.find(text, place)]
            assert not findings, "secret in str/repr: " + "; ".join(map(str, findings))


def _as_text(value: object) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else repr(value)


def exception_texts(error: BaseException) -> list[tuple[str, str]]:
    """The texts an exception chain can show, each with where it came from (see ``assert_clean``)."""
    texts: list[tuple[str, str]] = []
    pending: list[tuple[BaseException, str]] = [(error, type(error).__name__)]
    visited: set[int] = set()
    while pending:
        current, path = pending.pop()
        if id(current) in visited:
            continue
        visited.add(id(current))
        texts.append((str(current), f"str of {path}"))
        texts.append((repr(current), f"repr of {path}"))
        texts.extend((_as_text(arg), f"an arg of {path}") for arg in current.args)
        texts.extend((_as_text(note), f"a note of {path}") for note in getattr(current, "__notes__", ()))
        for name in ("object", "doc", "filename", "filename2"):
            if hasattr(current, name):
                texts.append((_as_text(getattr(current, name)), f"{path}.{name}"))
        for name, value in getattr(current, "__dict__", {}).items():
            texts.append((_as_text(value), f"{path}.{name}"))
        for link in ("__cause__", "__context__"):
            nested = getattr(current, link)
            if nested is not None:
                pending.append((nested, f"{path}.{link} ({type(nested).__name__})"))
        for index, member in enumerate(getattr(current, "exceptions", ()) or ()):
            if isinstance(member, BaseException):
                pending.append((member, f"{path}.exceptions[{index}] ({type(member).__name__})"))
    return texts


def find_leak_shapes(text: str, where: str) -> list[Finding]:
    """Return the JWTs and unmasked connection-string keys in ``text`` (leaks whoever owns them)."""
    found = [Finding(f"a JWT ({_describe(m.group(0))})", where) for m in JWT_PATTERN.finditer(text)]
    found.extend(
        Finding(f"an unmasked accesskey= ({_describe(m.group(1))})", where) for m in ACCESS_KEY_PATTERN.finditer(text)
    )
    return found


@dataclass(frozen=True)
class KeptRecord:
    """A formatted log record and the test that was running when it was logged."""

    test: str
    logger: str
    text: str


class RecordKeeper(logging.Handler):
    """Keeps every record it sees, formatted (message, arguments, traceback and stack)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.records: list[KeptRecord] = []
        self.current_test = "(outside any test)"

    def emit(self, record: logging.LogRecord) -> None:
        # A record reaches this handler once per logger it is attached to; keep it once.
        if getattr(record, "_acs_secret_scan_kept", False):
            return
        record._acs_secret_scan_kept = True
        try:
            text = self.format(record)
        except Exception:  # a broken record is the logging call's bug, reported by logging itself
            self.handleError(record)
            return
        self.records.append(KeptRecord(self.current_test, record.name, text))

    def scan(self, registry: SecretRegistry, start: int = 0) -> list[Finding]:
        """Scan the records kept from index ``start`` on."""
        return scan_records(self.records[start:], registry)


REGISTRY = SecretRegistry()
REGISTRY.register_all(WELL_KNOWN_SECRETS)
KEEPER = RecordKeeper()
_saved_levels: dict[str, int] = {}
_FIRST_RECORD = pytest.StashKey[int]()


def scan_records(records: Iterable[KeptRecord], registry: SecretRegistry) -> list[Finding]:
    """Scan kept records for registered secrets and leak shapes, one joined text per (test, logger)."""
    records = list(records)
    if not records:
        return []
    by_logger: dict[tuple[str, str], list[str]] = {}
    for record in records:
        by_logger.setdefault((record.test, record.logger), []).append(record.text)
    findings: list[Finding] = []
    for (test, logger), texts in by_logger.items():
        where = f"a log record of {logger!r} (during {test})"
        joined = "\n".join(texts)
        findings.extend(registry.find(joined, where))
    return findings


def _register_source_secrets(paths: Iterable[Path], registry: SecretRegistry) -> None:
    for path in paths:
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for pattern in _SOURCE_SECRET_PATTERNS:
            for match in pattern.finditer(source):
                value = match.group(1) if pattern.groups else match.group(0)
                # Short literals ("accesskey=bad") are deliberate junk in error-path tests, and would match
                # ordinary words; the short well-known keys are registered by name instead.
                if len(value) >= _SHORT_SECRET:
                    registry.register(value, f"a literal secret of {path.name} ({_describe(value)})")


def _wrap_emulator_start() -> None:
    """Register the access key of every in-process emulator (when the emulator is installed)."""
    try:
        from acs_emulator import Emulator
    except Exception:  # the emulator extra is optional
        return

    def registering(method: Any) -> Any:
        if method is None or getattr(method, "_acs_secret_scan", False):
            return method
        if inspect.iscoroutinefunction(method):

            async def registering_astart(self: Any, *args: Any, **kwargs: Any) -> Any:
                result = await method(self, *args, **kwargs)
                REGISTRY.register(getattr(self, "access_key", None), "an emulator access key")
                return result

            wrapper: Any = registering_astart
        else:

            def registering_start(self: Any, *args: Any, **kwargs: Any) -> Any:
                result = method(self, *args, **kwargs)
                REGISTRY.register(getattr(self, "access_key", None), "an emulator access key")
                return result

            wrapper = registering_start
        wrapper._acs_secret_scan = True
        functools.update_wrapper(wrapper, method)
        return wrapper

    # Both ways in: start() (a thread) and astart() (``async with``, on the caller's loop).
    for name in ("start", "astart"):
        if hasattr(Emulator, name):
            setattr(Emulator, name, registering(getattr(Emulator, name)))


def pytest_configure(config: pytest.Config) -> None:
    if sys.version_info[:3] == (3, 13, 0):
        # CPython 3.13.0's asyncio.Server._wakeup() runs twice when a server-side transport that was never
        # closed is collected after its server closed, and raises TypeError from the transport's __del__
        # (fixed in 3.13.1). Everywhere else that same collection is the ResourceWarning ignored in pyproject.
        config.addinivalue_line(
            "filterwarnings",
            r"ignore:Exception ignored in.*Transport\.__del__:pytest.PytestUnraisableExceptionWarning",
        )
    root = logging.getLogger()
    _saved_levels[""] = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(KEEPER)
    for name in SCANNED_LOGGERS:
        logger = logging.getLogger(name)
        _saved_levels[name] = logger.level
        logger.setLevel(logging.DEBUG)
        # Loggers that do not propagate would never reach the root's handler.
        logger.addHandler(KEEPER)
    _wrap_emulator_start()


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, level in _saved_levels.items():
        logger = logging.getLogger(name or None)
        logger.setLevel(level)
        logger.removeHandler(KEEPER)


_SECRET_NAME = re.compile(r"^[A-Z0-9_]*(?:KEY|TOKEN|SECRET)S?$|^[A-Z0-9_]*(?:KEY|TOKEN|SECRET)_[A-Z0-9_]*$")
_NOT_SECRET_NAME = re.compile(r"LIFETIME|PATTERN|_NAME|_ENV|HEADER|LENGTH|SIZE|COUNT")


def _looks_secret(value: str) -> bool:
    # Key and token constants are base64 or contain digits; ordinary words ("accesskey", "communicationUser")
    # that share a constant's name pattern are not secrets and would only cause false findings.
    return len(value) >= _SHORT_SECRET and (any(c.isdigit() or c in "+/=" for c in value) or "secret" in value)


def _register_module_secrets(modules: Iterable[Any], registry: SecretRegistry) -> None:
    """Register the values of module constants named like secrets (``KEY``, ``WRONG_KEY``, ``ENTRA_TOKENS``),
    including those computed at import (``base64.b64encode(...)``) that no source pattern sees."""
    for module in modules:
        for name, value in vars(module).items():
            if not _SECRET_NAME.match(name) or _NOT_SECRET_NAME.search(name):
                continue
            values = value if isinstance(value, (tuple, list, frozenset, set)) else (value,)
            for item in values:
                if isinstance(item, bytes):
                    item = item.decode("utf-8", "replace")
                if isinstance(item, str) and _looks_secret(item):
                    registry.register(item, f"{module.__name__}.{name} ({_describe(item)})")


def pytest_collection_finish(session: pytest.Session) -> None:
    _register_source_secrets({Path(item.path) for item in session.items}, REGISTRY)
    modules = {id(m): m for item in session.items if (m := getattr(item, "module", None)) is not None}
    _register_module_secrets(modules.values(), REGISTRY)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    KEEPER.current_test = item.nodeid
    item.stash[_FIRST_RECORD] = len(KEEPER.records)
    try:
        return (yield)
    finally:
        KEEPER.current_test = "(between tests)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield  # type: ignore[misc]
    if call.when == "teardown" and report.passed:
        start = item.stash.get(_FIRST_RECORD, len(KEEPER.records))
        findings = scan_records(KEEPER.records[start:], REGISTRY)
        if findings:
            report.outcome = "failed"
            report.longrepr = "secret leaked while this test ran:\n" + "\n".join(f"  {finding}" for finding in findings)
    return report  # type: ignore[return-value]


_session_scan: dict[str, Any] = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    started = time.perf_counter()
    findings = list(dict.fromkeys(scan_records(KEEPER.records, REGISTRY)))
    _session_scan.update(
        records=len(KEEPER.records),
        secrets=len(REGISTRY),
        findings=findings,
        seconds=time.perf_counter() - started,
    )
    if findings:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _session_scan:
        return
    findings = _session_scan["findings"]
    terminalreporter.write_line(
        f"secret scan: {_session_scan['records']} log records against {_session_scan['secrets']} secrets "
        f"and the leak shapes, {len(findings)} findings ({_session_scan['seconds']:.1f} s)",
        red=bool(findings),
    )
    if findings:
        terminalreporter.write_line("SECRET SCAN: secrets found in log records of this session:", red=True)
        for finding in findings:
            terminalreporter.write_line(f"  {finding}", red=True)


@pytest.fixture(scope="session")
def secret_registry() -> SecretRegistry:
    """The session's secret registry: ``secret_registry.register(value)``, ``.assert_clean(obj, ...)``."""
    return REGISTRY


@pytest.fixture(scope="session")
def kept_log_records() -> RecordKeeper:
    """The session's record keeper (for tests of the scan itself)."""
    return KEEPER
