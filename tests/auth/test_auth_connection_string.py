"""Connection strings and client arguments: every accepted shape and every error, none echoing the key."""

from __future__ import annotations

import base64
import pickle
from typing import Any

import pytest
from azure.core.credentials import AzureKeyCredential

from azure.communication.common import (
    EndpointCredential,
    parse_client_arguments,
    parse_connection_string,
)
from azure.communication.common._connection_string import validate_endpoint

ENDPOINT = "https://contoso.communication.azure.com/"
KEY = base64.b64encode(b"super secret access key material").decode()
SECRET_PARTS = (KEY, KEY[:12], "super secret")


def _assert_no_secret(text: str) -> None:
    for part in SECRET_PARTS:
        assert part not in text


@pytest.mark.parametrize(
    "text",
    [
        f"endpoint={ENDPOINT};accesskey={KEY}",
        f"accesskey={KEY};endpoint={ENDPOINT}",
        f"Endpoint={ENDPOINT};AccessKey={KEY}",
        f"ENDPOINT={ENDPOINT};ACCESSKEY={KEY};",
        f"  endpoint = {ENDPOINT} ;  accesskey = {KEY} ;  ",
        f"endpoint={ENDPOINT};;accesskey={KEY};;",
        f"endpoint={ENDPOINT};region=westus;accesskey={KEY};Foo=bar=baz",
    ],
)
def test_accepted_shapes(text: str) -> None:
    parsed = parse_connection_string(text)
    assert isinstance(parsed, EndpointCredential)
    assert parsed.endpoint == ENDPOINT
    assert isinstance(parsed.credential, AzureKeyCredential)
    assert parsed.credential.key == KEY
    endpoint, credential = parsed
    assert (endpoint, credential) == (parsed[0], parsed[1])


def test_the_endpoint_is_returned_as_written() -> None:
    parsed = parse_connection_string(f"endpoint= HTTPS://Contoso.example:8443 ;accesskey={KEY}")
    assert parsed.endpoint == "HTTPS://Contoso.example:8443"


def test_a_key_ending_in_padding_keeps_its_equals_signs() -> None:
    key = base64.b64encode(b"x").decode()
    assert key.endswith("==")
    assert parse_connection_string(f"endpoint={ENDPOINT};accesskey={key}").credential.key == key


