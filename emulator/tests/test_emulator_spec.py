"""Every Identity response validates against the published OpenAPI documents, on every supported api-version.

The documents are vendored in ``specs/`` (swagger 2.0: JSON Schema draft 4 plus extensions, which the
validator ignores). ``$ref``s across files (``../../../Common/stable/.../common.json``) resolve through a
``referencing`` registry holding every document under its file URI. ``format: date-time`` is checked in the
service's own form (7 fraction digits, ``+00:00``). Success bodies must also hold no property the schema does
not declare, so a field of a newer version (``customId`` on 2025-06-30) cannot slip through.

Each version serves exactly its document's operations: the table in ``_versions`` is compared with the
documents' paths, and every operation a version lacks is called and answered as the service does.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
from referencing.jsonschema import DRAFT4

from acs_emulator import Emulator
from acs_emulator._versions import API_VERSIONS, OPERATIONS
from emulator_support import entra_jwt, path_id, send

SPECS = Path(__file__).resolve().parent / "specs"
IDENTITY_DOCS = {
    "2023-10-01": SPECS / "Identity/stable/2023-10-01/CommunicationIdentity.json",
    "2025-03-02-preview": SPECS / "Identity/preview/2025-03-02-preview/CommunicationIdentity.json",
    "2025-06-30": SPECS / "Identity/stable/2025-06-30/CommunicationIdentity.json",
    "2026-09-23": SPECS / "Identity/stable/2026-09-23/CommunicationIdentity.json",
}
SERVICE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00")
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "07474a86-625a-452f-977b-db4e13f21260"


def _document_for(version: str) -> Path:
    # Versions older than 2023-10-01 have no document here; they serve 2023-10-01's operations.
    return IDENTITY_DOCS.get(version, IDENTITY_DOCS["2023-10-01"])


def _registry() -> referencing.Registry[Any]:
    resources = [
        (path.resolve().as_uri(), DRAFT4.create_resource(json.loads(path.read_text(encoding="utf-8"))))
        for path in SPECS.rglob("*.json")
        if "examples" not in path.parts
    ]
    return referencing.Registry().with_resources(resources)


REGISTRY = _registry()
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time")
def _service_time(value: object) -> bool:
    return not isinstance(value, str) or SERVICE_TIME.fullmatch(value) is not None


def _pointer(*parts: str) -> str:
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in parts)
    return "/" + "/".join(urllib.parse.quote(part, safe="~:") for part in escaped)


def _documented_operations(version: str) -> set[tuple[str, str]]:
    document = json.loads(_document_for(version).read_text(encoding="utf-8"))
    return {
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method != "parameters"
    }


def _response_schema(version: str, method: str, route: str, status: int) -> tuple[str, dict[str, Any]] | None:
    """The schema URI of one response, or None for a documented status without a body."""
    path = _document_for(version)
    document = json.loads(path.read_text(encoding="utf-8"))
    responses = document["paths"][route][method.lower()]["responses"]
    key = str(status) if str(status) in responses else "default"
    assert key in responses, (version, method, route, status)
    if "schema" not in responses[key]:
        return None
    uri = path.resolve().as_uri() + "#" + _pointer("paths", route, method.lower(), "responses", key, "schema")
    return key, {"$ref": uri}


def _undeclared(instance: Any, schema: dict[str, Any], resolver: Any, where: str = "") -> list[str]:
    """Properties of ``instance`` that its schema does not declare (schemas without additionalProperties)."""
    while "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        schema, resolver = resolved.contents, resolved.resolver
    found: list[str] = []
    if isinstance(instance, dict) and "properties" in schema and "additionalProperties" not in schema:
        for name, value in instance.items():
            if name not in schema["properties"]:
                found.append(f"{where}/{name}")
            else:
                found += _undeclared(value, schema["properties"][name], resolver, f"{where}/{name}")
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(instance):
            found += _undeclared(item, schema["items"], resolver, f"{where}/{index}")
    return found


@dataclass
class Answer:
    version: str
    operation: str
    status: int
    headers: dict[str, str]
    body: bytes


class Caller:
    """Calls one emulator and records every answer with its operation."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.answers: list[Answer] = []

    def __call__(
        self,
        version: str,
        operation: str,
        body: dict[str, Any] | bytes = b"",
        *,
        path: dict[str, str] | None = None,
        bearer: str | None = None,
        key: str | None = None,
    ) -> Answer:
        method, route = OPERATIONS[operation]
        target = route
        for name, value in (path or {}).items():
            target = target.replace("{" + name + "}", path_id(value))
        target += f"?api-version={version}"
        request_id = str(uuid.uuid4())
        headers = {"x-ms-client-request-id": request_id, "x-ms-return-client-request-id": "true"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        reply = send(
            self.emu.port,
            method,
            target,
            body,
            key=key or self.emu.access_key,
            unsigned=bearer is not None,
            headers=headers,
        )
        answer = Answer(version, operation, reply.status, dict(reply.headers), reply.body)
        assert answer.headers.get("x-ms-client-request-id") == request_id
        assert re.fullmatch(r"[A-Za-z0-9+/]{22}\.0", answer.headers.get("MS-CV", "")), answer.headers
        self.answers.append(answer)
        return answer


def _run_every_operation(call: Caller, version: str) -> None:
    ops = API_VERSIONS[version]
    now = int(time.time())
    created = call(version, "create", {})
    assert created.status == 201, created.body
    user = json.loads(created.body)["identity"]["id"]
    with_token = call(version, "create", {"createTokenWithScopes": ["chat", "voip"], "customId": f"c-{version}"})
    assert with_token.status == 201
    custom = json.loads(with_token.body)["identity"]
    assert ("customId" in custom) == ("custom_id" in ops)
    assert call(version, "issue", {"scopes": ["chat"], "expiresInMinutes": 60}, path={"id": user}).status == 200
    assert call(version, "issue", {"scopes": ["chat"], "expiresInMinutes": 1441}, path={"id": user}).status == 400
    assert call(version, "issue", {}, path={"id": user}).status == 400  # no body: required
    assert call(version, "issue", {"expiresInMinutes": 60}, path={"id": user}).status == 400  # Scopes required
    assert call(version, "create", {}, key="d3Jvbmcta2V5").status == 401  # explained 401
    if "get" in ops:
        assert call(version, "get", path={"id": custom["id"]}).status == 200
    assert call(version, "revoke", path={"id": user}).status == 204
    assert call(version, "delete", path={"id": user}).status == 204
    assert call(version, "delete", path={"id": user}).status == 404
    assert call(version, "issue", {"scopes": ["chat"]}, path={"id": user}).status == 404
    if "get" in ops:
        assert call(version, "get", path={"id": user}).status == 404
    teams = entra_jwt(appid="app", oid="oid", exp=now + 600)
    assert call(version, "teams_exchange", {"token": teams, "appId": "app", "userId": "oid"}).status == 200
    assert call(version, "teams_exchange", {"token": teams, "appId": "other", "userId": "oid"}).status == 400
    assert call(version, "teams_exchange", {"token": "", "appId": "app", "userId": "oid"}).status == 401
    entra = entra_jwt(tid=TENANT, oid=str(uuid.uuid4()), exp=now + 600)
    if "teams_extension_exchange" in ops:
        assert call(version, "teams_extension_exchange", {}, bearer=entra).status == 200
        key = {"tenantId": TENANT, "objectId": str(uuid.uuid4())}
        assignment = {"principalType": "user", "clientIds": [CLIENT]}
        assert call(version, "teams_extension_assignment_get", path=key).status == 404
        assert call(version, "teams_extension_assignment_put", assignment, path=key).status == 201
        assert (
            call(version, "teams_extension_assignment_put", {"principalType": "resourceAccount"}, path=key).status
            == 200
        )
        assert call(version, "teams_extension_assignment_put", {"principalType": "robot"}, path=key).status == 400
        assert call(version, "teams_extension_assignment_get", path=key).status == 200
        assert call(version, "teams_extension_assignment_delete", path=key).status == 204
    if "entra_exchange" in ops:
        assert call(version, "entra_exchange", {}, bearer=entra).status == 200
        assert call(version, "entra_exchange", {}, bearer="opaque").status == 401
        one, two = str(uuid.uuid4()), str(uuid.uuid4())
        body = {"principalType": "user", "tenantId": TENANT, "clientIds": [CLIENT]}
        assert call(version, "entra_assignment_get", path={"objectId": one}).status == 404
        assert call(version, "entra_assignment_put", body, path={"objectId": one}).status == 201
        assert (
            call(version, "entra_assignment_put", {**body, "principalType": "group"}, path={"objectId": one}).status
            == 200
        )
        assert call(version, "entra_assignment_put", {"principalType": "user"}, path={"objectId": one}).status == 400
        assert call(version, "entra_assignment_get", path={"objectId": one}).status == 200
        assert call(version, "entra_assignments_update", {two: {**body, "principalType": "tenant"}}).status == 200
        listed = call(version, "entra_assignments_list")
        assert listed.status == 200
        assert {a["objectId"] for a in json.loads(listed.body)["value"]} >= {one, two}
        assert call(version, "entra_assignments_update", {two: None}).status == 204
        assert call(version, "entra_assignment_delete", path={"objectId": one}).status == 204
    # Every operation the version lacks is answered as the service does: 405 or 400 UnsupportedApiVersion.
    for operation in sorted(set(OPERATIONS) - ops - {"custom_id"}):
        answer = call(version, operation, {}, path={"id": "8:acs:x", "tenantId": TENANT, "objectId": TENANT})
        code = json.loads(answer.body)["error"]["code"]
        assert (answer.status, code) in ((400, "UnsupportedApiVersion"), (405, "MethodNotAllowed")), answer.body


@pytest.fixture(scope="module")
def answers() -> Iterator[list[Answer]]:
    with Emulator() as emu:
        call = Caller(emu)
        for version in API_VERSIONS:
            _run_every_operation(call, version)
        assert emu.unexpected_errors == 0
        yield call.answers


@pytest.mark.parametrize("version", IDENTITY_DOCS)
def test_each_version_serves_exactly_its_documents_operations(version: str) -> None:
    served = {OPERATIONS[name] for name in API_VERSIONS[version] if name != "custom_id"}
    assert served == _documented_operations(version)
    create = json.loads(_document_for(version).read_text())["definitions"]["CommunicationIdentityCreateRequest"]
    assert ("customId" in create["properties"]) == ("custom_id" in API_VERSIONS[version])


def test_the_vendored_documents_have_the_expected_versions() -> None:
    for version, path in IDENTITY_DOCS.items():
        assert json.loads(path.read_text())["info"]["version"] == version


@pytest.mark.parametrize("version", list(API_VERSIONS))
def test_every_answer_validates_against_the_spec(answers: list[Answer], version: str) -> None:
    mine = [a for a in answers if a.version == version]
    seen: set[tuple[str, str]] = set()
    for answer in mine:
        method, route = OPERATIONS[answer.operation]
        if answer.operation not in API_VERSIONS[version]:
            # Not an operation of this version: the error body follows the version's error schema.
            method, route = "POST", "/identities"
        schema = _response_schema(version, method, route, answer.status)
        if schema is None:
            assert answer.body == b"", (answer.operation, answer.status)
            seen.add((answer.operation, str(answer.status)))
            continue
        key, ref = schema
        instance = json.loads(answer.body)
        validator = jsonschema.Draft4Validator(ref, registry=REGISTRY, format_checker=FORMATS)
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
        assert errors == [], (answer.operation, answer.status, instance)
        if key != "default":
            resolver = REGISTRY.resolver()
            assert _undeclared(instance, ref, resolver) == [], (answer.operation, instance)
            seen.add((answer.operation, key))
        else:
            assert answer.status >= 400
            assert answer.headers["Content-Type"].startswith("application/json")
        if answer.operation in API_VERSIONS[version]:
            assert version in answer.headers["api-supported-versions"].split(", ")
    # Every documented status of every served operation was produced and validated.
    document = json.loads(_document_for(version).read_text(encoding="utf-8"))
    for operation in API_VERSIONS[version] - {"custom_id"}:
        method, route = OPERATIONS[operation]
        documented = {k for k in document["paths"][route][method.lower()]["responses"] if k != "default"}
        assert documented <= {k for op, k in seen if op == operation}, (version, operation)


def test_errors_follow_the_service_shape(answers: list[Answer]) -> None:
    errors = [json.loads(a.body)["error"] for a in answers if a.status >= 400]
    expires = [e for e in errors if e.get("target") == "ExpiresInMinutes"]
    assert expires
    assert all(
        e["message"] == "ExpiresInMinutes value 1441 is invalid. Value must be within the [60, 1440] interval."
        for e in expires
    )
    assert any(
        e == {"code": "ValidationError", "message": "Scopes: The Scopes field is required.", "target": "Scopes"}
        for e in errors
    )
    assert any(
        e == {"code": "ValidationError", "message": "AAD application is not the expected one.", "target": "appId"}
        for e in errors
    )
    assert any(
        e["code"] == "InvalidAccessToken" and e["message"] == "Provided access token is not valid." for e in errors
    )
    denied = [e for e in errors if e["code"] == "Denied"]
    assert denied
    assert all({"stringToSign", "contentHash", "host"} <= set(e["innererror"]) for e in denied)
    # No codes of our own where the service uses ValidationError.
    assert not {e["code"] for e in errors} & {"AppIdMismatch", "UserIdMismatch"}


def test_the_default_token_lifetime_is_1440_minutes(answers: list[Answer]) -> None:
    for answer in answers:
        if answer.operation == "create" and answer.status == 201:
            payload = json.loads(answer.body)
            if "accessToken" in payload:
                import jwt

                claims = jwt.decode(payload["accessToken"]["token"], options={"verify_signature": False})
                assert claims["exp"] - claims["iat"] == 1440 * 60


def test_the_oracle_rejects_what_the_service_would_not_send() -> None:
    """The validator really validates: cross-file refs resolve, the 7-digit form is required, extras are seen."""
    _, ref = _response_schema("2023-10-01", "POST", "/identities/{id}/:issueAccessToken", 200) or ("", {})
    validator = jsonschema.Draft4Validator(ref, registry=REGISTRY, format_checker=FORMATS)
    good = {"token": "t", "expiresOn": "2023-10-10T12:46:29.5390605+00:00"}
    assert list(validator.iter_errors(good)) == []
    assert not validator.is_valid({"token": "t"})
    assert not validator.is_valid({"token": "t", "expiresOn": "2023-10-10T12:46:29.539Z"})
    assert _undeclared({**good, "extra": 1}, ref, REGISTRY.resolver()) == ["/extra"]
    _, error_ref = _response_schema("2023-10-01", "POST", "/identities", 400) or ("", {})
    errors = jsonschema.Draft4Validator(error_ref, registry=REGISTRY)
    assert errors.is_valid(
        {"error": {"code": "c", "message": "m", "innererror": {"code": "c", "message": "m", "x": 1}}}
    )
    assert not errors.is_valid({"error": {"code": "c", "message": "m", "innererror": {"stringToSign": "s"}}})
    assert not errors.is_valid({"error": {"code": "c"}})
    _, created = _response_schema("2025-06-30", "POST", "/identities", 201) or ("", {})
    assert _undeclared({"identity": {"id": "8:acs:x", "customId": "c"}}, created, REGISTRY.resolver()) == [
        "/identity/customId"
    ]
