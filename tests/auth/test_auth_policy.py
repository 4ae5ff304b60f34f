"""The HMAC policy, the policy factories and the plain-HTTP adapters, without a network."""

from __future__ import annotations

import asyncio
import base64
import calendar
import functools
import hashlib
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import httpx
import pytest
import requests
from azure.core.credentials import AccessToken, AccessTokenInfo, AzureKeyCredential
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.policies import (
    AsyncBearerTokenCredentialPolicy,
    BearerTokenCredentialPolicy,
)
from azure.core.pipeline.transport import HttpRequest as LegacyHttpRequest
from azure.core.rest import HttpRequest

from azure.communication.common import (
    CommunicationAccessKeyCredentialPolicy,
    CommunicationTokenCredential,
    create_communication_auth_policy,
    is_key_credential,
)
from azure.communication.common import aio as common_aio
from azure.communication.common._policy import is_sync_function
from azure.communication.common._signing import compute_signature, content_hash
from azure.communication.common.httpx import AccessKeyAuth as HttpxAuth
from azure.communication.common.requests import AccessKeyAuth as RequestsAuth

VECTOR_KEY = "pw=="
VECTOR_DATE = "Wed, 13 Apr 2022 18:09:12 GMT"
VECTOR_TIME = float(calendar.timegm((2022, 4, 13, 18, 9, 12)))
EMPTY_HASH = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
KEY = base64.b64encode(b"unit test key").decode()
TEXT = "héllo 😀"

# The JavaScript SDK's published vectors: (url, expected signature).
VECTORS = [
    ("https://example.com/testPath?testQuery=test", "DGdgwggJWnQyc6EHjR/Vbqg1ES64KpD6U2XwTDDj3tU="),
    ("https://example.com/testPath", "+6tWkg3lNKVjQHHmxkdGQcJjUgzclsWTMebnuCz1ngU="),
    ("https://example.com", "X2lD3c1+T+BNWQrZHoVV5SSECO9sAokjs10ATeB5qm4="),
    ("https://localhost:8080/path?x=1", "OLJ/Mvm6GwRpSoPIg3GwJE1WItmL8ox8u1VxIQlBavA="),
]

REQUEST_TYPES = [HttpRequest, LegacyHttpRequest]


def _authorization(signature: str) -> str:
    return f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"


def _sign(http_request: Any, credential: Any = VECTOR_KEY, clock: float = VECTOR_TIME) -> Any:
    policy = CommunicationAccessKeyCredentialPolicy(credential, _clock=lambda: clock)
    policy.on_request(PipelineRequest(http_request, PipelineContext(None)))
    return http_request


def _body(http_request: Any) -> Any:
    return http_request.content if isinstance(http_request, HttpRequest) else http_request.data


# --- published vectors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "signature"), VECTORS)
@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_policy_reproduces_the_published_vectors(request_type: Any, url: str, signature: str) -> None:
    signed = _sign(request_type("GET", url))
    assert signed.headers["x-ms-date"] == VECTOR_DATE
    assert signed.headers["x-ms-content-sha256"] == EMPTY_HASH
    assert signed.headers["Authorization"] == _authorization(signature)


@pytest.mark.parametrize(("url", "signature"), VECTORS)
def test_httpx_auth_reproduces_the_published_vectors(url: str, signature: str) -> None:
    request = httpx.Request("GET", url)
    flow = HttpxAuth(VECTOR_KEY, _clock=lambda: VECTOR_TIME).sync_auth_flow(request)
    signed = next(flow)
    assert signed.headers["x-ms-date"] == VECTOR_DATE
    assert signed.headers["Authorization"] == _authorization(signature)


@pytest.mark.parametrize(("url", "signature"), VECTORS)
def test_requests_auth_reproduces_the_published_vectors(url: str, signature: str) -> None:
    prepared = requests.Request("GET", url).prepare()
    signed = RequestsAuth(AzureKeyCredential(VECTOR_KEY), _clock=lambda: VECTOR_TIME)(prepared)
    assert signed.headers["x-ms-content-sha256"] == EMPTY_HASH
    assert signed.headers["Authorization"] == _authorization(signature)


