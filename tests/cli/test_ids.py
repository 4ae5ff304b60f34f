"""``acs-common id parse`` and ``acs-common id wire``: values, ``--json``, errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cli_support import assert_one_line_error, run_cli

from azure.communication.common._cli import main

TEAMS = "45ab2481-1c1c-4005-be24-0ffb879b1130"


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("raw_id", "kind", "properties", "wire_kind"),
    [
        ("8:acs:res_user", "communication_user", {"id": "8:acs:res_user"}, "communicationUser"),
        ("4:+14255550123", "phone_number", {"value": "+14255550123", "is_anonymous": False}, "phoneNumber"),
        ("4:anonymous", "phone_number", {"value": "anonymous", "is_anonymous": True}, "phoneNumber"),
        (
            f"8:gcch:{TEAMS}",
            "microsoft_teams_user",
            {"user_id": TEAMS, "is_anonymous": False, "cloud": "GCCH"},
            "microsoftTeamsUser",
        ),
        (f"28:dod:{TEAMS}", "microsoft_teams_app", {"app_id": TEAMS, "cloud": "DOD"}, "microsoftTeamsApp"),
        (
            "8:acs:r_t_u",
            "teams_extension_user",
            {"user_id": "u", "tenant_id": "t", "resource_id": "r", "cloud": "PUBLIC"},
            "teamsExtensionUser",
        ),
        ("8:x:y:z", "unknown", {}, "unknown"),
    ],
)
def test_parse_json_gives_kind_properties_and_wire(
    capsys: pytest.CaptureFixture[str], raw_id: str, kind: str, properties: dict[str, object], wire_kind: str
) -> None:
    code, out, err = run_main(capsys, "id", "parse", raw_id, "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["kind"] == kind
    assert document["raw_id"] == raw_id
    assert document["properties"] == properties
    assert document["wire"]["rawId"] == raw_id
    assert document["wire"]["kind"] == wire_kind


def test_parse_text_shows_properties_and_wire_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "id", "parse", f"8:teamsvisitor:{TEAMS}")
    assert code == 0
    assert "kind:       microsoft_teams_user" in out
    assert "is_anonymous: true" in out
    assert f"user_id: {TEAMS}" in out
    assert '"microsoftTeamsUser": {' in out
    assert '"cloud": "public"' in out  # the wire model writes clouds in lower case


def test_parse_unknown_text_says_no_properties(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "id", "parse", "hello")
    assert code == 0
    assert "(none)" in out
    assert '"kind": "unknown"' in out


def test_parse_reads_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("4:+15550100\n"))
    code, out, _ = run_main(capsys, "id", "parse", "-", "--json")
    assert code == 0
    assert json.loads(out)["properties"]["value"] == "+15550100"


def test_wire_round_trips_what_parse_printed(capsys: pytest.CaptureFixture[str]) -> None:
    raw_id = f"8:dod:{TEAMS}"
    _, out, _ = run_main(capsys, "id", "parse", raw_id, "--json")
    wire = json.loads(out)["wire"]
    code, out, err = run_main(capsys, "id", "wire", json.dumps(wire), "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["raw_id"] == raw_id
    assert document["wire"] == wire
    assert document["properties"]["cloud"] == "DOD"


def test_wire_without_kind_infers_it(capsys: pytest.CaptureFixture[str]) -> None:
    model = '{"rawId": "28:gcch:app", "microsoftTeamsApp": {"appId": "app", "cloud": "GCCH"}}'
    code, out, err = run_main(capsys, "id", "wire", model)
    assert code == 0, err
    assert "kind:       microsoft_teams_app" in out
    assert "raw id:     28:gcch:app" in out


def test_wire_from_file_and_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = {"rawId": "4:+1555", "kind": "phoneNumber", "phoneNumber": {"value": "+1555"}}
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    code, out, _ = run_main(capsys, "id", "wire", f"@{path}", "--json")
    assert code == 0
    assert json.loads(out)["kind"] == "phone_number"
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(model)))
    code, out, _ = run_main(capsys, "id", "wire", "-", "--json")
    assert json.loads(out)["raw_id"] == "4:+1555"


@pytest.mark.parametrize(
    ("argument", "fragment"),
    [
        ('{"communicationUser": {}}', "Property id is required for identifier of type communicationUser."),
        (
            '{"communicationUser": {"id": "a"}, "phoneNumber": {"value": "b"}}',
            "Only one of the properties in",
        ),
        ("[1, 2]", "must be a JSON object, not list"),
        ("{", "not valid JSON"),
        ("@/nonexistent/model.json", "cannot read '/nonexistent/model.json'"),
    ],
)
def test_wire_bad_input_exits_1_with_one_line(capsys: pytest.CaptureFixture[str], argument: str, fragment: str) -> None:
    code, out, err = run_main(capsys, "id", "wire", argument)
    assert code == 1
    assert out == ""
    assert_one_line_error(err, "acs-common id wire: error:", fragment)


def test_wire_not_utf8_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"x": "\xe9"}')
    code, _, err = run_main(capsys, "id", "wire", f"@{path}")
    assert code == 1
    assert_one_line_error(err, "is not UTF-8 text")


def test_wire_empty_input_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "id", "wire", "  ")
    assert code == 2
    assert_one_line_error(err, "no wire model given")


def test_subprocess_parse_and_wire() -> None:
    parsed = run_cli("id", "parse", "--json", "28:orgid:app")
    assert parsed.returncode == 0, parsed.stderr
    assert json.loads(parsed.stdout)["wire"] == {
        "rawId": "28:orgid:app",
        "kind": "microsoftTeamsApp",
        "microsoftTeamsApp": {"appId": "app", "cloud": "public"},
    }
    wire = run_cli("id", "wire", "-", "--json", stdin=json.dumps(json.loads(parsed.stdout)["wire"]))
    assert wire.returncode == 0, wire.stderr
    assert json.loads(wire.stdout)["kind"] == "microsoft_teams_app"


def test_subprocess_bad_wire_and_missing_argument() -> None:
    bad = run_cli("id", "wire", '{"phoneNumber": {}}')
    assert bad.returncode == 1
    assert_one_line_error(bad.stderr, "Property value is required for identifier of type phoneNumber.")
    missing = run_cli("id", "parse")
    assert missing.returncode == 2
    assert_one_line_error(missing.stderr, "acs-common id parse: error:", "RAW_ID")
