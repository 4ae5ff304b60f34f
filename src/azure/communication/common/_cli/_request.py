"""``acs-common request`` (curl for ACS) and ``acs-common sign`` (the signed headers, nothing sent)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, Final
from urllib.parse import urlsplit

from ._common import (
    SECRETS_HELP,
    CLIError,
    HelpFormatter,
    UsageError,
    add_connection_string_argument,
    build_pipeline,
    first_line,
    join_url,
    resolve_connection_string,
)
from ._output import Output

__all__ = ["add_parsers", "run_request", "run_sign", "signed_request"]

_METHOD = re.compile(r"[A-Za-z]+")
_SIGNING_HEADERS: Final = ("x-ms-date", "x-ms-content-sha256", "Authorization")

REQUEST_EPILOG: Final = (
    """\
examples:
  export AZURE_COMMUNICATION_CONNECTION_STRING='endpoint=https://...;accesskey=...'
  acs-common request POST '/identities?api-version=2023-10-01' -d '{"createTokenWithScopes": ["chat"]}'
  acs-common request POST "/identities/$ID/:issueAccessToken?api-version=2023-10-01" -d '{"scopes": ["voip"]}'
  acs-common request DELETE "/identities/$ID?api-version=2023-10-01" -v
  acs-common request POST '/identities?api-version=2023-10-01' --data @body.json -c - < secret.txt

A URL starting with '/' is resolved against the connection string's endpoint. The request is
signed (HMAC-SHA256) by the library's CommunicationAccessKeyCredentialPolicy, after azure-core's
retry policy, so every retry is signed afresh.
The status line (and with -v the request and response headers) goes to stderr, the body to stdout.
Exit status: 0 for a 1xx-3xx response, 1 for 4xx/5xx or a transport failure, 2 for usage errors.

"""
    + SECRETS_HELP
)

SIGN_EPILOG: Final = (
    """\
examples:
  acs-common sign POST '/identities?api-version=2023-10-01' --data '{}'
  acs-common sign GET 'https://contoso.communication.azure.com/identities/x?api-version=2023-10-01' --json
  acs-common sign GET '/identities/x?api-version=2023-10-01' -H 'X-Test: 1'    # shown, not signed

Prints the canonical URL (what is signed and sent), every header of the request (-H ones
included) and the client's side of what the emulator explains in a 401's error.innererror,
under the same names: stringToSign, contentHash and host. The Authorization header holds a
signature, never the key; it is only valid for this method, URL, body and date (the service
accepts a date within 15 minutes).
Exit status: 0 on success, 1 for a bad connection string or body, 2 for usage errors.

"""
    + SECRETS_HELP
)


def _read_data(value: str | None) -> bytes | None:
    if value is None:
        return None
    if not value.startswith("@"):
        return value.encode("utf-8")
    path = value[1:]
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise CLIError(f"cannot read {path!r}: {exc.strerror or exc}") from None


def _parse_headers(values: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
            raise UsageError(f"--header expects 'Name: value', got {value!r}")
        headers[name.strip()] = text.strip()
    return headers


def _has_header(headers: dict[str, str], name: str) -> bool:
    return any(key.lower() == name.lower() for key in headers)


def _build(args: argparse.Namespace) -> tuple[Any, Any]:
    """Return ``(endpoint_credential, HttpRequest)`` from the common arguments."""
    from azure.core.pipeline.transport import HttpRequest

    if not _METHOD.fullmatch(args.method):
        raise UsageError(f"METHOD must be an HTTP method such as GET or POST, got {args.method!r}")
    if args.connection_string == "-" and args.data == "@-":
        raise UsageError("stdin can hold either the connection string or the body, not both")
    endpoint_credential = resolve_connection_string(args.connection_string)
    assert endpoint_credential is not None
    url = join_url(endpoint_credential.endpoint, args.url)
    headers = _parse_headers(args.header)
    body = _read_data(args.data)
    if not _has_header(headers, "Accept"):
        headers["Accept"] = "application/json"
    if body is not None and not _has_header(headers, "Content-Type"):
        try:
            json.loads(body)
        except ValueError:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        else:
            headers["Content-Type"] = "application/json"
    request = HttpRequest(args.method.upper(), url, headers=headers)
    if body is not None:
        request.set_bytes_body(body)
    return endpoint_credential, request


def signed_request(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Sign the request described by ``args`` with the policy, without sending it.

    Returns:
        The signed ``HttpRequest`` and a description: canonical URL, host, string to sign and headers.
    """
    from azure.core.pipeline import PipelineContext, PipelineRequest

    from .._policy import CommunicationAccessKeyCredentialPolicy
    from .._signing import string_to_sign

    endpoint_credential, request = _build(args)
    try:
        policy = CommunicationAccessKeyCredentialPolicy(endpoint_credential.credential)
        policy.on_request(PipelineRequest(request, PipelineContext(None)))
    except (ValueError, TypeError) as exc:
        raise CLIError(f"cannot sign the request: {exc}") from None
    parts = urlsplit(request.url)
    path_and_query = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = next((v for k, v in request.headers.items() if k.lower() == "host"), parts.netloc)
    signed = {name: request.headers[name] for name in _SIGNING_HEADERS}
    to_sign = string_to_sign(request.method, path_and_query, signed["x-ms-date"], host, signed["x-ms-content-sha256"])
    description = {
        "method": request.method,
        "url": args.url,
        "canonical_url": request.url,
        "host": host,
        "string_to_sign": to_sign,
        "headers": signed,
        # Every header the request carries (the caller's -H ones included), in the order they are sent.
        "request_headers": {k: v for k, v in request.headers.items() if k.lower() != "host"},
        # The client's side of what the emulator explains in a 401's error.innererror, under the same names,
        # so that the two can be diffed.
        "innererror": {"stringToSign": to_sign, "contentHash": signed["x-ms-content-sha256"], "host": host},
    }
    return request, description