def test_hash_and_hmac_vectors() -> None:
    key = base64.b64decode(VECTOR_KEY)
    assert content_hash(b"banana") == "tJPUg2Sv5E0RwBZc9HCkFk0eJgmRHvmYvoaNRq3j3k4="
    assert compute_signature(key, "banana") == "88EC05aAS9iXnaimtNO78JLjiPtfWryQB/5QYEzEsu8="
    assert compute_signature(key, "😀") == "1rudJKjn2Zi+3hRrBG29wIF6pD6YyAeQR1ZcFtXoKAU="


# --- URL and host ------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_policy_rewrites_the_url_to_its_canonical_form_and_signs_that(request_type: Any) -> None:
    signed = _sign(request_type("GET", "HTTPS://Example.COM:443/identities/8%3Aacs%3Ax?a=b c"))
    assert signed.url == "https://example.com/identities/8:acs:x?a=b%20c"
    twin = _sign(request_type("GET", "https://example.com/identities/8:acs:x?a=b%20c"))
    assert signed.headers["Authorization"] == twin.headers["Authorization"]


def test_policy_leaves_a_canonical_url_object_untouched() -> None:
    url = "https://example.com/a?b=c"
    request = HttpRequest("GET", url)
    assert _sign(request).url is url


def test_a_caller_set_host_header_is_signed_instead_of_the_url_host() -> None:
    plain = _sign(HttpRequest("GET", "https://localhost:8080/path?x=1"))
    spoofed = _sign(HttpRequest("GET", "https://example.com/path?x=1", headers={"Host": "localhost:8080"}))
    assert spoofed.headers["Authorization"] == plain.headers["Authorization"]
    assert spoofed.headers["Host"] == "localhost:8080"


def test_the_date_comes_from_the_clock_and_changes_the_signature() -> None:
    first = _sign(HttpRequest("GET", "https://example.com/"), clock=VECTOR_TIME)
    later = _sign(HttpRequest("GET", "https://example.com/"), clock=VECTOR_TIME + 1)
    assert later.headers["x-ms-date"] == "Wed, 13 Apr 2022 18:09:13 GMT"
    assert later.headers["Authorization"] != first.headers["Authorization"]


def test_an_invalid_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="absolute http or https URL"):
        _sign(HttpRequest("GET", "/relative"))


