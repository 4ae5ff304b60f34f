"""api-versions and the service's response headers: unknown versions, operations a version lacks, ``--loose``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest
from azure.communication.identity import CommunicationIdentityClient
from azure.core.credentials import AzureKeyCredential

from acs_emulator import Emulator, add_cli_arguments
from acs_emulator._versions import API_VERSIONS, supported_versions
from emulator_support import PREVIEW, VERSION, path_id, send


@pytest.fixture(scope="module")
def strict() -> Iterator[Emulator]:
    with Emulator(loose=False) as emu:
        yield emu


def test_an_unknown_version_is_the_services_400(strict: Emulator) -> None:
    reply = send(strict.port, "POST", "/identities?api-version=2099-01-01", {}, key=strict.access_key)
    assert (reply.status, reply.code) == (400, "UnsupportedApiVersion")
    assert "'2099-01-01'" in reply.json()["error"]["message"]
    assert reply.headers["api-supported-versions"] == ", ".join(API_VERSIONS)
    hostile = send(strict.port, "POST", "/identities?api-version=%3Cscript%3E", {}, key=strict.access_key)
    assert hostile.code == "UnsupportedApiVersion"
    assert "<script>" not in hostile.body.decode()  # not echoed: not a version's shape


def test_operations_a_version_lacks_are_refused_as_the_service_does(strict: Emulator) -> None:
    key = strict.access_key
    raw_id = send(strict.port, "POST", f"/identities?api-version={VERSION}", {}, key=key).json()["identity"]["id"]
    # GET /identities/{id} came with 2025-03-02-preview; 2023-10-01 serves DELETE on that route.
    old = send(strict.port, "GET", f"/identities/{path_id(raw_id)}?api-version={VERSION}", key=key)
    assert (old.status, old.code) == (405, "MethodNotAllowed")
    assert old.headers["Allow"] == "DELETE"
    assert send(strict.port, "GET", f"/identities/{path_id(raw_id)}?api-version={PREVIEW}", key=key).status == 200
    # The Entra exchange exists only in the preview.
    entra = send(strict.port, "POST", "/access/entra/:exchangeAccessToken?api-version=2026-09-23", {}, unsigned=True)
    assert (entra.status, entra.code) == (400, "UnsupportedApiVersion")
    assert entra.headers["api-supported-versions"] == "2025-03-02-preview"
    # customId is unknown to 2025-06-30: ignored like any unknown property, so each call is a new identity.
    first = send(strict.port, "POST", "/identities?api-version=2025-06-30", {"customId": "same"}, key=key).json()
    second = send(strict.port, "POST", "/identities?api-version=2025-06-30", {"customId": "same"}, key=key).json()
    assert first["identity"] != second["identity"]
    assert "customId" not in first["identity"]


def test_client_request_id_is_echoed_on_every_answer(strict: Emulator) -> None:
    for target in (f"/identities?api-version={VERSION}", "/identities?api-version=1999-01-01", "/nothing"):
        reply = send(
            strict.port, "POST", target, {}, key=strict.access_key, headers={"x-ms-client-request-id": "abc-1"}
        )
        assert reply.headers["x-ms-client-request-id"] == "abc-1"
        assert reply.headers["MS-CV"]
    too_long = send(
        strict.port,
        "POST",
        f"/identities?api-version={VERSION}",
        {},
        key=strict.access_key,
        headers={"x-ms-client-request-id": "x" * 300},
    )
    assert "x-ms-client-request-id" not in too_long.headers


def test_loose_accepts_any_version_with_the_newest_behaviour() -> None:
    with Emulator(loose=True) as emu:
        assert emu.loose
        key = emu.access_key
        created = send(emu.port, "POST", "/identities?api-version=2099-01-01", {"customId": "c1"}, key=key)
        assert created.status == 201, created.body
        raw_id = created.json()["identity"]["id"]
        assert created.json()["identity"]["customId"] == "c1"
        assert send(emu.port, "GET", f"/identities/{path_id(raw_id)}?api-version=anything", key=key).status == 200
        # Known versions keep their own behaviour.
        old = send(emu.port, "GET", f"/identities/{path_id(raw_id)}?api-version={VERSION}", key=key)
        assert old.status == 405
        assert send(emu.port, "POST", "/identities", {}, key=key).code == "MissingApiVersionParameter"


def test_loose_from_the_environment_and_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACS_EMULATOR_LOOSE", "1")
    assert Emulator().loose
    assert not Emulator(loose=False).loose
    monkeypatch.setenv("ACS_EMULATOR_LOOSE", "0")
    assert not Emulator().loose
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    assert parser.parse_args(["--loose"]).loose is True
    assert parser.parse_args([]).loose is None  # None: the environment decides


@pytest.mark.parametrize("version", ["2025-06-30", "2026-09-23", "2025-03-02-preview", "2021-03-07"])
def test_the_official_client_on_other_versions(strict: Emulator, version: str) -> None:
    client = CommunicationIdentityClient(strict.endpoint, AzureKeyCredential(strict.access_key), api_version=version)
    user, token = client.create_user_and_token(["chat"])
    assert token.token
    client.delete_user(user)
    assert version in supported_versions("create").split(", ")
