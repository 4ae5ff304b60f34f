"""Our own signing policy and the credential's Entra exchange against the emulator."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline import AsyncPipeline, Pipeline
from azure.core.pipeline.policies import AsyncRetryPolicy, RetryPolicy
from azure.core.pipeline.transport import AioHttpTransport, RequestsTransport
from azure.core.rest import HttpRequest

from acs_emulator import Emulator
from azure.communication.common import CommunicationAccessKeyCredentialPolicy
from azure.communication.common._entra import EntraTokenExchanger
from azure.communication.common.aio._entra import AsyncEntraTokenExchanger
from emulator_support import PREVIEW, VERSION, entra_jwt

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OBJECT = "0b3f2b39-3c21-4f3c-9a4f-6f0b1b2c3d4e"
ENTRA_SCOPE = "https://communication.azure.com/clients/.default"
TEAMS_EXTENSION_SCOPE = "https://auth.msft.communication.azure.com/Teams.ManageCalls"


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _sync_pipeline(credential: AzureKeyCredential) -> Pipeline[Any, Any]:
    return Pipeline(
        RequestsTransport(),
        [RetryPolicy(retry_total=0), CommunicationAccessKeyCredentialPolicy(credential)],
    )


def test_sync_pipeline_with_requests_transport(shared_emulator: Emulator) -> None:
    emu = shared_emulator
    credential = AzureKeyCredential(emu.access_key)
    with _sync_pipeline(credential) as pipeline:
        created = pipeline.run(
            HttpRequest(
                "POST",
                f"{emu.endpoint}/identities?api-version={PREVIEW}",
                json={"createTokenWithScopes": ["chat"], "customId": "alice@contoso"},
            )
        ).http_response
        assert created.status_code == 201
        identity = created.json()["identity"]
        assert identity["customId"] == "alice@contoso"
        raw_id = identity["id"]

        # The raw id in the path unescaped: the policy signs the canonical form it sends.
        issued = pipeline.run(
            HttpRequest(
                "POST",
                f"{emu.endpoint}/identities/{raw_id}/:issueAccessToken?api-version={VERSION}",
                json={"scopes": ["voip"], "expiresInMinutes": 60},
            )
        ).http_response
        assert issued.status_code == 200, issued.text()
        assert _claims(issued.json()["token"])["skypeid"] == raw_id[2:]

        fetched = pipeline.run(
            HttpRequest("GET", f"{emu.endpoint}/identities/{raw_id}?api-version={PREVIEW}")
        ).http_response
        assert fetched.status_code == 200
        assert fetched.json()["id"] == raw_id
        assert fetched.json()["customId"] == "alice@contoso"
        assert "lastTokenIssuedAt" in fetched.json()

        # A rotated key is read on the next request.
        credential.update("d3Jvbmcta2V5")
        denied = pipeline.run(
            HttpRequest("GET", f"{emu.endpoint}/identities/{raw_id}?api-version={PREVIEW}")
        ).http_response
        assert denied.status_code == 401
        credential.update(emu.access_key)
        again = pipeline.run(
            HttpRequest("GET", f"{emu.endpoint}/identities/{raw_id}?api-version={PREVIEW}")
        ).http_response
        assert again.status_code == 200


async def test_async_pipeline_with_aiohttp_transport(shared_emulator: Emulator) -> None:
    emu = shared_emulator
    policy = CommunicationAccessKeyCredentialPolicy(emu.access_key)
    async with AsyncPipeline(AioHttpTransport(), [AsyncRetryPolicy(retry_total=0), policy]) as pipe:
        created = (
            await pipe.run(HttpRequest("POST", f"{emu.endpoint}/identities?api-version={VERSION}", json={}))
        ).http_response
        assert created.status_code == 201
        raw_id = created.json()["identity"]["id"]
        assert "accessToken" not in created.json()
        issued = (
            await pipe.run(
                HttpRequest(
                    "POST",
                    f"{emu.endpoint}/identities/{raw_id}/:issueAccessToken?api-version={VERSION}",
                    json={"scopes": ["chat", "voip"]},
                )
            )
        ).http_response
        assert issued.status_code == 200
        revoked = (
            await pipe.run(
                HttpRequest(
                    "POST",
                    f"{emu.endpoint}/identities/{raw_id}/:revokeAccessTokens?api-version={VERSION}",
                )
            )
        ).http_response
        assert revoked.status_code == 204
        deleted = (
            await pipe.run(HttpRequest("DELETE", f"{emu.endpoint}/identities/{raw_id}?api-version={VERSION}"))
        ).http_response
        assert deleted.status_code == 204
        gone = (
            await pipe.run(HttpRequest("GET", f"{emu.endpoint}/identities/{raw_id}?api-version={PREVIEW}"))
        ).http_response
        assert gone.status_code == 404


class _EntraCredential:
    """A fake Entra credential handing out an unsigned JWT with the given claims."""

    def __init__(self, **claims: Any) -> None:
        self.claims = claims
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        expires = int(time.time()) + 3600
        return AccessToken(entra_jwt(exp=expires, **self.claims), expires)


class _AsyncEntraCredential(_EntraCredential):
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # type: ignore[override]
        return super().get_token(*scopes, **kwargs)

    async def close(self) -> None:
        return None


def test_entra_exchange_gives_a_stable_communication_user(shared_emulator: Emulator) -> None:
    emu = shared_emulator
    exchanger = EntraTokenExchanger(emu.endpoint, _EntraCredential(tid=TENANT, oid=OBJECT), [ENTRA_SCOPE])
    try:
        first = exchanger()
        second = exchanger()
    finally:
        exchanger.close()
    claims = _claims(first.token)
    assert claims["skypeid"].startswith(f"acs:{emu.resource_id}_")
    assert claims["skypeid"] == _claims(second.token)["skypeid"]
    assert abs(first.expires_on - (time.time() + 3600)) < 60
    # The Entra user is a stored identity: GET finds it.
    raw_id = "8:" + claims["skypeid"]
    assert raw_id in {row.id for row in emu._identity_rows()}


def test_teams_extension_exchange_gives_the_extension_raw_id(shared_emulator: Emulator) -> None:
    emu = shared_emulator
    exchanger = EntraTokenExchanger(
        emu.endpoint + "/", _EntraCredential(tid=TENANT, oid=OBJECT), [TEAMS_EXTENSION_SCOPE]
    )
    try:
        token = exchanger()
    finally:
        exchanger.close()
    assert _claims(token.token)["skypeid"] == f"acs:{emu.resource_id}_{TENANT}_{OBJECT}"


def test_entra_exchange_refuses_a_token_without_oid(shared_emulator: Emulator) -> None:
    exchanger = EntraTokenExchanger(shared_emulator.endpoint, _EntraCredential(tid=TENANT), [ENTRA_SCOPE])
    try:
        with pytest.raises(ClientAuthenticationError) as info:
            exchanger()
    finally:
        exchanger.close()
    assert info.value.status_code == 401


async def test_async_entra_exchange(shared_emulator: Emulator) -> None:
    emu = shared_emulator
    oid = str(uuid.uuid4())
    async with AsyncEntraTokenExchanger(
        emu.endpoint, _AsyncEntraCredential(tid=TENANT, oid=oid), [ENTRA_SCOPE]
    ) as exchanger:
        token = await exchanger()
    assert _claims(token.token)["resourceId"] == emu.resource_id


def test_credential_entra_mode(shared_emulator: Emulator) -> None:
    common = pytest.importorskip("azure.communication.common")
    credential_class = getattr(common, "CommunicationTokenCredential", None)
    if credential_class is None:
        pytest.skip("CommunicationTokenCredential is not exported yet")
    emu = shared_emulator
    credential = credential_class(
        resource_endpoint=emu.endpoint,
        token_credential=_EntraCredential(tid=TENANT, oid=OBJECT),
        scopes=[ENTRA_SCOPE],
    )
    with credential:
        token = credential.get_token()
        assert _claims(token.token)["resourceId"] == emu.resource_id
        assert credential.get_token().token == token.token  # cached, not exchanged again