# --- bodies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_a_str_body_becomes_utf8_bytes_with_a_byte_content_length(request_type: Any) -> None:
    request = request_type("POST", "https://example.com/")
    if request_type is HttpRequest:
        request = HttpRequest("POST", "https://example.com/", content=TEXT)
    else:
        request.set_text_body(TEXT)
    assert request.headers["Content-Length"] == str(len(TEXT))  # azure-core's character count
    signed = _sign(request)
    data = TEXT.encode("utf-8")
    assert _body(signed) == data
    assert signed.headers["Content-Length"] == str(len(data))
    assert signed.headers["x-ms-content-sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_a_json_body_is_hashed_as_sent(request_type: Any) -> None:
    payload = {"name": "Zoë", "n": [1, 2]}
    if request_type is HttpRequest:
        request = HttpRequest("POST", "https://example.com/", json=payload)
    else:
        request = LegacyHttpRequest("POST", "https://example.com/")
        request.set_json_body(payload)
    signed = _sign(request)
    body = _body(signed)
    assert isinstance(body, bytes)
    assert json.loads(body) == payload
    assert signed.headers["x-ms-content-sha256"] == content_hash(body)
    assert signed.headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_a_bytes_body_is_hashed_without_being_replaced(request_type: Any) -> None:
    data = b"\x00\xffbinary"
    request = request_type("PUT", "https://example.com/")
    request.set_bytes_body(data)
    signed = _sign(request)
    assert _body(signed) is data
    assert signed.headers["x-ms-content-sha256"] == content_hash(data)


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_a_bytearray_body_is_frozen_to_bytes(request_type: Any) -> None:
    data = bytearray(b"mutable")
    request = request_type("PUT", "https://example.com/")
    if request_type is HttpRequest:
        request._data = data
    else:
        request.data = data
    signed = _sign(request)
    data[0:1] = b"M"  # a later mutation cannot change what was signed
    assert _body(signed) == b"mutable"
    assert signed.headers["x-ms-content-sha256"] == content_hash(b"mutable")


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
@pytest.mark.parametrize("empty", [None, "", b""])
def test_an_empty_body_hashes_to_the_empty_hash(request_type: Any, empty: Any) -> None:
    request = request_type("POST", "https://example.com/")
    if empty is not None:
        request.set_bytes_body(empty) if isinstance(empty, bytes) else request.set_text_body(empty)
    assert _sign(request).headers["x-ms-content-sha256"] == EMPTY_HASH


def test_a_form_body_is_urlencoded_for_the_rest_request() -> None:
    request = HttpRequest("POST", "https://example.com/", data={"a": "b c", "é": ["1", "2"]})
    signed = _sign(request)
    expected = b"a=b+c&%C3%A9=1&%C3%A9=2"
    assert signed.content == expected
    assert signed.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert signed.headers["Content-Length"] == str(len(expected))
    assert signed.headers["x-ms-content-sha256"] == content_hash(expected)


def test_a_form_body_is_urlencoded_for_the_legacy_request() -> None:
    request = LegacyHttpRequest(
        "POST", "https://example.com/", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    request.set_formdata_body({"a": "1", "skip": None, "b": "x&y"})
    signed = _sign(request)
    assert signed.data == b"a=1&b=x%26y"


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_a_seekable_file_is_hashed_in_chunks_and_rewound(request_type: Any) -> None:
    data = b"0123456789" * 300_000  # three chunks
    stream = io.BytesIO(data)
    stream.seek(10)
    request = request_type("PUT", "https://example.com/")
    if request_type is HttpRequest:
        request = HttpRequest("PUT", "https://example.com/", content=stream)
    else:
        request.set_streamed_data_body(stream)
    signed = _sign(request)
    assert stream.tell() == 10
    assert signed.headers["x-ms-content-sha256"] == content_hash(data[10:])
    assert _body(signed) is stream


def _streamed(body: Any) -> LegacyHttpRequest:
    request = LegacyHttpRequest("PUT", "https://example.com/")
    request.data = body
    return request


class _NoSeek(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _chunks() -> Iterator[bytes]:
    yield b"chunk"


async def _async_chunks() -> AsyncIterator[bytes]:
    yield b"chunk"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _streamed(io.StringIO("text")), "text-mode file"),
        (lambda: _streamed(_NoSeek()), "non-seekable"),
        (lambda: _streamed(_chunks()), "generator"),
        (lambda: _streamed([b"a", b"b"]), "list"),
        (lambda: _streamed(_async_chunks()), "async iterable"),
        (lambda: HttpRequest("PUT", "https://example.com/", content=_async_chunks()), "async iterable"),
        (lambda: HttpRequest("POST", "https://example.com/", files={"f": b"x"}), "multipart"),
    ],
    ids=["text-file", "non-seekable", "generator", "list", "async-gen", "rest-async-gen", "multipart"],
)
def test_bodies_that_would_be_consumed_are_refused(make: Any, message: str) -> None:
    request = make()
    with pytest.raises(ValueError, match=message):
        _sign(request)
    body = _body(request)
    if hasattr(body, "aclose"):
        asyncio.run(body.aclose())


def test_a_legacy_multipart_form_is_refused() -> None:
    request = LegacyHttpRequest("POST", "https://example.com/")
    request.set_formdata_body({"file": "content"})
    with pytest.raises(ValueError, match="multipart"):
        _sign(request)


def test_a_text_file_is_rewound_even_when_refused() -> None:
    stream = io.StringIO("some text")
    with pytest.raises(ValueError, match="binary mode"):
        _sign(_streamed(stream))
    assert stream.tell() == 0


# --- keys --------------------------------------------------------------------------------------------


def test_key_rotation_through_update_changes_the_signature_and_reuses_the_cache() -> None:
    credential = AzureKeyCredential(VECTOR_KEY)
    policy = CommunicationAccessKeyCredentialPolicy(credential, _clock=lambda: VECTOR_TIME)

    def authorization() -> str:
        request = HttpRequest("GET", "https://example.com")
        policy.on_request(PipelineRequest(request, PipelineContext(None)))
        return request.headers["Authorization"]

    assert authorization() == _authorization(VECTORS[2][1])
    credential.update(KEY)
    rotated = authorization()
    assert rotated != _authorization(VECTORS[2][1])
    assert authorization() == rotated
    credential.update(VECTOR_KEY)
    assert authorization() == _authorization(VECTORS[2][1])