def run_sign(args: argparse.Namespace, out: Output) -> int:
    """Run ``sign``."""
    _request, description = signed_request(args)
    if args.json:
        out.json(description)
        return 0
    out.line(out.style(f"{description['method']} {description['canonical_url']}", "bold"))
    out.line(f"Host: {description['host']}")
    for name, value in description["request_headers"].items():
        out.line(f"{name}: {value}")
    out.line()
    out.line(out.style("to diff against the emulator's error.innererror after a 401:", "dim"))
    inner = description["innererror"]
    out.field("stringToSign", json.dumps(inner["stringToSign"]), width=13)
    out.field("contentHash", inner["contentHash"], width=13)
    out.field("host", inner["host"], width=13)
    out.line()
    out.line(out.style("string to sign:", "dim"))
    for line in description["string_to_sign"].split("\n"):
        out.line("  " + line)
    return 0


def _print_body(body: bytes, out: Output) -> None:
    if not body:
        return
    try:
        document = json.loads(body)
    except ValueError:
        out.line(body.decode("utf-8", errors="replace"))
    else:
        out.json(document)


def run_request(args: argparse.Namespace, out: Output) -> int:
    """Run ``request``: sign with the policy inside a pipeline, send, print status and body."""
    from azure.core.exceptions import AzureError

    endpoint_credential, request = _build(args)
    err = Output(sys.stderr, no_color=not out.colour)
    try:
        with build_pipeline(endpoint_credential.credential) as pipeline:
            pipeline_response = pipeline.run(request)
    except AzureError as exc:
        raise CLIError(f"{args.method.upper()} {request.url} failed: {first_line(str(exc))}") from None
    except ValueError as exc:
        raise CLIError(f"cannot sign the request: {exc}") from None
    response = pipeline_response.http_response
    sent = pipeline_response.http_request
    if args.verbose:
        err.line(f"> {sent.method} {sent.url}")
        for name, value in sent.headers.items():
            err.line(f"> {name}: {value}")
        err.line(">")
    ok = response.status_code < 400
    status = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    err.line(err.style(status, "green" if ok else "red", "bold"))
    if args.verbose:
        for name, value in response.headers.items():
            err.line(f"< {name}: {value}")
    _print_body(response.body(), out)
    return 0 if ok else 1


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", metavar="METHOD", help="GET, POST, DELETE, ...")
    parser.add_argument("url", metavar="URL", help="absolute URL, or a path resolved against the endpoint")
    parser.add_argument("--data", "-d", metavar="TEXT|@FILE", help="request body: text, @FILE, or @- for stdin")
    parser.add_argument(
        "--header",
        "-H",
        metavar="'K: V'",
        action="append",
        default=[],
        help="extra request header (repeatable)",
    )
    add_connection_string_argument(parser)


def add_parsers(subparsers: Any) -> None:
    """Register ``request`` and ``sign``."""
    request = subparsers.add_parser(
        "request",
        help="send an HMAC-signed request to ACS (curl for ACS)",
        description="Send a request signed with the access key, and print the status and JSON body.",
        epilog=REQUEST_EPILOG,
        formatter_class=HelpFormatter,
    )
    _common_arguments(request)
    request.add_argument("--verbose", "-v", action="store_true", help="also print request and response headers")
    request.set_defaults(handler=run_request)
    sign = subparsers.add_parser(
        "sign",
        help="print the signed headers of a request without sending it",
        description="Sign a request with the access key and print the canonical URL and signed headers.",
        epilog=SIGN_EPILOG,
        formatter_class=HelpFormatter,
    )
    _common_arguments(sign)
    sign.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    sign.set_defaults(handler=run_sign)
