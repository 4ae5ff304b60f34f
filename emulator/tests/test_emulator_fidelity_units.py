"""Unit tests of the fidelity helpers: the service's timestamp form, key decoding, assignment bodies, versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from acs_emulator._auth import compute_content_hash, compute_signature, compute_string_to_sign, decode_key
from acs_emulator._errors import ApiError, error_body
from acs_emulator._store import IdentityStore, StorageError
from acs_emulator._timestamps import format_service_time
from acs_emulator._validation import (
    check_guid_segment,
    parse_entra_assignment,
    parse_entra_bulk_update,
    parse_json_object,
    parse_teams_extension_assignment,
)
from acs_emulator._versions import check_api_version, serves

GUID = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.mark.parametrize(
    ("timestamp", "text"),
    [
        (0, "1970-01-01T00:00:00.0000000+00:00"),
        (1_700_000_000.25, "2023-11-14T22:13:20.2500000+00:00"),
        (1_700_000_000.99999999, "2023-11-14T22:13:21.0000000+00:00"),  # rounds to 100 ns, carrying the second
    ],
)
def test_the_service_timestamp_form(timestamp: float, text: str) -> None:
    assert format_service_time(timestamp) == text


def test_key_decoding_never_quotes_the_key() -> None:
    assert decode_key(" a2V5 ") == b"key"
    for bad in ("not base64!", "", "a2V"):
        with pytest.raises(ValueError, match="access_key") as raised:
            decode_key(bad)
        assert bad not in str(raised.value) or not bad
    with pytest.raises(TypeError):
        decode_key(b"a2V5")  # type: ignore[arg-type]


# Outputs of @azure/communication-common 2.5.0's shaHash / shaHMAC (the project's vectors/js-common-2.5.0.json).
JS_VECTORS = [
    ("banana", "tJPUg2Sv5E0RwBZc9HCkFk0eJgmRHvmYvoaNRq3j3k4=", "88EC05aAS9iXnaimtNO78JLjiPtfWryQB/5QYEzEsu8="),
    ("\U0001f600", "8EQ6NCxe9UeDoRG1G6Vsk45HTDIyTZDDpgycjjo34tk=", "1rudJKjn2Zi+3hRrBG29wIF6pD6YyAeQR1ZcFtXoKAU="),
    ("", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", None),
]


@pytest.mark.parametrize(("text", "digest", "mac"), JS_VECTORS)
def test_the_independent_signer_agrees_with_the_javascript_package(text: str, digest: str, mac: str | None) -> None:
    assert compute_content_hash(text.encode("utf-8")) == digest
    if mac is not None:
        assert compute_signature(decode_key("pw=="), text) == mac
    assert compute_string_to_sign("get", "/x?a=1", "D", "h:1", "H") == "GET\n/x?a=1\nD;h:1;H"


def test_error_bodies_carry_target_and_innererror() -> None:
    body = error_body("ValidationError", "m", target="Scopes", innererror={"code": "c", "message": "n", "x": "y"})
    assert body == (
        b'{"error": {"code": "ValidationError", "message": "m", "target": "Scopes", '
        b'"innererror": {"code": "c", "message": "n", "x": "y"}}}'
    )
    assert ApiError.unavailable("later").headers == {"Retry-After": "1"}
    assert ApiError(429, "TooManyRequests", "slow", headers={"Retry-After": "7"}).headers == {"Retry-After": "7"}


def test_assignment_bodies() -> None:
    extension = parse_teams_extension_assignment(
        b'{"principalType": "user", "clientIds": ["' + GUID.upper().encode() + b'"]}'
    )
    assert (extension.principal_type, extension.client_ids) == ("user", (GUID,))
    entra = parse_entra_assignment(
        b'{"principalType": "tenant", "tenantId": "' + GUID.encode() + b'", "clientIds": []}'
    )
    assert (entra.principal_type, entra.tenant_id, entra.client_ids) == ("tenant", GUID, ())
    bad = [
        (parse_teams_extension_assignment, b"{}", "principalType"),
        (parse_teams_extension_assignment, b'{"principalType": "user", "clientIds": "x"}', "clientIds"),
        (parse_teams_extension_assignment, b'{"principalType": "user", "clientIds": [5]}', "clientIds"),
        (parse_teams_extension_assignment, b'{"principalType": "user", "clientIds": ["nope"]}', "clientIds"),
        (parse_entra_assignment, b'{"principalType": "user", "clientIds": []}', "tenantId"),
        (parse_entra_assignment, b'{"principalType": "user", "tenantId": "' + GUID.encode() + b'"}', "clientIds"),
    ]
    for parse, body, target in bad:
        with pytest.raises(ApiError) as raised:
            parse(body)
        assert (raised.value.status, raised.value.target) == (400, target), body
    with pytest.raises(ApiError, match="JSON object"):
        parse_entra_bulk_update(b'{"' + GUID.encode() + b'": 5}')
    with pytest.raises(ApiError, match="At most 100"):
        parse_entra_bulk_update(("{" + ",".join(f'"{i}": null' for i in range(101)) + "}").encode())
    with pytest.raises(ApiError) as raised:
        check_guid_segment("x" * 100, "objectId")
    assert "length 100" in raised.value.message


def test_lone_surrogates_anywhere_in_a_body_are_refused() -> None:
    for body, target in [
        (b'{"scopes": ["\\udc00"]}', "Scopes"),
        (b'{"\\ud800": 1}', None),
        (b'{"a": {"b": "\\uDBFF"}}', "A"),
    ]:
        with pytest.raises(ApiError) as raised:
            parse_json_object(body, allow_empty=False)
        assert (raised.value.code, raised.value.target) == ("ValidationError", target)
    assert parse_json_object(b'{"a": "\\u00e9\\ud83d\\ude00"}', allow_empty=False) == {"a": "\u00e9\U0001f600"}


def test_api_version_rules() -> None:
    with pytest.raises(ApiError) as raised:
        check_api_version(["2023-10-01", "2023-10-01"], "create")
    assert raised.value.code == "InvalidApiVersionParameter"
    with pytest.raises(ApiError) as raised:
        check_api_version(["x" * 100], "create")
    assert "given (length 100)" in raised.value.message
    assert check_api_version(["2099-01-01"], "entra_exchange", loose=True) == "2099-01-01"
    assert serves("2099-01-01", "custom_id", loose=True)
    assert not serves("2099-01-01", "custom_id")
    assert not serves("2026-09-23", "get")


def test_store_problems_are_one_line_naming_the_path(tmp_path: Path) -> None:
    empty_dir = tmp_path / "dir"
    empty_dir.mkdir()
    with pytest.raises(StorageError, match="is a directory"):
        IdentityStore(empty_dir)
    store = IdentityStore(tmp_path / "ok.sqlite")
    try:
        generic = store._describe(sqlite3.OperationalError("disk I/O error"))
        assert generic == f"The database {tmp_path / 'ok.sqlite'} cannot be used: OperationalError: disk I/O error."
        assert "read-only" in store._describe(sqlite3.OperationalError("attempt to write a readonly database"))
    finally:
        store.close()