def test_rotation_to_an_invalid_key_fails_the_request_without_quoting_it() -> None:
    credential = AzureKeyCredential(KEY)
    policy = CommunicationAccessKeyCredentialPolicy(credential)
    credential.update("not*base64*secret")
    with pytest.raises(ValueError, match="not valid base64") as info:
        policy.on_request(PipelineRequest(HttpRequest("GET", "https://example.com"), PipelineContext(None)))
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("factory", [CommunicationAccessKeyCredentialPolicy, HttpxAuth, RequestsAuth])
@pytest.mark.parametrize("key", ["not*base64*secret", "c2VjcmV0X2tleQ", "   ", ""])
def test_an_invalid_key_is_a_value_error_at_construction(factory: Any, key: str) -> None:
    for credential in (key, AzureKeyCredential(key) if key else key):
        with pytest.raises(ValueError) as info:
            factory(credential)
        assert "secret" not in str(info.value)
        assert "c2VjcmV0X2tleQ" not in str(info.value)


@pytest.mark.parametrize("factory", [CommunicationAccessKeyCredentialPolicy, HttpxAuth, RequestsAuth])
@pytest.mark.parametrize("credential", [None, 42, b"cHc9PQ==", object()])
def test_a_credential_of_the_wrong_type_is_a_type_error(factory: Any, credential: Any) -> None:
    with pytest.raises(TypeError, match="AzureKeyCredential"):
        factory(credential)


@pytest.mark.parametrize("factory", [CommunicationAccessKeyCredentialPolicy, HttpxAuth, RequestsAuth])
def test_reprs_and_logs_never_show_the_key(factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = base64.b64encode(b"very secret key material").decode()
    signer = factory(AzureKeyCredential(secret))
    for text in (repr(signer), str(signer), repr(signer._key)):
        assert secret not in text
        assert "***" in text
    assert secret not in caplog.text


# --- factories ---------------------------------------------------------------------------------------


class _TokenCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 0)


class _AsyncTokenCredential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 0)

    async def close(self) -> None:
        return None


class _KeyLike:
    key = KEY


class _KeyAndToken(_TokenCredential):
    key = KEY


@pytest.mark.parametrize("credential", [AzureKeyCredential(KEY), KEY, _KeyLike()])
@pytest.mark.parametrize("factory", [create_communication_auth_policy, common_aio.create_communication_auth_policy])
def test_factories_give_the_hmac_policy_for_keys(credential: Any, factory: Any) -> None:
    policy = factory(credential, enable_cae=True)
    assert isinstance(policy, CommunicationAccessKeyCredentialPolicy)
    request = _sign(HttpRequest("GET", "https://example.com"), credential=credential)
    mine = HttpRequest("GET", "https://example.com")
    policy._clock = lambda: VECTOR_TIME
    policy.on_request(PipelineRequest(mine, PipelineContext(None)))
    assert mine.headers["Authorization"] == request.headers["Authorization"]


def test_sync_factory_gives_the_bearer_policy_for_token_credentials() -> None:
    policy = create_communication_auth_policy(_KeyAndToken(), enable_cae=True)
    assert type(policy) is BearerTokenCredentialPolicy
    assert policy._scopes == ("https://communication.azure.com//.default",)
    assert policy._credential.__class__ is _KeyAndToken
    assert policy._enable_cae is True
    assert create_communication_auth_policy(_TokenCredential())._enable_cae is False


def test_aio_factory_gives_the_async_bearer_policy_for_async_token_credentials() -> None:
    policy = common_aio.create_communication_auth_policy(_AsyncTokenCredential(), enable_cae=True)
    assert type(policy) is AsyncBearerTokenCredentialPolicy
    assert policy._scopes == ("https://communication.azure.com//.default",)
    assert policy._enable_cae is True


def test_sync_factory_refuses_an_async_token_credential() -> None:
    with pytest.raises(TypeError, match=r"aio\.create_communication_auth_policy"):
        create_communication_auth_policy(_AsyncTokenCredential())  # type: ignore[arg-type]


@pytest.mark.parametrize("factory", [create_communication_auth_policy, common_aio.create_communication_auth_policy])
@pytest.mark.parametrize("credential", [None, 42, object(), b"cHc9PQ=="])
def test_factories_refuse_other_credentials(factory: Any, credential: Any) -> None:
    with pytest.raises(TypeError, match="Expected an AzureKeyCredential"):
        factory(credential)


