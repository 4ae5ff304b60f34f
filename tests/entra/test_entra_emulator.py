"""The exchangers against the project's own ACS Identity emulator (a real aiohttp server on 127.0.0.1)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from entra_support import Flavour, assert_hides

from acs_emulator import Emulator
from azure.communication.common._entra import TEAMS_EXTENSION_SCOPE_PREFIXES

TENANT = str(uuid.UUID(int=1))
OBJECT = str(uuid.UUID(int=2))


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def _entra_jwt(exp: int, secret_registry: Any) -> str:
    # The emulator reads the claims without checking the signature, so any key signs it.
    token = jwt.encode({"tid": TENANT, "oid": OBJECT, "exp": exp}, "k" * 32, algorithm="HS256")
    return secret_registry.register(token)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("scopes", "teams_extension_user"),
    [
        (None, False),
        ([f"{TEAMS_EXTENSION_SCOPE_PREFIXES[0]}.default"], True),
    ],
)
async def test_exchange_with_the_emulator(
    flavour: Flavour, emulator: Emulator, secret_registry: Any, scopes: Any, teams_extension_user: bool
) -> None:
    entra_exp = int(time.time()) + 3600
    exchanger = flavour.make(emulator.endpoint, flavour.credential(_entra_jwt(entra_exp, secret_registry)), scopes)

    result = await flavour.call(exchanger)
    secret_registry.register(result.token)

    # The emulator's ACS token is a JWT for the Entra user; it expires with the Entra token, as the service's.
    claims = jwt.decode(result.token, options={"verify_signature": False})
    assert claims["skypeid"].startswith("acs:")
    # Only the Teams extension route names the user by tenant and object id (8:acs:{resource}_{tid}_{oid}).
    assert claims["skypeid"].endswith(f"_{TENANT}_{OBJECT}") is teams_extension_user
    assert result.expires_on == entra_exp == claims["exp"]


async def test_expired_entra_token_is_refused_by_the_emulator(
    flavour: Flavour, emulator: Emulator, secret_registry: Any
) -> None:
    entra_token = _entra_jwt(int(time.time()) - 60, secret_registry)
    exchanger = flavour.make(emulator.endpoint, flavour.credential(entra_token))

    with pytest.raises(ClientAuthenticationError) as raised:
        await flavour.call(exchanger)

    assert raised.value.status_code == 401
    assert "expired" in str(raised.value)
    assert_hides(raised.value, entra_token)
