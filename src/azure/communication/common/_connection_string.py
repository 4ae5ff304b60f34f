"""Connection strings and client arguments: ``endpoint=https://...;accesskey=...``.

A connection string holds a secret, so no message here ever quotes it, or any part of it: errors name the
field that is wrong or missing. The endpoint is not echoed either, because a connection string passed where an
endpoint belongs would otherwise leak its key through the endpoint's error message.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar, overload
from urllib.parse import urlsplit

from azure.core.credentials import AzureKeyCredential

from ._signing import decode_access_key

__all__ = [
    "EndpointCredential",
    "is_key_credential",
    "parse_client_arguments",
    "parse_connection_string",
    "validate_endpoint",
]

_CredentialT = TypeVar("_CredentialT")

_ENDPOINT = "endpoint"
_ACCESS_KEY = "accesskey"
_EXAMPLE_ENDPOINT = "https://<resource>.communication.azure.com/"


class EndpointCredential(NamedTuple):
    """The two parts of a connection string: the resource endpoint and its access key."""

    endpoint: str
    """The resource endpoint as written in the connection string (surrounding whitespace removed)."""
    credential: AzureKeyCredential
    """The access key, as an ``AzureKeyCredential``."""

    def __repr__(self) -> str:
        return f"EndpointCredential(endpoint={self.endpoint!r}, credential=AzureKeyCredential(key=***))"


def is_key_credential(obj: object) -> bool:
    """Tell whether ``obj`` is a key credential, by the JavaScript SDK's duck typing.

    True when ``obj.key`` is a ``str`` and ``obj`` has no ``get_token`` (token credentials are never key
    credentials, even when they carry a ``key`` attribute).
    """
    return isinstance(getattr(obj, "key", None), str) and not hasattr(obj, "get_token")


def parse_connection_string(connection_string: str) -> EndpointCredential:
    """Split an ACS connection string into its endpoint and access key.

    Keys are case-insensitive and may come in any order; whitespace around keys, values and the whole string
    and empty segments (a trailing ``;``) are tolerated; unknown keys are ignored. The access key must be
    valid base64.

    Args:
        connection_string: ``endpoint=https://<resource>.communication.azure.com/;accesskey=<base64 key>``.

    Raises:
        TypeError: ``connection_string`` is not a string.
        ValueError: a segment is not ``key=value``, a key appears twice, ``endpoint`` or ``accesskey`` is
            missing or empty, or the access key is not base64. The message never quotes the string.
    """
    if not isinstance(connection_string, str):
        raise TypeError(f"The connection string must be a str, not {type(connection_string).__name__}.")
    fields: dict[str, str] = {}
    seen_unknown: set[str] = set()
    for number, segment in enumerate(connection_string.split(";"), start=1):
        if not segment.strip():
            continue
        name, equals, value = segment.partition("=")
        name = name.strip().lower()
        if not equals or not name:
            raise ValueError(
                f"Invalid connection string: segment {number} is not of the form key=value; "
                "expected 'endpoint=https://<resource>.communication.azure.com/;accesskey=<key>'."
            )
        if name in fields or name in seen_unknown:
            # Only the two known names are safe to repeat back: an unknown "name" may be a pasted secret.
            which = f"'{name}'" if name in (_ENDPOINT, _ACCESS_KEY) else f"the key of segment {number}"
            raise ValueError(f"Invalid connection string: {which} appears more than once.")
        if name in (_ENDPOINT, _ACCESS_KEY):
            fields[name] = value.strip()
        else:
            seen_unknown.add(name)
    missing = [name for name in (_ENDPOINT, _ACCESS_KEY) if name not in fields]
    if missing:
        raise ValueError(
            f"Invalid connection string: missing {' and '.join(repr(m) for m in missing)}; "
            "expected 'endpoint=https://<resource>.communication.azure.com/;accesskey=<key>'."
        )
    for name in (_ENDPOINT, _ACCESS_KEY):
        if not fields[name]:
            raise ValueError(f"Invalid connection string: {name!r} is empty.")
    # The endpoint is checked here, not only by parse_client_arguments: a value that runs on into a second
    # "accesskey=" (segments split by newlines) would otherwise show the key in EndpointCredential's repr.
    problem = _endpoint_problem(fields[_ENDPOINT])
    if problem is not None:
        raise ValueError(
            f"Invalid connection string: 'endpoint' is invalid: {problem}; expected {_EXAMPLE_ENDPOINT!r}."
        )
    key = fields[_ACCESS_KEY]
    reason = _key_problem(key)
    # Raised outside any except block: the decoder's errors (a UnicodeEncodeError's .object) hold the key.
    if reason is not None:
        raise ValueError(f"Invalid connection string: 'accesskey' is invalid. {reason}")
    return EndpointCredential(fields[_ENDPOINT], AzureKeyCredential(key))


def _key_problem(key: str) -> str | None:
    try:
        decode_access_key(key)
    except ValueError as exc:
        return str(exc)  # decode_access_key's messages name the key's length, never the key
    return None


@overload
def parse_client_arguments(
    endpoint_or_connection_string: str, credential: None = None
) -> tuple[str, AzureKeyCredential]: ...


@overload
def parse_client_arguments(
    endpoint_or_connection_string: str, credential: _CredentialT
) -> tuple[str, _CredentialT]: ...


def parse_client_arguments(endpoint_or_connection_string: str, credential: Any = None) -> tuple[str, Any]:
    """Resolve a client's ``(endpoint_or_connection_string, credential)`` arguments to ``(endpoint, credential)``.

    With a credential the first argument is the resource endpoint; without one it is a connection string.
    Either way the endpoint must be an ``http``/``https`` URL with a host and no path beyond ``/``, no query,
    fragment or user info. The endpoint is returned as written (surrounding whitespace removed) and the
    credential as given.

    Raises:
        TypeError: the first argument is not a string.
        ValueError: the connection string is malformed, or the endpoint is not a valid resource endpoint.
    """
    if not isinstance(endpoint_or_connection_string, str):
        raise TypeError(
            "Expected an endpoint URL or a connection string (str), not "
            f"{type(endpoint_or_connection_string).__name__}."
        )
    if credential is None:
        endpoint, credential = parse_connection_string(endpoint_or_connection_string)
    else:
        endpoint = endpoint_or_connection_string.strip()
    validate_endpoint(endpoint, advice="pass it without a credential")
    return endpoint, credential


def validate_endpoint(endpoint: object, what: str = "endpoint", *, advice: str = "pass only its endpoint") -> str:
    """Check a resource endpoint and return it with surrounding whitespace removed (the one validator).

    The rules are those of :func:`parse_client_arguments`: an ``http``/``https`` URL with a host and no path
    beyond ``/``, no query, fragment, user info, whitespace or control characters. The message names the
    rule that is broken and never quotes the endpoint: a connection string (with its key) or a URL with a
    password passed here would otherwise leak through it.

    Args:
        endpoint: The endpoint to check.
        what: How messages name the argument (e.g. ``"resource_endpoint"``).
        advice: What to do when the value looks like a connection string.

    Raises:
        TypeError: ``endpoint`` is not a str.
        ValueError: The endpoint breaks one of the rules.
    """
    if not isinstance(endpoint, str):
        raise TypeError(f"{what} must be a str such as {_EXAMPLE_ENDPOINT!r}, not {type(endpoint).__name__}.")
    endpoint = endpoint.strip()
    problem = _endpoint_problem(endpoint)
    if problem is None:
        return endpoint
    hint = ""
    if "accesskey=" in endpoint.lower():
        hint = f" It looks like a connection string: {advice}."
    raise ValueError(f"Invalid {what}: {problem}; expected {_EXAMPLE_ENDPOINT!r}.{hint}")


def _endpoint_problem(endpoint: str) -> str | None:
    if any(c.isspace() or not c.isprintable() for c in endpoint):
        return "it must not contain spaces or control characters"
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return "it is not a valid URL (check the host and port)"
    if parts.scheme.lower() not in ("http", "https"):
        return "the scheme must be http or https"
    if not parts.hostname:
        return "it has no host"
    if "@" in parts.netloc:
        return "it must not contain user info"
    if parts.path not in ("", "/"):
        return "it must not have a path"
    if "?" in endpoint or "#" in endpoint:
        return "it must not have a query or fragment"
    if port is not None and port == 0:
        return "port 0 is not a valid port"
    return None