def test_repr_masks_the_key() -> None:
    parsed = parse_connection_string(f"endpoint={ENDPOINT};accesskey={KEY}")
    for text in (repr(parsed), str(parsed), f"{parsed}", repr([parsed])):
        _assert_no_secret(text)
        assert ENDPOINT in text
        assert "***" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"endpoint={ENDPOINT}", "missing 'accesskey'"),
        (f"accesskey={KEY}", "missing 'endpoint'"),
        ("", "missing 'endpoint' and 'accesskey'"),
        ("   ;  ", "missing 'endpoint' and 'accesskey'"),
        (f"region=westus;x={KEY}", "missing 'endpoint' and 'accesskey'"),
        (f"endpoint={ENDPOINT};accesskey=", "'accesskey' is empty"),
        (f"endpoint= ;accesskey={KEY}", "'endpoint' is empty"),
        (f"endpoint={ENDPOINT};{KEY[:-2]}", "segment 2 is not of the form key=value"),
        (f"endpoint={ENDPOINT};={KEY}", "segment 2 is not of the form key=value"),
        (f"{ENDPOINT}|{KEY.rstrip('=')}", "segment 1 is not of the form key=value"),
        (f"endpoint={ENDPOINT};endpoint={ENDPOINT};accesskey={KEY}", "'endpoint' appears more than once"),
        (f"endpoint={ENDPOINT};accesskey={KEY};AccessKey={KEY}", "'accesskey' appears more than once"),
        (f"endpoint={ENDPOINT};accesskey={KEY};x=1;X=2", "the key of segment 4 appears more than once"),
        (f"endpoint={ENDPOINT};accesskey=not*base64*{KEY}", "'accesskey' is invalid"),
    ],
)
def test_malformed_strings_name_the_problem_without_echoing_the_key(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_connection_string(text)
    _assert_no_secret(str(info.value))
    _assert_no_secret(repr(info.value))
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None


@pytest.mark.parametrize("value", [None, b"endpoint=x;accesskey=y", 42])
def test_a_non_string_is_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        parse_connection_string(value)


def test_parse_client_arguments_with_a_connection_string() -> None:
    endpoint, credential = parse_client_arguments(f"endpoint={ENDPOINT};accesskey={KEY}")
    assert endpoint == ENDPOINT
    assert isinstance(credential, AzureKeyCredential)
    assert credential.key == KEY


@pytest.mark.parametrize("credential", [AzureKeyCredential(KEY), KEY, object()])
def test_parse_client_arguments_with_a_credential_returns_it_unchanged(credential: Any) -> None:
    endpoint, returned = parse_client_arguments(f"  {ENDPOINT}  ", credential)
    assert endpoint == ENDPOINT
    assert returned is credential


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://contoso.communication.azure.com",
        "https://contoso.communication.azure.com/",
        "http://127.0.0.1:8080",
        "HTTPS://CONTOSO.example/",
        "https://[::1]:8443/",
    ],
)
def test_valid_endpoints(endpoint: str) -> None:
    assert parse_client_arguments(endpoint, AzureKeyCredential(KEY))[0] == endpoint


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("contoso.communication.azure.com", "scheme must be http or https"),
        ("ftp://contoso.example/", "scheme must be http or https"),
        ("https://", "no host"),
        ("https:///path", "no host"),
        ("https://user:pw@contoso.example/", "user info"),
        ("https://contoso.example/identities", "path"),
        ("https://contoso.example//", "path"),
        ("https://contoso.example/?x=1", "query or fragment"),
        ("https://contoso.example/?", "query or fragment"),
        ("https://contoso.example/#top", "query or fragment"),
        ("https://contoso.example:http/", "not a valid URL"),
        ("https://contoso.example:99999/", "not a valid URL"),
        ("https://contoso.example:0/", "port 0"),
    ],
)
def test_invalid_endpoints(endpoint: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_client_arguments(endpoint, AzureKeyCredential(KEY))
    with pytest.raises(ValueError, match=message):
        parse_client_arguments(f"endpoint={endpoint};accesskey={KEY}")


def test_a_connection_string_passed_with_a_credential_gets_a_hint_and_no_key() -> None:
    with pytest.raises(ValueError, match="looks like a connection string") as info:
        parse_client_arguments(f"endpoint={ENDPOINT};accesskey={KEY}", AzureKeyCredential(KEY))
    _assert_no_secret(str(info.value))


@pytest.mark.parametrize("value", [None, 42, b"https://x/"])
def test_parse_client_arguments_needs_a_string(value: Any) -> None:
    with pytest.raises(TypeError, match="endpoint URL or a connection string"):
        parse_client_arguments(value)


def test_endpoint_credential_is_a_named_tuple_that_pickles_without_changing_its_repr() -> None:
    parsed = parse_connection_string(f"endpoint={ENDPOINT};accesskey={KEY}")
    assert parsed._fields == ("endpoint", "credential")
    clone = pickle.loads(pickle.dumps(parsed))  # noqa: S301 - our own data
    assert clone.endpoint == ENDPOINT
    assert clone.credential.key == KEY
    assert repr(clone) == repr(parsed)


# --- validate_endpoint: the one endpoint validator (also behind the Entra credential's resource_endpoint) ---


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://contoso example/",
        "https://contoso.example/\tx",
        "https://contoso.example\x00/",
        "https://a\u200bb.example/",
    ],
    ids=["space", "tab", "nul", "zero-width"],
)
def test_endpoints_with_spaces_or_control_characters_are_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="must not contain spaces or control characters"):
        parse_client_arguments(endpoint, AzureKeyCredential(KEY))


def test_validate_endpoint_strips_and_returns_the_endpoint_as_written() -> None:
    assert validate_endpoint(f"  {ENDPOINT}\n") == ENDPOINT
    assert validate_endpoint("HTTP://127.0.0.1:8080", "resource_endpoint") == "HTTP://127.0.0.1:8080"


def test_validate_endpoint_names_the_argument_and_never_quotes_the_value() -> None:
    connection_string = f"endpoint={ENDPOINT};accesskey={KEY}"
    with pytest.raises(ValueError) as raised:
        validate_endpoint(connection_string, "resource_endpoint")
    message = str(raised.value)
    assert message.startswith("Invalid resource_endpoint: ")
    assert message.endswith("It looks like a connection string: pass only its endpoint.")
    _assert_no_secret(message)
    assert "contoso" not in message
    with pytest.raises(ValueError, match="user info") as raised:
        validate_endpoint(f"https://admin:{KEY}@contoso.example/")
    _assert_no_secret(str(raised.value))


@pytest.mark.parametrize("value", [None, 42, b"https://contoso.example/"])
def test_validate_endpoint_needs_a_string(value: Any) -> None:
    with pytest.raises(TypeError, match=r"resource_endpoint must be a str such as 'https://<resource>"):
        validate_endpoint(value, "resource_endpoint")
