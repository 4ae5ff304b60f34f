"""The official azure-communication-identity client (sync and async) against the emulator.

This is the proof that the emulator speaks the real API: the client's own serializers, HMAC policy and
error mapping talk to it unchanged, with an explicit ``http://127.0.0.1:PORT`` endpoint.
"""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.communication.identity.aio import (
    CommunicationIdentityClient as AsyncCommunicationIdentityClient,
)
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)

from acs_emulator import Emulator
from azure.communication.common._timestamps import parse_timestamp
from emulator_support import entra_jwt

WRONG_KEY = "d3Jvbmcta2V5LXdyb25nLWtleQ=="


def _claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def test_sync_client_full_lifecycle(shared_emulator: Emulator) -> None:
    emu = shared_emulator
    client = CommunicationIdentityClient(emu.endpoint, AzureKeyCredential(emu.access_key))

    user = client.create_user()
    assert user.properties["id"].startswith(f"8:acs:{emu.resource_id}_")

    other, token = client.create_user_and_token(["chat", "voip"])
    assert other.properties["id"] != user.properties["id"]
    assert _claims(token.token)["skypeid"] == other.properties["id"][2:]
    assert _claims(token.token)["acsScope"] == "chat,voip"
    # identity 1.5.0 hands expiresOn through as text; it must be the service's timestamp form.
    expires = parse_timestamp(str(token.expires_on))
    assert abs(expires - (time.time() + 24 * 3600)) < 60

    short = client.get_token(user, [CommunicationTokenScope.CHAT], token_expires_in=timedelta(minutes=60))
    assert abs(parse_timestamp(str(short.expires_on)) - (time.time() + 3600)) < 60
    assert _claims(short.token)["skypeid"] == user.properties["id"][2:]

    client.revoke_tokens(user)
    assert emu.is_token_revoked(short.token)
    assert not emu.is_token_revoked(token.token)

    client.delete_user(user)
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_token(user, ["chat"])
    assert info.value.status_code == 404
    with pytest.raises(ResourceNotFoundError):
        client.delete_user(user)
    assert emu.is_token_revoked(short.token)  # its identity is gone


def test_sync_client_validation_errors_are_400(shared_emulator: Emulator) -> None:
    client = CommunicationIdentityClient(shared_emulator.endpoint, AzureKeyCredential(shared_emulator.access_key))
    user = client.create_user()
    with pytest.raises(HttpResponseError) as info:
        client.get_token(user, ["chat"], token_expires_in=timedelta(minutes=30))
    assert info.value.status_code == 400
    assert info.value.error is not None
    assert info.value.error.code == "ValidationError"
    with pytest.raises(HttpResponseError) as info:
        client.get_token(user, ["not-a-scope"])
    assert info.value.status_code == 400


def test_sync_teams_token_exchange(shared_emulator: Emulator) -> None:
    client = CommunicationIdentityClient(shared_emulator.endpoint, AzureKeyCredential(shared_emulator.access_key))
    expiry = int(time.time()) + 1800
    aad = entra_jwt(appid="app-id-1", oid="user-oid-1", exp=expiry)
    token = client.get_token_for_teams_user(aad, "app-id-1", "user-oid-1")
    assert _claims(token.token)["skypeid"] == "orgid:user-oid-1"
    # The exchanged token expires with the Teams user's Entra token.
    assert int(parse_timestamp(str(token.expires_on))) == expiry

    with pytest.raises(HttpResponseError) as info:
        client.get_token_for_teams_user(aad, "another-app", "user-oid-1")
    assert info.value.status_code == 400
    with pytest.raises(HttpResponseError) as info:
        client.get_token_for_teams_user(aad, "app-id-1", "another-user")
    assert info.value.status_code == 400
    with pytest.raises(ClientAuthenticationError):
        client.get_token_for_teams_user("not-a-jwt", "app-id-1", "user-oid-1")


def test_sync_wrong_key_is_401(shared_emulator: Emulator) -> None:
    client = CommunicationIdentityClient(shared_emulator.endpoint, AzureKeyCredential(WRONG_KEY))
    with pytest.raises(ClientAuthenticationError) as info:
        client.create_user()
    assert info.value.status_code == 401
    assert info.value.error is not None
    assert info.value.error.code == "Denied"
    # The expected signature is never revealed.
    assert "Signature=" not in str(info.value)


async def test_async_client_full_lifecycle() -> None:
    async with Emulator() as emu:
        async with AsyncCommunicationIdentityClient(emu.endpoint, AzureKeyCredential(emu.access_key)) as client:
            user = await client.create_user()
            other, token = await client.create_user_and_token(["voip"])
            assert _claims(token.token)["skypeid"] == other.properties["id"][2:]
            issued = await client.get_token(user, ["chat", "voip"])
            assert _claims(issued.token)["acsScope"] == "chat,voip"
            await client.revoke_tokens(user)
            await client.delete_user(user)
            with pytest.raises(ResourceNotFoundError):
                await client.get_token(user, ["chat"])

            aad = entra_jwt(appid="app-2", oid="oid-2", exp=int(time.time()) + 600)
            teams = await client.get_token_for_teams_user(aad, "app-2", "oid-2")
            assert _claims(teams.token)["skypeid"] == "orgid:oid-2"

        async with AsyncCommunicationIdentityClient(emu.endpoint, AzureKeyCredential(WRONG_KEY)) as bad:
            with pytest.raises(ClientAuthenticationError) as info:
                await bad.create_user()
            assert info.value.status_code == 401
        assert emu.unexpected_errors == 0