class _TokenInfoOnly:
    """azure-core's ``SupportsTokenInfo`` without ``get_token``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.calls.append(scopes)
        return AccessTokenInfo("info-token", 2**31)


class _AsyncTokenInfoOnly:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.calls.append(scopes)
        return AccessTokenInfo("async-info-token", 2**31)

    async def close(self) -> None:
        return None


def test_sync_factory_accepts_a_supports_token_info_credential_and_uses_it() -> None:
    """Regression: a credential with only ``get_token_info`` was refused, though azure-core accepts it."""
    credential = _TokenInfoOnly()
    policy = create_communication_auth_policy(credential)  # type: ignore[arg-type]
    assert type(policy) is BearerTokenCredentialPolicy
    request = PipelineRequest(HttpRequest("GET", "https://example.com/"), PipelineContext(None))
    policy.on_request(request)
    assert request.http_request.headers["Authorization"] == "Bearer info-token"
    assert credential.calls == [("https://communication.azure.com//.default",)]


async def test_aio_factory_accepts_an_async_supports_token_info_credential_and_uses_it() -> None:
    credential = _AsyncTokenInfoOnly()
    policy = common_aio.create_communication_auth_policy(credential)  # type: ignore[arg-type]
    assert type(policy) is AsyncBearerTokenCredentialPolicy
    request = PipelineRequest(HttpRequest("GET", "https://example.com/"), PipelineContext(None))
    await policy.on_request(request)
    assert request.http_request.headers["Authorization"] == "Bearer async-info-token"
    assert credential.calls == [("https://communication.azure.com//.default",)]


class _AsyncInfoSyncToken(_AsyncTokenInfoOnly):
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 0)


@pytest.mark.parametrize(
    "credential",
    [_TokenCredential(), _TokenInfoOnly(), _AsyncInfoSyncToken(), CommunicationTokenCredential("opaque-token")],
    ids=["sync-get_token", "sync-get_token_info", "one-sync-method", "sync-communication-credential"],
)
def test_aio_factory_refuses_a_sync_token_credential_pointing_to_the_sync_factory(credential: Any) -> None:
    """Regression: the async factory accepted a sync credential, which then blocked the event loop."""
    with pytest.raises(
        TypeError,
        match=r"sync token credential needs the sync policy: use "
        r"azure\.communication\.common\.create_communication_auth_policy",
    ):
        common_aio.create_communication_auth_policy(credential)


def test_sync_factory_refuses_an_async_supports_token_info_credential() -> None:
    with pytest.raises(TypeError, match=r"aio\.create_communication_auth_policy"):
        create_communication_auth_policy(_AsyncTokenInfoOnly())  # type: ignore[arg-type]


async def test_aio_factory_accepts_our_async_credential_and_async_mocks() -> None:
    async with common_aio.CommunicationTokenCredential("opaque-token") as ours:
        assert type(common_aio.create_communication_auth_policy(ours)) is AsyncBearerTokenCredentialPolicy
    # A callable that is not a plain function cannot be judged without calling it: left to azure-core.
    mocked = type("Mocked", (), {"get_token": AsyncMock(return_value=AccessToken("m", 2**31))})()
    assert type(common_aio.create_communication_auth_policy(mocked)) is AsyncBearerTokenCredentialPolicy


def test_is_sync_function_only_judges_plain_functions() -> None:
    async def coroutine_function() -> None:
        return None

    assert is_sync_function(len) is True
    assert is_sync_function(_TokenCredential().get_token) is True
    assert is_sync_function(_AsyncTokenCredential().get_token) is False
    assert is_sync_function(functools.partial(coroutine_function)) is False
    assert is_sync_function(MagicMock()) is False


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (AzureKeyCredential(KEY), True),
        (_KeyLike(), True),
        (_KeyAndToken(), False),
        (_TokenCredential(), False),
        (KEY, False),
        (None, False),
        (type("K", (), {"key": b"bytes"})(), False),
    ],
)
def test_is_key_credential_uses_the_js_duck_typing(obj: Any, expected: bool) -> None:
    assert is_key_credential(obj) is expected


# --- plain-HTTP adapters without a network -----------------------------------------------------------


def test_httpx_auth_canonicalizes_the_url_and_signs_the_host_header() -> None:
    request = httpx.Request("POST", "https://EXAMPLE.com/8%3Aacs?x=%7e", content=TEXT.encode())
    signed = next(HttpxAuth(KEY).sync_auth_flow(request))
    assert str(signed.url) == "https://example.com/8:acs?x=~"
    assert signed.headers["x-ms-content-sha256"] == content_hash(TEXT.encode())


def test_requests_auth_encodes_str_bodies_as_utf8() -> None:
    prepared = requests.Request("POST", "https://example.com/", data=TEXT).prepare()
    signed = RequestsAuth(KEY)(prepared)
    assert signed.body == TEXT.encode("utf-8")
    assert signed.headers["x-ms-content-sha256"] == content_hash(TEXT.encode("utf-8"))


def test_requests_auth_fixes_content_length_when_preparing() -> None:
    prepared = requests.Request("POST", "https://example.com/", data=TEXT, auth=RequestsAuth(KEY)).prepare()
    assert prepared.headers["Content-Length"] == str(len(TEXT.encode("utf-8")))


def test_requests_auth_freezes_a_bytearray_body() -> None:
    prepared = requests.Request("POST", "https://example.com/").prepare()
    prepared.body = bytearray(b"abc")  # type: ignore[assignment]
    signed = RequestsAuth(KEY)(prepared)
    assert signed.body == b"abc"
    assert type(signed.body) is bytes


def test_requests_auth_hashes_and_rewinds_a_file() -> None:
    stream = io.BytesIO(b"file body")
    prepared = requests.Request("PUT", "https://example.com/", data=stream).prepare()
    signed = RequestsAuth(KEY)(prepared)
    assert stream.tell() == 0
    assert signed.headers["x-ms-content-sha256"] == content_hash(b"file body")


def test_requests_auth_refuses_a_generator_body() -> None:
    prepared = requests.Request("PUT", "https://example.com/", data=_chunks()).prepare()
    with pytest.raises(ValueError, match="generator"):
        RequestsAuth(KEY)(prepared)


# --- one body normaliser for the policy and the requests adapter ---------------------------------------


def _policy_outcome(body: Any) -> tuple[str, Any]:
    request = LegacyHttpRequest("PUT", "https://example.com/")
    request.data = body
    try:
        signed = _sign(request)
    except ValueError as exc:
        return "refused", str(exc)
    return signed.headers["x-ms-content-sha256"], signed.data


def _requests_outcome(body: Any) -> tuple[str, Any]:
    prepared = requests.Request("PUT", "https://example.com/").prepare()
    prepared.body = body
    try:
        signed = RequestsAuth(VECTOR_KEY, _clock=lambda: VECTOR_TIME)(prepared)
    except ValueError as exc:
        return "refused", str(exc)
    return signed.headers["x-ms-content-sha256"], signed.body


BODIES: dict[str, Any] = {
    "none": lambda: None,
    "bytes": lambda: b"raw \x00 bytes",
    "str": lambda: TEXT,
    "bytearray": lambda: bytearray(TEXT.encode()),
    "memoryview": lambda: memoryview(TEXT.encode()),
    "form dict": lambda: {"a": "b c", "skip": None, "é": ["1", "2"]},
    "binary file": lambda: io.BytesIO(b"file body"),
    "text file": lambda: io.StringIO("text"),
    "non-seekable": lambda: _NoSeek(),
    "generator": lambda: _chunks(),
    "list": lambda: [b"a", b"b"],
}


@pytest.mark.parametrize("make", BODIES.values(), ids=BODIES.keys())
def test_policy_and_requests_adapter_normalise_bodies_alike(make: Any) -> None:
    """Regression: requests.py had its own body normaliser (no form dicts, other refusals)."""
    policy_hash, policy_body = _policy_outcome(make())
    requests_hash, requests_body = _requests_outcome(make())
    assert requests_hash == policy_hash
    if policy_hash == "refused":
        assert requests_body == policy_body  # the same message
    elif isinstance(policy_body, io.IOBase):
        assert policy_body.tell() == requests_body.tell() == 0  # hashed and rewound, sent as is
    else:
        assert requests_body == policy_body
        assert policy_body is None or type(policy_body) is bytes


def test_requests_adapter_refuses_an_async_iterable_like_the_policy() -> None:
    chunks = _async_chunks()
    try:
        assert _requests_outcome(chunks) == ("refused", _policy_outcome(chunks)[1])
        assert "async iterable" in _requests_outcome(chunks)[1]
    finally:
        asyncio.run(chunks.aclose())
