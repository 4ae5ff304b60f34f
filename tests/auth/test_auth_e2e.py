"""End to end: every signer, over every transport, verified by a real server from the raw bytes it receives."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
from azure.core.credentials import AzureKeyCredential
from azure.core.pipeline import AsyncPipeline, Pipeline
from azure.core.pipeline.policies import AsyncRetryPolicy, RetryPolicy
from azure.core.pipeline.transport import AioHttpTransport, RequestsTransport
from azure.core.pipeline.transport import HttpRequest as LegacyHttpRequest
from azure.core.rest import HttpRequest
from signing_server import SigningServer

from azure.communication.common import CommunicationAccessKeyCredentialPolicy
from azure.communication.common._url import canonicalize
from azure.communication.common.httpx import AccessKeyAuth as HttpxAuth
from azure.communication.common.requests import AccessKeyAuth as RequestsAuth

KEY = base64.b64encode(b"end-to-end test key, 32 bytes!!!").decode()
OTHER_KEY = base64.b64encode(b"a rotated key, also fine as HMAC").decode()

TEXT = "héllo wörld 😀 ∑"
JSON_BODY = {"name": "Zoë 😀", "values": [1, 2, 3]}

# Request targets that clients rewrite differently: escaped and unescaped ':', spaces, non-ASCII, '~', dot
# segments, '+' and escaped '&' '=' '+' in queries, empty query values, a bare '?'.
TARGETS = [
    "/identities/8%3Aacs%3Aresource_user?api-version=2025-06-30",
    "/identities/8:acs:resource_user",
    "/a b/ü/😀?name=ü ö&empty=&flag",
    "/x/%7euser/./y/../z?q=%2B%26%3D&plus=a+b&colon=%3a",
    "?",
]

# Body kind -> (what the caller passes, the bytes that must arrive).
BODIES: dict[str, tuple[Any, bytes]] = {
    "none": (None, b""),
    "empty": (b"", b""),
    "bytes": (b"\x00\x01binary\xff", b"\x00\x01binary\xff"),
    "text": (TEXT, TEXT.encode("utf-8")),
    "json": (JSON_BODY, b""),  # bytes depend on the client's JSON encoder: compared as JSON
}


class FakeClock:
    """A settable clock; ``tick`` makes every read one second later than the previous one."""

    def __init__(self, start: float = 1_700_000_000.0, *, tick: float = 0.0) -> None:
        self.now = start
        self.tick = tick

    def __call__(self) -> float:
        value = self.now
        self.now += self.tick
        return value

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def server() -> Iterator[SigningServer]:
    with SigningServer(KEY) as running:
        yield running


@pytest.fixture
def srv(server: SigningServer) -> SigningServer:
    server.reset(KEY)
    return server


def _rest_request(method: str, url: str, body_kind: str, headers: dict[str, str]) -> HttpRequest:
    body = BODIES[body_kind][0]
    if body_kind == "json":
        return HttpRequest(method, url, json=body, headers=headers)
    return HttpRequest(method, url, content=body, headers=headers)


def _legacy_request(method: str, url: str, body_kind: str, headers: dict[str, str]) -> LegacyHttpRequest:
    request = LegacyHttpRequest(method, url, headers=headers)
    body = BODIES[body_kind][0]
    if body_kind == "json":
        request.set_json_body(body)
    elif body_kind == "text":
        request.set_text_body(body)
    elif body is not None:
        request.set_bytes_body(body)
    return request


Sender = Callable[..., Any]


def _send_pipeline_requests(
    url: str,
    method: str,
    body_kind: str,
    credential: Any,
    *,
    legacy: bool = False,
    headers: dict[str, str] | None = None,
    clock: Callable[[], float] | None = None,
) -> int:
    policy = CommunicationAccessKeyCredentialPolicy(credential, **({"_clock": clock} if clock else {}))
    build = _legacy_request if legacy else _rest_request
    with Pipeline(
        transport=RequestsTransport(use_env_settings=False),
        policies=[RetryPolicy(retry_total=2, retry_backoff_factor=0), policy],
    ) as pipeline:
        response = pipeline.run(build(method, url, body_kind, headers or {}))
        return int(response.http_response.status_code)


async def _send_pipeline_aiohttp(
    url: str,
    method: str,
    body_kind: str,
    credential: Any,
    *,
    legacy: bool = False,
    headers: dict[str, str] | None = None,
    clock: Callable[[], float] | None = None,
) -> int:
    policy = CommunicationAccessKeyCredentialPolicy(credential, **({"_clock": clock} if clock else {}))
    build = _legacy_request if legacy else _rest_request
    async with AsyncPipeline(
        transport=AioHttpTransport(),
        policies=[AsyncRetryPolicy(retry_total=2, retry_backoff_factor=0), policy],
    ) as pipeline:
        response = await pipeline.run(build(method, url, body_kind, headers or {}))
        await response.http_response.load_body()
        return int(response.http_response.status_code)


def _httpx_kwargs(body_kind: str) -> dict[str, Any]:
    body = BODIES[body_kind][0]
    if body_kind == "json":
        return {"json": body}
    return {} if body is None else {"content": body}


def _send_httpx(url: str, method: str, body_kind: str, credential: Any, **kw: Any) -> int:
    with httpx.Client(auth=HttpxAuth(credential), trust_env=False) as client:
        response = client.request(method, url, headers=kw.get("headers"), **_httpx_kwargs(body_kind))
        return response.status_code


async def _send_httpx_async(url: str, method: str, body_kind: str, credential: Any, **kw: Any) -> int:
    async with httpx.AsyncClient(auth=HttpxAuth(credential), trust_env=False) as client:
        response = await client.request(method, url, headers=kw.get("headers"), **_httpx_kwargs(body_kind))
        return response.status_code


def _send_requests(url: str, method: str, body_kind: str, credential: Any, **kw: Any) -> int:
    body = BODIES[body_kind][0]
    kwargs: dict[str, Any] = {"json": body} if body_kind == "json" else {"data": body}
    with requests.Session() as session:
        session.trust_env = False
        response = session.request(
            method, url, headers=kw.get("headers"), auth=RequestsAuth(credential), timeout=10, **kwargs
        )
        return response.status_code


SYNC_CLIENTS: dict[str, Sender] = {
    "pipeline-requests": _send_pipeline_requests,
    "pipeline-requests-legacy": lambda *a, **k: _send_pipeline_requests(*a, legacy=True, **k),
    "httpx": _send_httpx,
    "requests-auth": _send_requests,
}
ASYNC_CLIENTS: dict[str, Sender] = {
    "pipeline-aiohttp": _send_pipeline_aiohttp,
    "pipeline-aiohttp-legacy": lambda *a, **k: _send_pipeline_aiohttp(*a, legacy=True, **k),
    "httpx-async": _send_httpx_async,
}


def _check_arrival(srv: SigningServer, url: str, body_kind: str) -> None:
    seen = srv.last()
    assert seen.valid, f"signature rejected for target {seen.target!r}"
    # The canonical target is what went on the wire, byte for byte.
    assert seen.target == canonicalize(url).path_and_query
    assert seen.host == f"127.0.0.1:{srv.port}"
    expected = BODIES[body_kind][1]
    if body_kind == "json":
        assert json.loads(seen.body) == JSON_BODY
    else:
        assert seen.body == expected


CASES = [
    *((target, "none") for target in TARGETS),
    *(("/bodies", kind) for kind in ("empty", "bytes", "text", "json")),
    (TARGETS[2], "text"),
]


@pytest.mark.parametrize("client", SYNC_CLIENTS)
@pytest.mark.parametrize(("target", "body_kind"), CASES)
def test_sync_signers_are_verified_from_the_raw_request(
    srv: SigningServer, client: str, target: str, body_kind: str
) -> None:
    url = srv.origin + target
    method = "GET" if body_kind == "none" else "POST"
    status = SYNC_CLIENTS[client](url, method, body_kind, AzureKeyCredential(KEY))
    assert status == 200
    _check_arrival(srv, url, body_kind)


@pytest.mark.parametrize("client", ASYNC_CLIENTS)
@pytest.mark.parametrize(("target", "body_kind"), CASES)
async def test_async_signers_are_verified_from_the_raw_request(
    srv: SigningServer, client: str, target: str, body_kind: str
) -> None:
    url = srv.origin + target
    method = "GET" if body_kind == "none" else "POST"
    status = await ASYNC_CLIENTS[client](url, method, body_kind, AzureKeyCredential(KEY))
    assert status == 200
    _check_arrival(srv, url, body_kind)


def test_precondition_azure_core_counts_characters_in_content_length_of_str_bodies() -> None:
    # The bug the policy works around: azure-core counts characters, not bytes, for str bodies.
    request = LegacyHttpRequest("POST", "http://127.0.0.1/")
    request.set_text_body(TEXT)
    assert request.headers["Content-Length"] == str(len(TEXT))
    assert len(TEXT.encode("utf-8")) > len(TEXT)


@pytest.mark.parametrize("key_as", ["credential", "string"])
def test_the_key_may_be_given_as_a_plain_string(srv: SigningServer, key_as: str) -> None:
    credential: Any = AzureKeyCredential(KEY) if key_as == "credential" else KEY
    for send in SYNC_CLIENTS.values():
        assert send(srv.origin + "/k", "GET", "none", credential) == 200


def test_a_caller_set_host_header_is_the_one_signed(srv: SigningServer) -> None:
    headers = {"Host": "acs.example.test"}
    for name in ("pipeline-requests", "httpx", "requests-auth"):
        status = SYNC_CLIENTS[name](srv.origin + "/h", "GET", "none", KEY, headers=headers)
        assert status == 200, name
        assert srv.last().host == "acs.example.test"


async def test_a_caller_set_host_header_is_the_one_signed_over_aiohttp(srv: SigningServer) -> None:
    status = await _send_pipeline_aiohttp(srv.origin + "/h", "GET", "none", KEY, headers={"Host": "acs.example.test"})
    assert status == 200
    assert srv.last().host == "acs.example.test"


def test_a_retried_request_carries_a_fresh_valid_signature(srv: SigningServer) -> None:
    srv.scripted.append((503, {"Retry-After": "0"}))
    clock = FakeClock(tick=1.0)
    status = _send_pipeline_requests(srv.origin + "/retry", "PUT", "text", KEY, clock=clock)
    assert status == 200
    first, second = srv.seen
    assert (first.status, second.status) == (503, 200)
    assert (first.valid, second.valid) == (True, True)
    assert first.headers["x-ms-date"] != second.headers["x-ms-date"]
    assert first.headers["authorization"] != second.headers["authorization"]
    assert second.body == TEXT.encode("utf-8")


async def test_a_retried_request_carries_a_fresh_valid_signature_over_aiohttp(srv: SigningServer) -> None:
    srv.scripted.append((503, {"Retry-After": "0"}))
    clock = FakeClock(tick=1.0)
    status = await _send_pipeline_aiohttp(
        srv.origin + "/retry/8%3Aacs%3Ax", "PUT", "json", KEY, legacy=True, clock=clock
    )
    assert status == 200
    first, second = srv.seen
    assert (first.status, second.status) == (503, 200)
    assert (first.valid, second.valid) == (True, True)
    assert first.headers["x-ms-date"] != second.headers["x-ms-date"]
    assert json.loads(second.body) == JSON_BODY


def test_key_rotation_through_update(srv: SigningServer) -> None:
    credential = AzureKeyCredential(KEY)
    policy = CommunicationAccessKeyCredentialPolicy(credential)
    auths = [HttpxAuth(credential), RequestsAuth(credential)]
    srv.reset(OTHER_KEY)
    with (
        Pipeline(transport=RequestsTransport(use_env_settings=False), policies=[policy]) as pipeline,
        httpx.Client(auth=auths[0], trust_env=False) as client,
    ):

        def statuses() -> list[int]:
            return [
                pipeline.run(HttpRequest("GET", srv.origin + "/r")).http_response.status_code,
                client.get(srv.origin + "/r").status_code,
                requests.get(srv.origin + "/r", auth=auths[1], timeout=10).status_code,
            ]

        assert statuses() == [401, 401, 401]
        credential.update(OTHER_KEY)
        assert statuses() == [200, 200, 200]
    assert all(seen.valid == (seen.status == 200) for seen in srv.seen)


def test_the_server_rejects_a_tampered_request(srv: SigningServer) -> None:
    # Guards the verifier itself: a request signed for another target must fail.
    request = requests.Request("GET", srv.origin + "/signed").prepare()
    RequestsAuth(KEY)(request)
    request.url = srv.origin + "/other"
    with requests.Session() as session:
        assert session.send(request, timeout=10).status_code == 401
    assert not srv.last().valid
