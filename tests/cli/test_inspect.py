"""``acs-common token inspect``: verdicts, hints for the usual wrong pastes, ``--json``."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from typing import Any

import pytest
from cli_support import assert_one_line_error, make_jwt, run_cli

from azure.communication.common._cli import main
from azure.communication.common._cli._inspect import (
    BEARER_HINT,
    EXPIRES_SOON_SECONDS,
    JWT_SHAPE_HINT,
    WHOLE_RESPONSE_HINT,
    inspect_token,
)
from azure.communication.common._refresh import PROACTIVE_WINDOW
from azure.communication.common._tokens import OPAQUE_TOKEN_LIFETIME, normalize_token

RESOURCE = "1b5cc06b-f352-4571-b1e6-d9b259b7c776"
USER = "00000005-6d8c-4ee5-aaeb-b33a0d00b3c4"
NOW = 1_800_000_000.0


def acs_claims(exp: float, iat: float, **extra: Any) -> dict[str, Any]:
    claims = {
        "skypeid": f"acs:{RESOURCE}_{USER}",
        "scp": 1792,
        "csi": str(int(iat)),
        "iat": iat,
        "exp": exp,
        "acsScope": "chat,voip",
        "resourceId": RESOURCE,
        "resourceLocation": "unitedstates",
    }
    claims.update(extra)
    return claims


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ----------------------------------------------------------------------------- the pure verdict


@pytest.mark.parametrize(
    ("remaining", "verdict", "ok"),
    [
        (3600.0, "valid", True),
        (EXPIRES_SOON_SECONDS + 0.5, "valid", True),
        (EXPIRES_SOON_SECONDS, "expires soon", True),
        (1.0, "expires soon", True),
        (0.0, "expired", False),
        (-90.0, "expired", False),
    ],
)
def test_verdict_depends_on_remaining_lifetime(remaining: float, verdict: str, ok: bool) -> None:
    token = make_jwt(acs_claims(exp=NOW + remaining, iat=NOW - 3600))
    report = inspect_token(token, NOW)
    assert report.verdict == verdict
    assert report.ok is ok
    assert report.remaining == pytest.approx(remaining)


def test_report_reads_identity_scopes_and_times() -> None:
    report = inspect_token(make_jwt(acs_claims(exp=NOW + 1800, iat=NOW - 1800)), NOW)
    assert report.identity == f"8:acs:{RESOURCE}_{USER}"
    assert report.identity_kind == "communication_user"
    assert report.scopes == ["chat", "voip"]
    assert report.issued_at == NOW - 1800
    assert report.lifetime == 3600
    assert report.header == {"alg": "RS256", "kid": "test-kid", "typ": "JWT"}
    assert report.reason == "expires in 30 min 0 s"


def test_scopes_fall_back_to_a_string_or_list_scp_claim() -> None:
    as_text = make_jwt({"exp": NOW + 900, "scp": "chat voip"})
    as_list = make_jwt({"exp": NOW + 900, "scp": ["chat.join"]})
    assert inspect_token(as_text, NOW).scopes == ["chat", "voip"]
    assert inspect_token(as_list, NOW).scopes == ["chat.join"]
    assert inspect_token(make_jwt({"exp": NOW + 900, "scp": 1792}), NOW).scopes == []


def test_skypeid_with_its_prefix_is_kept_and_missing_identity_is_none() -> None:
    report = inspect_token(make_jwt({"exp": NOW + 900, "skypeid": "8:orgid:abc"}), NOW)
    assert (report.identity, report.identity_kind) == ("8:orgid:abc", "microsoft_teams_user")
    bare = inspect_token(make_jwt({"exp": NOW + 900}), NOW)
    assert bare.identity is None
    assert bare.to_json()["identity"] is None


def test_non_standard_json_is_not_a_jwt() -> None:
    # json.dumps writes exp=inf as ``Infinity``, which is not JSON (RFC 8259): the library's one JWT reader,
    # shared with the credential, refuses it, so the credential would treat the token as opaque.
    report = inspect_token(make_jwt({"iat": NOW, "exp": float("inf")}), NOW)
    assert report.verdict == "not a JWT"
    assert report.expires_on is None


@pytest.mark.parametrize("exp", [None, "soon", True])
def test_token_without_numeric_exp_gets_no_expiry(exp: object) -> None:
    claims: dict[str, Any] = {"iat": NOW} if exp is None else {"iat": NOW, "exp": exp}
    report = inspect_token(make_jwt(claims), NOW)
    assert report.verdict == "no expiry"
    assert not report.ok
    assert report.remaining is None
    assert report.lifetime is None


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("hello", JWT_SHAPE_HINT),
        ("a.b", JWT_SHAPE_HINT),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0", JWT_SHAPE_HINT),
        ("not!.base64?.x", JWT_SHAPE_HINT),
        ('{"token": "eyJ.x.y", "expiresOn": "2026-01-01T00:00:00Z"}', WHOLE_RESPONSE_HINT),
        ('{"identity": {"id": "8:acs:x"}, "accessToken": {"token": "t"}}', WHOLE_RESPONSE_HINT),
        ("(CommunicationUserIdentifier(id='8:acs:x'), AccessToken(token='eyJ', expires_on=1))", WHOLE_RESPONSE_HINT),
        ("AccessToken(token='abc', expires_on=5)", WHOLE_RESPONSE_HINT),
        ("Bearer eyJhbGciOi.eyJ.sig", BEARER_HINT),
    ],
)
def test_wrong_pastes_get_not_a_jwt_with_a_hint(text: str, hint: str) -> None:
    report = inspect_token(text, NOW)
    assert report.verdict == "not a JWT"
    assert report.hint == hint
    assert report.claims is None


def test_whole_response_reason_says_a_jwt_is_inside() -> None:
    token = make_jwt(acs_claims(exp=NOW + 60, iat=NOW))
    report = inspect_token(json.dumps({"token": token, "expiresOn": "x"}), NOW)
    assert report.reason == "the input is not a bare token (a JWT is inside it)"
    assert token not in json.dumps(report.to_json())


def test_json_object_that_is_not_a_response_is_just_not_a_jwt() -> None:
    report = inspect_token('{"a": 1}', NOW)
    assert report.hint == JWT_SHAPE_HINT
    assert inspect_token("{not json", NOW).hint == JWT_SHAPE_HINT


def test_surrounding_quotes_and_whitespace_are_ignored() -> None:
    token = make_jwt(acs_claims(exp=NOW + 3600, iat=NOW))
    assert inspect_token(f'  "{token}"\n', NOW).verdict == "valid"
    assert inspect_token(f"'{token}'", NOW).verdict == "valid"


# ------------------------------------------------------------------------------- in-process CLI


def test_text_output_shows_fields_bar_and_claim_dates(capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    token = make_jwt(acs_claims(exp=now + 1800, iat=now - 1800))
    code, out, err = run_main(capsys, "--no-color", "token", "inspect", token)
    assert code == 0, err
    assert "✓ valid" in out
    assert f"8:acs:{RESOURCE}_{USER}  (communication_user)" in out
    assert "chat, voip" in out
    assert "[" + "█" * 12 + "░" * 12 + "]" in out  # half the lifetime left
    assert "resourceLocation" in out
    assert "unitedstates" in out
    assert token not in out
    assert "\x1b[" not in out


def test_expired_token_exits_1_with_cross(capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    token = make_jwt(acs_claims(exp=now - 120, iat=now - 3720))
    code, out, _ = run_main(capsys, "token", "inspect", token)
    assert code == 1
    assert "✗ expired" in out
    # The CLI reads the clock itself: allow for the seconds a loaded machine takes between the two reads.
    assert re.search(r"expired (1 min 59|2 min \d+) s ago", out), out
    assert "0 s (expired)" in out


def test_stdin_dash_and_no_argument_read_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_jwt(acs_claims(exp=time.time() + 300, iat=time.time() - 60))
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    code, out, _ = run_main(capsys, "token", "inspect", "-", "--json")
    assert code == 0
    assert json.loads(out)["verdict"] == "expires soon"
    monkeypatch.setattr("sys.stdin", io.StringIO(token))
    code, out, _ = run_main(capsys, "token", "inspect", "--json")
    assert json.loads(out)["verdict"] == "expires soon"


def test_not_a_jwt_text_shows_hint_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "token", "inspect", '{"token": "abc"}')
    assert code == 1
    assert "not a JWT" in out
    assert "only the `token` field" in out
    assert "Claims" not in out


def test_no_expiry_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "token", "inspect", make_jwt({"sub": "x"}, header={}))
    assert code == 1
    assert "no expiry" in out
    assert "(none)" in out  # no scopes
    assert "Header" not in out  # empty header is not shown


def test_empty_stdin_is_a_usage_error(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("  \n"))
    code, out, err = run_main(capsys, "token", "inspect")
    assert code == 2
    assert out == ""
    assert_one_line_error(err, "no token given")


# -------------------------------------------------------------------------------- subprocesses


def test_subprocess_json_output_is_parseable_and_complete() -> None:
    now = time.time()
    token = make_jwt(acs_claims(exp=now + 3600, iat=now))
    result = run_cli("token", "inspect", "--json", token)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "valid"
    assert report["ok"] is True
    assert report["identity"] == {"raw_id": f"8:acs:{RESOURCE}_{USER}", "kind": "communication_user"}
    assert report["scopes"] == ["chat", "voip"]
    assert 3500 < report["remaining_seconds"] <= 3600
    assert report["lifetime_seconds"] == pytest.approx(3600)
    assert report["claims"]["resourceId"] == RESOURCE
    assert token not in result.stdout


def test_subprocess_whole_response_on_stdin_gets_the_js_hint() -> None:
    token = make_jwt(acs_claims(exp=time.time() + 3600, iat=time.time()))
    pasted = json.dumps({"identity": {"id": "8:acs:x"}, "accessToken": {"token": token}})
    result = run_cli("token", "inspect", "-", stdin=pasted)
    assert result.returncode == 1
    assert "make sure you pass only the `token` field of the response" in result.stdout.lower()
    assert "the bare JWT string" in result.stdout
    assert result.stderr == ""


def test_subprocess_missing_subcommand_is_usage_error() -> None:
    result = run_cli("token")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "acs-common token: error:", "required")


# ----------------------------------------------------------------------------- exp as the credential reads it


def test_the_expires_soon_window_is_the_credentials_proactive_window() -> None:
    assert EXPIRES_SOON_SECONDS == PROACTIVE_WINDOW


@pytest.mark.parametrize(
    "exp",
    [NOW + 1800.5, NOW - 5, 10**400, -(10**400), 1e300, float("inf"), "1900000000", None, True],
    ids=["fractional", "past", "int-beyond-float", "negative-int-beyond-float", "1e300", "inf", "text", "none", "bool"],
)
def test_expiry_is_what_the_credential_reads(exp: object) -> None:
    token = make_jwt({"iat": NOW} if exp is None else {"iat": NOW, "exp": exp})
    report = inspect_token(token, NOW)
    parsed = normalize_token(token, NOW)
    if report.expires_on is None:
        # ``Infinity`` is not JSON (RFC 8259), so that token is not a JWT at all; the others have no usable exp.
        assert report.verdict == ("not a JWT" if exp == float("inf") else "no expiry")
        assert parsed.expires_on == NOW + OPAQUE_TOKEN_LIFETIME  # the credential's opaque-token reading
    else:
        assert report.expires_on == parsed.expires_on


def test_exp_beyond_float_range_is_no_expiry_and_not_an_unexpected_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: ``exp: 1e400`` (an integer JSON number) ended in 'unexpected OverflowError', exit 1."""
    token = make_jwt({"iat": 10**400, "exp": 10**400, "nbf": 10**400})
    report = inspect_token(token, NOW)
    assert (report.verdict, report.expires_on, report.issued_at) == ("no expiry", None, None)

    code, out, err = run_main(capsys, "--no-color", "token", "inspect", token)
    assert code == 1
    assert "no expiry" in out
    assert err == ""


def test_finite_times_beyond_the_platform_date_range_are_shown_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: a finite but huge ``exp``/``iat`` (1e300) made format_time raise OverflowError."""
    token = make_jwt({"iat": -1e300, "exp": 1e300})
    code, out, err = run_main(capsys, "--no-color", "token", "inspect", token)
    assert code == 0
    assert err == ""
    assert "expires:" in out
    assert out.count("(out of the representable date range)") == 4  # issued, expires and both claims
    assert inspect_token(token, NOW).verdict == "valid"


def test_json_nested_too_deeply_is_not_a_jwt() -> None:
    deep_payload = make_jwt({"sub": "x"}).split(".")
    deep_payload[1] = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).rstrip(b"=").decode()
    assert inspect_token(".".join(deep_payload), NOW).verdict == "not a JWT"
    deep_paste = '{"token": ' + "[" * 100_000
    report = inspect_token(deep_paste, NOW)
    assert (report.verdict, report.hint) == ("not a JWT", JWT_SHAPE_HINT)
