"""Signing edge cases found on the wire: form bodies keep their Content-Type, URLs with user info are refused
before anything is sent, keys with a non-ASCII character leave no secret in the exception chain, and every
private azure-core attribute the body normaliser still relies on is pinned."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import requests
from azure.core.credentials import AzureKeyCredential
from azure.core.pipeline import AsyncPipeline, Pipeline, PipelineRequest
from azure.core.pipeline.policies import AsyncRetryPolicy, RetryPolicy
from azure.core.pipeline.transport import AioHttpTransport, RequestsTransport
from azure.core.pipeline.transport import HttpRequest as LegacyHttpRequest
from azure.core.rest import HttpRequest
from signing_server import SigningServer

from azure.communication.common import (
    CommunicationAccessKeyCredentialPolicy,
    parse_client_arguments,
    parse_connection_string,
)
from azure.communication.common._body import (
    FORM_CONTENT_TYPE,
    REST_PRIVATE_ATTRIBUTES,
    hash_body,
    sign_request_body,
)
from azure.communication.common._signing import content_hash
from azure.communication.common.httpx import AccessKeyAuth as HttpxAuth
from azure.communication.common.requests import AccessKeyAuth as RequestsAuth

KEY = base64.b64encode(b"body edge cases key, 32 bytes!!!").decode()
# A key with a zero-width space pasted into it: not base64, and not ASCII (so encoding it fails inside).
ZWSP_KEY = KEY[:10] + "\u200b" + KEY[10:]
FORM = {"name": "Zoë Smith", "tags": ["a b", "c&d"], "skip": None}
FORM_WIRE = [("name", "Zoë Smith"), ("tags", "a b"), ("tags", "c&d")]


@pytest.fixture(scope="module")
def server() -> Iterator[SigningServer]:
    with SigningServer(KEY) as running:
        yield running


@pytest.fixture
def srv(server: SigningServer) -> SigningServer:
    server.reset(KEY)
    return server


def _legacy_form(url: str) -> LegacyHttpRequest:
    request = LegacyHttpRequest("POST", url, headers={"Content-Type": FORM_CONTENT_TYPE})
    request.set_formdata_body(FORM)
    # azure-core's set_formdata_body moves the header into the transport's hands: it is gone from the request.
    assert "Content-Type" not in request.headers
    return request


def _rest_form(url: str) -> HttpRequest:
    return HttpRequest("POST", url, data=FORM)


def _check_form_arrival(srv: SigningServer) -> None:
    seen = srv.last()
    assert seen.valid
    assert seen.headers["content-type"] == FORM_CONTENT_TYPE
    assert parse_qsl(seen.body.decode("ascii")) == FORM_WIRE
    assert seen.headers["content-length"] == str(len(seen.body))


@pytest.mark.parametrize("build", [_legacy_form, _rest_form], ids=["legacy-set_formdata_body", "rest-data"])
def test_a_form_keeps_its_content_type_over_requests(srv: SigningServer, build: Any) -> None:
    policy = CommunicationAccessKeyCredentialPolicy(KEY)
    with Pipeline(RequestsTransport(use_env_settings=False), [RetryPolicy(retry_total=0), policy]) as pipeline:
        response = pipeline.run(build(f"{srv.origin}/form"))
    assert response.http_response.status_code == 200
    _check_form_arrival(srv)


@pytest.mark.parametrize("build", [_legacy_form, _rest_form], ids=["legacy-set_formdata_body", "rest-data"])
async def test_a_form_keeps_its_content_type_over_aiohttp(srv: SigningServer, build: Any) -> None:
    policy = CommunicationAccessKeyCredentialPolicy(KEY)
    async with AsyncPipeline(AioHttpTransport(), [AsyncRetryPolicy(retry_total=0), policy]) as pipeline:
        response = await pipeline.run(build(f"{srv.origin}/form"))
        await response.http_response.load_body()
    assert response.http_response.status_code == 200
    _check_form_arrival(srv)


def test_a_caller_content_type_on_a_form_is_kept() -> None:
    request = HttpRequest("POST", "https://h/", data={"a": "1"}, headers={"Content-Type": "text/x-custom"})
    sign_request_body(request)
    assert request.headers["Content-Type"] == "text/x-custom"
    assert request.content == b"a=1"


# --------------------------------------------------------------------------------------------------------
# Private azure-core attributes: each one relied on is pinned, so a rename fails here, loudly
# --------------------------------------------------------------------------------------------------------


def test_the_rest_request_still_has_the_private_attributes_the_signer_relies_on() -> None:
    data_request = HttpRequest("POST", "https://h/", json={"a": 1})
    assert set(REST_PRIVATE_ATTRIBUTES) == {"_data", "_files", "_multipart_mixed_info_val"}
    # The body: read through the public `content`, written as `_data`.
    assert vars(data_request)["_data"] == data_request.content == '{"a": 1}'
    assert "_files" in vars(data_request)
    assert vars(data_request)["_files"] is None
    vars(data_request)["_data"] = b"replaced"
    assert data_request.content == b"replaced"
    # Files (multipart/form-data) live in `_files`.
    files_request = HttpRequest("POST", "https://h/", files={"f": io.BytesIO(b"x")})
    assert vars(files_request)["_files"]
    # multipart/mixed parts live in `_multipart_mixed_info_val`.
    mixed = HttpRequest("POST", "https://h/batch")
    mixed.set_multipart_mixed(HttpRequest("DELETE", "https://h/x"))
    assert vars(mixed)["_multipart_mixed_info_val"]


@pytest.mark.parametrize(
    "build",
    [
        lambda: HttpRequest("POST", "https://h/", files={"f": io.BytesIO(b"x")}),
        lambda: HttpRequest("POST", "https://h/", files={"f": io.BytesIO(b"x")}, data={"a": "b"}),
        lambda: _mixed(HttpRequest),
        lambda: _legacy_files(),
        lambda: _mixed(LegacyHttpRequest),
    ],
    ids=["rest-files", "rest-files-and-data", "rest-mixed", "legacy-files", "legacy-mixed"],
)
def test_multipart_bodies_are_refused_not_signed_empty(build: Any) -> None:
    with pytest.raises(ValueError, match="Cannot sign a multipart request"):
        sign_request_body(build())


def _mixed(kind: Any) -> Any:
    request = kind("POST", "https://h/batch")
    request.set_multipart_mixed(kind("DELETE", "https://h/x"))
    return request


def _legacy_files() -> LegacyHttpRequest:
    request = LegacyHttpRequest("POST", "https://h/")
    request.set_formdata_body({"f": "x"})  # no form Content-Type: azure-core makes it multipart files
    return request


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: HttpRequest("POST", "https://h/", json={"é": 1}), b'{"\\u00e9": 1}'),
        (lambda: HttpRequest("POST", "https://h/", content="é"), "é".encode()),
        (lambda: HttpRequest("POST", "https://h/", content=b"raw"), b"raw"),
        (lambda: HttpRequest("POST", "https://h/", data={"a": "b"}), b"a=b"),
    ],
    ids=["json", "text", "bytes", "form"],
)
def test_the_rest_body_read_through_content_is_the_body_signed(make: Any, expected: bytes) -> None:
    request = make()
    body_hash = sign_request_body(request)
    assert body_hash == content_hash(expected)
    assert request.content == expected


def test_hash_body_lives_in_the_body_module_and_the_policy_reexports_it() -> None:
    from azure.communication.common import _policy

    assert _policy.hash_body is hash_body
    assert hash_body({"a": "1", "b": None}) == (content_hash(b"a=1"), b"a=1")


# --------------------------------------------------------------------------------------------------------
# URLs with user info: refused before anything is sent, by the policy and both adapters
# --------------------------------------------------------------------------------------------------------

USERINFO_PASSWORD = "p4ssw0rd-in-url"


def _userinfo_url(srv: SigningServer, path: str = "/x") -> str:
    return f"http://user:{USERINFO_PASSWORD}@127.0.0.1:{srv.port}{path}"


def _check_refused(error: BaseException, srv: SigningServer) -> None:
    assert "user info" in str(error)
    assert USERINFO_PASSWORD not in str(error)
    assert srv.seen == []


def test_the_policy_refuses_user_info_over_requests(srv: SigningServer) -> None:
    policy = CommunicationAccessKeyCredentialPolicy(KEY)
    transport = RequestsTransport(use_env_settings=False)
    with Pipeline(transport, [RetryPolicy(retry_total=0), policy]) as pipeline, pytest.raises(ValueError) as raised:
        pipeline.run(HttpRequest("GET", _userinfo_url(srv)))
    _check_refused(raised.value, srv)


async def test_the_policy_refuses_user_info_over_aiohttp(srv: SigningServer) -> None:
    policy = CommunicationAccessKeyCredentialPolicy(KEY)
    async with AsyncPipeline(AioHttpTransport(), [AsyncRetryPolicy(retry_total=0), policy]) as pipeline:
        with pytest.raises(ValueError) as raised:
            await pipeline.run(HttpRequest("GET", _userinfo_url(srv)))
    _check_refused(raised.value, srv)


def test_the_requests_adapter_refuses_user_info(srv: SigningServer) -> None:
    with requests.Session() as session:
        session.trust_env = False
        with pytest.raises(ValueError) as raised:
            session.get(_userinfo_url(srv), auth=RequestsAuth(KEY), timeout=10)
    _check_refused(raised.value, srv)


def test_the_httpx_adapter_refuses_user_info(srv: SigningServer) -> None:
    with httpx.Client(auth=HttpxAuth(KEY), trust_env=False) as client, pytest.raises(ValueError) as raised:
        client.get(_userinfo_url(srv))
    _check_refused(raised.value, srv)


async def test_the_async_httpx_adapter_refuses_user_info(srv: SigningServer) -> None:
    async with httpx.AsyncClient(auth=HttpxAuth(KEY), trust_env=False) as client:
        with pytest.raises(ValueError) as raised:
            await client.get(_userinfo_url(srv))
    _check_refused(raised.value, srv)


def test_without_user_info_the_same_request_is_signed_and_sent(srv: SigningServer) -> None:
    with requests.Session() as session:
        session.trust_env = False
        response = session.get(f"{srv.origin}/x", auth=RequestsAuth(KEY), timeout=10)
    assert response.status_code == 200
    assert srv.last().valid


# --------------------------------------------------------------------------------------------------------
# A key with a non-ASCII character: a clean ValueError, and nothing in its chain carries the key
# --------------------------------------------------------------------------------------------------------


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _rotated_policy_request() -> None:
    credential = AzureKeyCredential(KEY)
    policy = CommunicationAccessKeyCredentialPolicy(credential)
    credential.update(ZWSP_KEY)
    policy.on_request(PipelineRequest(HttpRequest("GET", "https://h/"), None))  # type: ignore[arg-type]


KEY_PATHS = {
    "policy-string": lambda: CommunicationAccessKeyCredentialPolicy(ZWSP_KEY),
    "policy-key-credential": lambda: CommunicationAccessKeyCredentialPolicy(AzureKeyCredential(ZWSP_KEY)),
    "policy-rotated-key": _rotated_policy_request,
    "httpx-adapter": lambda: HttpxAuth(ZWSP_KEY),
    "requests-adapter": lambda: RequestsAuth(AzureKeyCredential(ZWSP_KEY)),
    "parse_connection_string": lambda: parse_connection_string(f"endpoint=https://h/;accesskey={ZWSP_KEY}"),
    "parse_client_arguments": lambda: parse_client_arguments(f"endpoint=https://h/;accesskey={ZWSP_KEY}"),
}


@pytest.mark.parametrize("path", KEY_PATHS)
def test_a_non_ascii_key_leaves_no_secret_in_the_exception_chain(path: str, secret_registry: Any) -> None:
    secret_registry.register(ZWSP_KEY, "the key with a zero-width space")
    with pytest.raises(ValueError, match="not valid base64") as raised:
        KEY_PATHS[path]()
    # Nothing chained at all: the decoder's UnicodeEncodeError (.object is the whole key) is gone.
    assert _chain(raised.value) == [raised.value]
    secret_registry.assert_clean(raised.value)
