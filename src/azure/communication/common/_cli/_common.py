"""What several subcommands share: errors with exit codes, secrets from stdin or the environment, pipelines."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any, Final, TextIO
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from azure.core.pipeline import AsyncPipeline, Pipeline
    from azure.core.pipeline.transport import AsyncHttpResponse, HttpRequest, HttpResponse

    from .._connection_string import EndpointCredential

__all__ = [
    "CONNECTION_STRING_ENV",
    "SECRETS_HELP",
    "CLIError",
    "HelpFormatter",
    "UsageError",
    "add_connection_string_argument",
    "build_async_pipeline",
    "build_pipeline",
    "resolve_connection_string",
]

CONNECTION_STRING_ENV: Final = "AZURE_COMMUNICATION_CONNECTION_STRING"

SECRETS_HELP: Final = (
    "secrets:\n"
    "  The connection string is read from --connection-string, or from the environment variable\n"
    f"  {CONNECTION_STRING_ENV}. Pass '-' to read it from stdin, so that the key appears\n"
    "  neither in `ps` nor in your shell history. It is never printed: the key is shown as <hidden>.\n"
)

# An api-version the emulator and the real Identity service both accept.
IDENTITY_API_VERSION: Final = "2023-10-01"

# The CLI talks to one endpoint per run; a few retries cover a transient 503 without hiding a real outage.
_RETRY_TOTAL: Final = 3
_RETRY_BACKOFF: Final = 0.2
_TIMEOUT_SECONDS: Final = 30


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps one-paragraph descriptions to the terminal; keeps multi-line epilogs (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


class CLIError(Exception):
    """A failure reported as one line on stderr; ``exit_code`` 1 unless a subclass says otherwise.

    Args:
        message: the one-line message (never a secret).
        prog: the (sub)command to name in the message, e.g. ``acs-common id parse``.
    """

    exit_code = 1

    def __init__(self, message: str, *, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


class UsageError(CLIError):
    """The command line itself is wrong (exit code 2, like argparse)."""

    exit_code = 2


def add_connection_string_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--connection-string`` (value or ``-`` for stdin) to ``parser``."""
    parser.add_argument(
        "--connection-string",
        "-c",
        metavar="CS",
        help=f"'endpoint=...;accesskey=...', or '-' to read it from stdin (default: ${CONNECTION_STRING_ENV})",
    )


def read_stdin(stdin: TextIO | None = None) -> str:
    """Read all of stdin (``sys.stdin`` at call time so tests can replace it)."""
    stream = stdin if stdin is not None else sys.stdin
    return stream.read()


def resolve_connection_string(value: str | None, *, required: bool = True) -> EndpointCredential | None:
    """Return the parsed connection string from the argument, stdin (``-``) or the environment.

    Raises:
        UsageError: none was given but one is required, or stdin was empty.
        CLIError: the connection string is malformed (the message names what is missing, never the key).
    """
    from .._connection_string import parse_connection_string

    if value == "-":
        value = read_stdin().strip()
        if not value:
            raise UsageError("--connection-string -: nothing was read from stdin")
    elif value is None:
        value = os.environ.get(CONNECTION_STRING_ENV) or None
    if value is None:
        if required:
            raise UsageError(
                f"no connection string: pass --connection-string (or '-' for stdin) or set {CONNECTION_STRING_ENV}"
            )
        return None
    try:
        return parse_connection_string(value)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if not message.lower().startswith("invalid connection string"):
            message = f"invalid connection string: {message}"
        raise CLIError(message) from None


def _policies(credential: Any, *, asynchronous: bool = False) -> list[Any]:
    from azure.core.pipeline.policies import AsyncRetryPolicy, RetryPolicy, UserAgentPolicy

    from .._policy import CommunicationAccessKeyCredentialPolicy
    from .._version import VERSION

    retry_class = AsyncRetryPolicy if asynchronous else RetryPolicy
    return [
        UserAgentPolicy(user_agent="acs-common-cli", sdk_moniker=f"communication-common/{VERSION}"),
        # Retry sits before the signing policy so that every attempt is signed afresh (new date).
        retry_class(retry_total=_RETRY_TOTAL, retry_backoff_factor=_RETRY_BACKOFF),
        CommunicationAccessKeyCredentialPolicy(credential),
    ]


def build_pipeline(credential: Any) -> Pipeline[HttpRequest, HttpResponse]:
    """Return a sync azure-core pipeline (requests transport) that signs with our HMAC policy."""
    from azure.core.pipeline import Pipeline
    from azure.core.pipeline.transport import RequestsTransport

    transport = RequestsTransport(connection_timeout=_TIMEOUT_SECONDS, read_timeout=_TIMEOUT_SECONDS)
    return Pipeline(transport=transport, policies=_policies(credential))


def build_async_pipeline(credential: Any) -> AsyncPipeline[HttpRequest, AsyncHttpResponse]:
    """Return an asyncio azure-core pipeline (aiohttp transport) that signs with our HMAC policy."""
    from azure.core.pipeline import AsyncPipeline
    from azure.core.pipeline.transport import AioHttpTransport

    transport = AioHttpTransport(connection_timeout=_TIMEOUT_SECONDS, read_timeout=_TIMEOUT_SECONDS)
    return AsyncPipeline(transport=transport, policies=_policies(credential, asynchronous=True))


def join_url(endpoint: str, url: str) -> str:
    """Resolve ``url`` against ``endpoint`` when it is relative (``/identities?...``).

    Raises:
        UsageError: ``url`` is absolute but not ``http(s)://HOST/...`` (another scheme, no host, a bad port
            or IPv6 literal): the command line is wrong, whatever the scheme.
    """
    if "://" not in url.split("?", 1)[0]:
        return endpoint.rstrip("/") + "/" + url.lstrip("/")
    scheme = url.split("://", 1)[0]
    if scheme.lower() not in ("http", "https"):
        raise UsageError(f"invalid URL {url!r}: only http and https are supported, not {scheme!r}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        raise UsageError(f"invalid URL {url!r}: {first_line(str(exc))}") from None
    if not parts.hostname:
        raise UsageError(f"invalid URL {url!r}: no host")
    return url


def first_line(text: str) -> str:
    """Return the first non-empty line of ``text`` (library messages can span several lines)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
