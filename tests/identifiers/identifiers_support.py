"""Shared helpers for the identifier tests: the JS 2.5.0 vectors and their mapping to our names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from azure.communication.common import CommunicationCloudEnvironment, CommunicationIdentifierKind

# A copy of ../shared/vectors/js-common-2.5.0.json travels with the repository, so a clone runs anywhere;
# when the shared original sits beside the clone (locally and in CI), the copy must be identical.
VECTORS_PATH = Path(__file__).resolve().parents[1] / "vectors" / "js-common-2.5.0.json"
SHARED_VECTORS_PATH = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "js-common-2.5.0.json"
JS_UNDEFINED = "__undefined__"


def load_vectors() -> dict[str, Any]:
    if not VECTORS_PATH.is_file():
        raise FileNotFoundError(f"the JS vectors file is missing: {VECTORS_PATH}")
    vectors: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    return vectors


VECTORS = load_vectors()

JS_KINDS = {
    "communicationUser": CommunicationIdentifierKind.COMMUNICATION_USER,
    "phoneNumber": CommunicationIdentifierKind.PHONE_NUMBER,
    "microsoftTeamsUser": CommunicationIdentifierKind.MICROSOFT_TEAMS_USER,
    "microsoftTeamsApp": CommunicationIdentifierKind.MICROSOFT_TEAMS_APP,
    "teamsExtensionUser": CommunicationIdentifierKind.TEAMS_EXTENSION_USER,
    "unknown": CommunicationIdentifierKind.UNKNOWN,
}
JS_CLOUDS = {
    "public": CommunicationCloudEnvironment.PUBLIC,
    "dod": CommunicationCloudEnvironment.DOD,
    "gcch": CommunicationCloudEnvironment.GCCH,
}


def expected_from_js(ok: dict[str, Any]) -> tuple[CommunicationIdentifierKind, dict[str, Any], str | None]:
    """Map a JS result object to (our kind, our properties, the raw id JS reports or None).

    JS names map to ours (communicationUserId -> id, microsoftTeamsUserId -> user_id, teamsAppId ->
    app_id, phoneNumber -> value); JS clouds are lower case, ours are the enum. JS gives an anonymous
    Teams user no cloud; ours keeps the default, PUBLIC.
    """
    js_kind = ok["kind"]
    kind = JS_KINDS[js_kind]
    raw_id = ok.get("rawId")
    props: dict[str, Any]
    if js_kind == "communicationUser":
        props = {"id": ok["communicationUserId"]}
        raw_id = ok["communicationUserId"]
    elif js_kind == "phoneNumber":
        props = {"value": ok["phoneNumber"], "is_anonymous": ok["isAnonymous"]}
        if ok["assertedId"] != JS_UNDEFINED:
            props["asserted_id"] = ok["assertedId"]
    elif js_kind == "microsoftTeamsUser":
        props = {
            "user_id": ok["microsoftTeamsUserId"],
            "is_anonymous": ok["isAnonymous"],
            "cloud": JS_CLOUDS[ok.get("cloud", "public")],
        }
    elif js_kind == "microsoftTeamsApp":
        props = {"app_id": ok["teamsAppId"], "cloud": JS_CLOUDS[ok["cloud"]]}
    elif js_kind == "teamsExtensionUser":
        props = {
            "user_id": ok["userId"],
            "tenant_id": ok["tenantId"],
            "resource_id": ok["resourceId"],
            "cloud": JS_CLOUDS[ok["cloud"]],
        }
    else:
        props = {}
        raw_id = ok["id"]
    return kind, props, raw_id
