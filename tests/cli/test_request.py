"""``acs-common sign`` and ``acs-common request``: signatures checked against the signing core, requests
sent to a real emulator on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from cli_support import (
    CONNECTION_STRING_ENV,
    FAKE_CONNECTION_STRING,
    FAKE_KEY,
    assert_one_line_error,
    cli_env,
    run_cli,
)

from azure.communication.common._cli import main
from azure.communication.common._cli._output import Output
from azure.communication.common._cli._request import _print_body
from azure.communication.common._signing import compute_signature, content_hash, decode_access_key

API = "api-version=2023-10-01"


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def signature_of(authorization: str) -> str:
    prefix = "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="
    assert authorization.startswith(prefix)
    return authorization[len(prefix) :]


def sign_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = run_main(capsys, "sign", *args, "--json")
    assert code == 0, err
    return dict(json.loads(out))


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONNECTION_STRING_ENV, FAKE_CONNECTION_STRING)


# ------------------------------------------------------------------------------------------ sign


@pytest.mark.usefixtures("fake_env")
def test_sign_json_signature_verifies_with_the_signing_core(capsys: pytest.CaptureFixture[str]) -> None:
    body = '{"createTokenWithScopes": ["chat"]}'
    signed = sign_json(capsys, "post", f"/identities?{API}", "--data", body)
    headers = signed["headers"]
    assert signed["method"] == "POST"
    assert signed["canonical_url"] == f"https://contoso.communication.azure.com/identities?{API}"
    assert signed["host"] == "contoso.communication.azure.com"
    assert headers["x-ms-content-sha256"] == content_hash(body.encode())
    assert signed["string_to_sign"] == (
        f"POST\n/identities?{API}\n{headers['x-ms-date']};contoso.communication.azure.com;"
        f"{headers['x-ms-content-sha256']}"
    )
    expected = compute_signature(decode_access_key(FAKE_KEY), signed["string_to_sign"])
    assert signature_of(headers["Authorization"]) == expected


@pytest.mark.usefixtures("fake_env")
def test_sign_canonicalises_the_url_it_signs(capsys: pytest.CaptureFixture[str]) -> None:
    signed = sign_json(capsys, "GET", "/a b/%7e/./x?q=1")
    assert signed["url"] == "/a b/%7e/./x?q=1"
    assert signed["canonical_url"] == "https://contoso.communication.azure.com/a%20b/~/x?q=1"
    assert signed["string_to_sign"].split("\n")[1] == "/a%20b/~/x?q=1"
    assert signed["headers"]["x-ms-content-sha256"] == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@pytest.mark.usefixtures("fake_env")
def test_sign_signs_a_caller_host_header(capsys: pytest.CaptureFixture[str]) -> None:
    signed = sign_json(capsys, "GET", "https://127.0.0.1:9/x", "-H", "Host: front.example")
    assert signed["host"] == "front.example"
    assert ";front.example;" in signed["string_to_sign"]
    expected = compute_signature(decode_access_key(FAKE_KEY), signed["string_to_sign"])
    assert signature_of(signed["headers"]["Authorization"]) == expected


@pytest.mark.usefixtures("fake_env")
def test_sign_body_from_file_and_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    payload = b'{"scopes": ["voip"]}\n'
    path = tmp_path / "body.json"
    path.write_bytes(payload)
    from_file = sign_json(capsys, "POST", "/x", "--data", f"@{path}")
    assert from_file["headers"]["x-ms-content-sha256"] == content_hash(payload)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(payload)))
    from_stdin = sign_json(capsys, "POST", "/x", "--data", "@-")
    assert from_stdin["headers"]["x-ms-content-sha256"] == content_hash(payload)


@pytest.mark.usefixtures("fake_env")
def test_sign_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "sign", "DELETE", f"/identities/abc?{API}")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"DELETE https://contoso.communication.azure.com/identities/abc?{API}"
    assert lines[1] == "Host: contoso.communication.azure.com"
    assert lines[2] == "Accept: application/json"
    assert lines[3].startswith("x-ms-date: ")
    assert lines[4] == "x-ms-content-sha256: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert lines[5].startswith("Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256")
    assert "  DELETE" in lines
    assert FAKE_KEY not in out


@pytest.mark.usefixtures("fake_env")
def test_sign_shows_the_callers_headers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "sign", "GET", "/x", "-H", "X-Test: 1", "-H", "Accept: text/plain")
    assert code == 0
    lines = out.splitlines()
    assert "X-Test: 1" in lines
    assert "Accept: text/plain" in lines
    assert "Accept: application/json" not in lines  # the caller's Accept replaces the default
    signed = sign_json(capsys, "GET", "/x", "-H", "X-Test: 1")
    assert signed["request_headers"]["X-Test"] == "1"
    assert signed["headers"] == {k: signed["request_headers"][k] for k in signed["headers"]}


@pytest.mark.usefixtures("fake_env")
def test_sign_prints_the_clients_side_of_the_emulators_explanation(capsys: pytest.CaptureFixture[str]) -> None:
    body = '{"scopes": ["chat"]}'
    signed = sign_json(capsys, "POST", f"/identities/x/:issueAccessToken?{API}", "-d", body)
    inner = signed["innererror"]
    date = signed["headers"]["x-ms-date"]
    # Built independently, as the service defines it: METHOD, path and query, then date;host;content hash.
    expected_hash = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    assert inner == {
        "stringToSign": f"POST\n/identities/x/:issueAccessToken?{API}\n{date};contoso.communication.azure.com;"
        f"{expected_hash}",
        "contentHash": expected_hash,
        "host": "contoso.communication.azure.com",
    }
    code, out, _ = run_main(capsys, "sign", "POST", f"/identities/x/:issueAccessToken?{API}", "-d", body)
    assert code == 0
    # The text output labels them with the emulator's names; stringToSign as a JSON string, to diff as is.
    assert f"  stringToSign: {json.dumps(inner['stringToSign'])}" in out.splitlines()
    assert f"  contentHash:  {expected_hash}" in out.splitlines()
    assert "  host:         contoso.communication.azure.com" in out.splitlines()
    assert FAKE_KEY not in out


def test_sign_matches_the_emulators_explanation_of_the_same_mistake(
    capsys: pytest.CaptureFixture[str], emulator: Any
) -> None:
    # The emulator explains a 401 with what it computed; sign shows what the client computed: for a body
    # changed after signing (to one of the same length, so Content-Length still holds), the two content
    # hashes differ and the method, path and host agree.
    import urllib.error
    import urllib.request

    code, out, _ = run_main(
        capsys, "sign", "POST", f"/identities?{API}", "-d", "{}", "-c", emulator.connection_string, "--json"
    )
    assert code == 0
    signed = json.loads(out)
    request = urllib.request.Request(
        signed["canonical_url"], data=b"[]", method="POST", headers=signed["request_headers"]
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    explained = json.loads(refused.value.read())["error"]["innererror"]
    assert explained["host"] == signed["innererror"]["host"]
    assert explained["contentHash"] != signed["innererror"]["contentHash"]
    assert explained["stringToSign"].split("\n")[:2] == signed["innererror"]["stringToSign"].split("\n")[:2]


def test_sign_reads_connection_string_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(FAKE_CONNECTION_STRING + "\n"))
    signed = sign_json(capsys, "GET", "/x", "-c", "-")
    assert signed["host"] == "contoso.communication.azure.com"


@pytest.mark.parametrize(
    ("args", "env", "code", "fragments"),
    [
        (["GET", "/x"], None, 2, ["no connection string", CONNECTION_STRING_ENV]),
        (["GET", "/x"], "endpoint=https://x.example/", 1, ["nvalid connection string", "accesskey"]),
        (["GET", "/x"], "endpoint=https://x.example/;accesskey=not base64!", 1, ["nvalid connection string", "base64"]),
        (["P@ST", "/x"], FAKE_CONNECTION_STRING, 2, ["METHOD must be an HTTP method"]),
        (["GET", "/x", "-H", "NoColon"], FAKE_CONNECTION_STRING, 2, ["--header expects 'Name: value'"]),
        (["GET", "ftp://x.example/f"], FAKE_CONNECTION_STRING, 2, ["invalid URL", "only http and https"]),
        (["GET", "/x", "-c", "-", "-d", "@-"], None, 2, ["stdin can hold either"]),
        (["GET", "/x", "-d", "@/nonexistent/body"], FAKE_CONNECTION_STRING, 1, ["cannot read '/nonexistent/body'"]),
        (["GET", "http://x.example:99999/"], FAKE_CONNECTION_STRING, 2, ["invalid URL", "Port out of range"]),
    ],
)
def test_sign_bad_input(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: str | None,
    code: int,
    fragments: list[str],
) -> None:
    if env is not None:
        monkeypatch.setenv(CONNECTION_STRING_ENV, env)
    got, out, err = run_main(capsys, "sign", *args)
    assert got == code
    assert out == ""
    assert_one_line_error(err, "acs-common sign: error:", *fragments)


def test_empty_stdin_connection_string_is_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run_main(capsys, "sign", "GET", "/x", "-c", "-")
    assert code == 2
    assert_one_line_error(err, "nothing was read from stdin")


def test_invalid_connection_string_never_echoes_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    secret = base64.b64encode(b"super secret key material 123456").decode()
    code, out, err = run_main(capsys, "sign", "GET", "/x", "-c", f"accesskey={secret}")
    assert code == 1
    assert secret not in out + err
    assert_one_line_error(err, "nvalid connection string", "missing 'endpoint'")


def test_subprocess_sign_json() -> None:
    result = run_cli(
        "sign", "PUT", "/x?b=2&a=1", "--json", env=cli_env(**{CONNECTION_STRING_ENV: FAKE_CONNECTION_STRING})
    )
    assert result.returncode == 0, result.stderr
    signed = json.loads(result.stdout)
    assert signed["canonical_url"] == "https://contoso.communication.azure.com/x?b=2&a=1"
    expected = compute_signature(decode_access_key(FAKE_KEY), signed["string_to_sign"])
    assert signature_of(signed["headers"]["Authorization"]) == expected
    assert FAKE_KEY not in result.stdout + result.stderr


# --------------------------------------------------------------------------------------- request


def test_subprocess_request_creates_a_user_then_issues_a_token(emulator: Any) -> None:
    env = cli_env(**{CONNECTION_STRING_ENV: emulator.connection_string})
    created = run_cli("request", "POST", f"/identities?{API}", "--data", "{}", env=env)
    assert created.returncode == 0, created.stderr
    assert created.stderr.strip() == "HTTP 201 Created"
    user_id = json.loads(created.stdout)["identity"]["id"]
    assert user_id.startswith("8:acs:")
    issued = run_cli(
        "request",
        "POST",
        f"{emulator.endpoint}/identities/{user_id}/:issueAccessToken?{API}",
        "-d",
        '{"scopes": ["chat", "voip"]}',
        env=env,
    )
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)
    assert set(token) == {"token", "expiresOn"}
    inspected = run_cli("token", "inspect", "--json", token["token"])
    assert json.loads(inspected.stdout)["identity"]["raw_id"] == user_id
    assert json.loads(inspected.stdout)["scopes"] == ["chat", "voip"]
    assert emulator.access_key not in created.stdout + created.stderr + issued.stdout + issued.stderr


def test_request_verbose_shows_signed_request_and_response_headers(
    capsys: pytest.CaptureFixture[str], emulator: Any
) -> None:
    code, out, err = run_main(
        capsys, "request", "POST", f"/identities?{API}", "-v", "-c", emulator.connection_string, "-d", "{}"
    )
    assert code == 0, err
    assert json.loads(out)["identity"]["id"].startswith("8:acs:")
    lines = err.splitlines()
    assert lines[0] == f"> POST {emulator.endpoint}/identities?{API}"
    assert "> Content-Type: application/json" in lines
    assert any(line.startswith("> Authorization: HMAC-SHA256 SignedHeaders=") for line in lines)
    assert "HTTP 201 Created" in lines
    assert "< Content-Type: application/json" in lines
    assert emulator.access_key not in out + err


def test_request_error_status_exits_1_and_prints_the_error_body(
    capsys: pytest.CaptureFixture[str], emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONNECTION_STRING_ENV, emulator.connection_string)
    code, out, _ = run_main(capsys, "request", "POST", f"/identities?{API}", "-d", "{}")
    user_id = json.loads(out)["identity"]["id"]
    assert code == 0
    code, out, err = run_main(capsys, "request", "DELETE", f"/identities/{user_id}?{API}")
    assert (code, out, err.strip()) == (0, "", "HTTP 204 No Content")
    code, out, err = run_main(
        capsys, "request", "POST", f"/identities/{user_id}/:issueAccessToken?{API}", "-d", '{"scopes": ["chat"]}'
    )
    assert code == 1
    assert err.strip() == "HTTP 404 Not Found"
    assert "error" in json.loads(out)


def test_request_with_a_wrong_key_gets_401(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    wrong = f"endpoint={emulator.endpoint};accesskey={FAKE_KEY}"
    code, out, err = run_main(capsys, "request", "POST", f"/identities?{API}", "-c", wrong, "-d", "{}")
    assert code == 1
    assert err.strip() == "HTTP 401 Unauthorized"
    assert json.loads(out)["error"]["code"]


def test_request_plain_text_body_gets_text_content_type(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    code, _, err = run_main(
        capsys, "request", "POST", f"/identities?{API}", "-v", "-c", emulator.connection_string, "-d", "not json"
    )
    assert code == 1
    assert "> Content-Type: text/plain; charset=utf-8" in err.splitlines()
    assert "HTTP 400 Bad Request" in err


def test_request_with_an_invalid_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "request", "GET", "http://[::1/x", "-c", FAKE_CONNECTION_STRING)
    assert (code, out) == (2, "")
    assert_one_line_error(err, "acs-common request: error: invalid URL 'http://[::1/x':", "IPv6")


def test_request_to_a_closed_port_is_a_one_line_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.core.pipeline.transport import RequestsTransport

    # The retry policy's back-off between connection attempts, recorded instead of slept.
    slept: list[float] = []
    monkeypatch.setattr(RequestsTransport, "sleep", lambda self, seconds: slept.append(seconds))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cs = f"endpoint=http://127.0.0.1:{port}/;accesskey={FAKE_KEY}"
    code, out, err = run_main(capsys, "request", "GET", "/x", "-c", cs)
    assert code == 1
    assert out == ""
    assert_one_line_error(err, "acs-common request: error:", f"GET http://127.0.0.1:{port}/x failed")
    # The CLI retried (a transient outage is covered) with a growing back-off, then gave up.
    assert len(slept) >= 2
    assert slept == sorted(slept)
    assert slept[0] > 0


def test_print_body_handles_text_and_empty() -> None:
    stream = io.StringIO()
    _print_body(b"", Output(stream))
    _print_body(b"plain \xff", Output(stream))
    assert stream.getvalue() == "plain \ufffd\n"
