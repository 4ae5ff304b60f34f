"""Case 5: HMAC signing with the azure-core policy (``on_request`` only).

Small: a ``POST /identities?api-version=2023-10-01`` request with the JSON body
``{"createTokenWithScopes": ["chat"]}`` (what ``create_user_and_token`` sends), a fresh
``azure.core.rest.HttpRequest`` for every call (built untimed), against the peers' ``HMACCredentialsPolicy``.
Floor: the signing arithmetic alone (SHA-256 of the body, HMAC of the string to sign, base64) on precomputed
strings, no request object.

Large: a 10 MiB ``bytes`` body, MB/s (10^6 bytes) against plain ``hashlib.sha256(body).digest()``. The
peers call ``body.encode()``, which fails on ``bytes``; their rate on the same body as ``str`` is shown for
reference.

Every signature produced is checked with the project's signing core (``_signing``) against the request as it
leaves the policy (method, path and query, ``x-ms-date``, host, content hash).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AzureKeyCredential
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest

from _common import (
    PEERS,
    describe_exception,
    emit,
    interleaved_batches,
    peer_module,
    quick_or_full,
    rounds_for,
)

CASE = "signing"
ENDPOINT = "https://contoso.communication.azure.com"
URL = ENDPOINT + "/identities?api-version=2023-10-01"
BODY = {"createTokenWithScopes": ["chat"]}
ACCESS_KEY = base64.b64encode(bytes(range(32))).decode("ascii")
LARGE_SIZE = 10 * 1024 * 1024


def new_request(body: Any = None, *, json_body: Any = None) -> PipelineRequest[Any]:
    request = HttpRequest("POST", URL, json=json_body, content=body)
    return PipelineRequest(request, PipelineContext(None))


def verify(request: PipelineRequest[Any]) -> bool:
    """Recompute the signature from what is on the request, with the project's own signing core."""
    from azure.communication.common import _signing

    http = request.http_request
    parts = urlsplit(http.url)
    path_and_query = parts.path + ("?" + parts.query if parts.query else "")
    body = http.content if hasattr(http, "content") else http.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    body_hash = _signing.content_hash(body or b"")
    headers = http.headers
    if headers.get("x-ms-content-sha256") != body_hash:
        return False
    expected = _signing.sign(
        method=http.method,
        path_and_query=path_and_query,
        host=headers.get("Host") or parts.netloc,
        body_hash=body_hash,
        key=_signing.decode_access_key(ACCESS_KEY),
        date=headers["x-ms-date"],
    )
    return bool(headers.get("Authorization") == expected["Authorization"])


def policies() -> tuple[dict[str, Any], dict[str, str]]:
    found: dict[str, Any] = {}
    problems: dict[str, str] = {}
    try:
        from azure.communication.common import CommunicationAccessKeyCredentialPolicy

        found["ours"] = CommunicationAccessKeyCredentialPolicy(AzureKeyCredential(ACCESS_KEY))
    except Exception as exc:
        problems["ours"] = f"not available: {describe_exception(exc)}"
    for peer in PEERS:
        try:
            cls = peer_module(peer, "policy").HMACCredentialsPolicy
            found[peer] = cls(ENDPOINT, AzureKeyCredential(ACCESS_KEY))
        except Exception as exc:
            problems[peer] = f"crashed: {describe_exception(exc)}"
    return found, problems


def floor_sign_factory(n: int) -> Callable[[], object]:
    key = base64.b64decode(ACCESS_KEY)
    body = json.dumps(BODY).encode()
    date = "Wed, 13 Apr 2022 18:09:12 GMT"
    path = "/identities?api-version=2023-10-01"
    host = "contoso.communication.azure.com"

    def batch() -> None:
        for _ in range(n):
            body_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
            to_sign = f"POST\n{path}\n{date};{host};{body_hash}"
            base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()

    return batch


def policy_factory(policy: Any) -> Callable[[int], Callable[[], object]]:
    def factory(n: int) -> Callable[[], object]:
        requests = [new_request(json_body=BODY) for _ in range(n)]
        on_request = policy.on_request

        def batch() -> None:
            for request in requests:
                on_request(request)

        return batch

    return factory


def run_small(quick: bool) -> None:
    found, problems = policies()
    verdicts: dict[str, str] = {}
    factories: dict[str, Callable[[int], Callable[[], object]]] = {}
    for name, policy in found.items():
        try:
            request = new_request(json_body=BODY)
            policy.on_request(request)
            verdicts[name] = "verifies" if verify(request) else "DOES NOT VERIFY"
        except Exception as exc:
            problems[name] = f"crashed: {describe_exception(exc)}"
            continue
        factories[name] = policy_factory(policy)
    factories["floor"] = floor_sign_factory
    verdicts["floor"] = "n/a"
    n = quick_or_full(quick, 200, 500)
    samples = interleaved_batches(factories, {name: n for name in factories}, rounds_for(quick))
    for name, status in problems.items():
        emit({"case": CASE, "contender": f"small:{name}", "status": status})
    for name, values in samples.items():
        emit(
            {
                "case": CASE,
                "contender": f"small:{name}",
                "status": "ok",
                **values.summary(),
                "signature": verdicts[name],
            }
        )


def run_large(quick: bool) -> None:
    found, problems = policies()
    body = bytes(range(256)) * (LARGE_SIZE // 256)
    text_body = "x" * LARGE_SIZE
    factories: dict[str, Callable[[int], Callable[[], object]]] = {}
    verdicts: dict[str, str] = {}

    def floor_factory(n: int) -> Callable[[], object]:
        def batch() -> None:
            for _ in range(n):
                hashlib.sha256(body).digest()

        return batch

    def body_factory(policy: Any, payload: Any) -> Callable[[int], Callable[[], object]]:
        def factory(n: int) -> Callable[[], object]:
            requests = [new_request(payload) for _ in range(n)]

            def batch() -> None:
                for request in requests:
                    policy.on_request(request)

            return batch

        return factory

    for name, policy in found.items():
        for label, payload in (("bytes", body), ("str", text_body)):
            if name == "ours" and label == "str":
                continue
            key = f"large_{label}:{name}"
            try:
                request = new_request(payload)
                policy.on_request(request)
                verdicts[key] = "verifies" if verify(request) else "DOES NOT VERIFY"
            except Exception as exc:
                problems[key] = f"crashed: {describe_exception(exc)}"
                continue
            factories[key] = body_factory(policy, payload)
    factories["large_bytes:floor"] = floor_factory
    verdicts["large_bytes:floor"] = "n/a"
    samples = interleaved_batches(factories, {name: 1 for name in factories}, quick_or_full(quick, 5, 21))
    for key, status in problems.items():
        if key in found or ":" not in key:
            key = f"large_bytes:{key}"
        emit({"case": CASE, "contender": key, "status": status})
    for key, values in samples.items():
        summary = values.summary()
        ns = summary["ns_per_call"]
        emit(
            {
                "case": CASE,
                "contender": key,
                "status": "ok",
                **summary,
                "mb_per_s": LARGE_SIZE / (ns / 1e9) / 1e6,
                "cpu_mb_per_s": LARGE_SIZE / (summary["cpu_ns_per_call"] / 1e9) / 1e6,
                "signature": verdicts[key],
                "body_bytes": LARGE_SIZE,
            }
        )


def run(contender: str, *, quick: bool, part: str = "both") -> None:
    if part in ("small", "both"):
        run_small(quick)
    if part in ("large", "both"):
        run_large(quick)
