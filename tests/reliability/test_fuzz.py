"""Fuzzing the parsers with hypothesis: only the documented exceptions come out, and no secret is echoed.

Each target gets ``ACS_FUZZ_EXAMPLES`` examples (default 300, a few seconds in ``make test``; ``make fuzz``
runs 20,000 each). Inputs mix arbitrary text and JSON with structured near-misses built from the real grammar
(raw-id prefixes, wire-model keys, JWT segments, connection-string keys), because arbitrary text alone
rarely gets past the first check of a parser. Secrets fed in are random base64 strings of at least 16
characters, so finding one in a message cannot be a coincidence.

The atheris harness (``atheris_harness.py``, coverage-guided) runs under ``make fuzz`` only.
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo, AzureKeyCredential
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azure.communication.common import (
    CommunicationIdentifierKind,
    CommunicationTokenCredential,
    deserialize_identifier,
    identifier_from_raw_id,
    parse_client_arguments,
    parse_connection_string,
    serialize_identifier,
)
from azure.communication.common._signing import decode_access_key
from azure.communication.common._timestamps import parse_timestamp
from azure.communication.common._tokens import normalize_token, parse_jwt_expiry
from azure.communication.common._url import canonical_url

FUZZ_EXAMPLES = int(os.environ.get("ACS_FUZZ_EXAMPLES", "300"))
fuzz = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

DOCUMENTED = (ValueError, TypeError)

# --------------------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------------------

# Text that stresses parsers: separators of every grammar here, escapes, controls, surrogates, non-ASCII.
_TRICKY = ":_.;=%/?#@[] \t\r\n\x00\\\"'{}+-~éΩ😀\ud800\u200b\ufeff"
tricky_text = st.text(alphabet=st.sampled_from(_TRICKY) | st.characters(), max_size=80)

secret_b64 = st.binary(min_size=12, max_size=64).map(lambda b: base64.b64encode(b).decode("ascii"))
secret_b64url = st.binary(min_size=12, max_size=48).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))

RAW_ID_PREFIXES = (
    "4:",
    "8:acs:",
    "8:dod-acs:",
    "8:gcch-acs:",
    "8:spool:",
    "8:teamsvisitor:",
    "8:orgid:",
    "8:dod:",
    "8:gcch:",
    "28:orgid:",
    "28:dod:",
    "28:gcch:",
    "8:",
    "28:",
    "",
)
raw_ids = st.one_of(
    st.text(),
    tricky_text,
    st.builds(lambda p, s: p + s, st.sampled_from(RAW_ID_PREFIXES), tricky_text),
    st.builds(
        lambda p, parts: p + "_".join(parts),
        st.sampled_from(RAW_ID_PREFIXES),
        st.lists(st.text(alphabet="abc:_-0", max_size=6), max_size=5),
    ),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

NESTED_KEYS = ("communicationUser", "phoneNumber", "microsoftTeamsUser", "microsoftTeamsApp", "teamsExtensionUser")
WIRE_KINDS = (*NESTED_KEYS, "unknown", "CommunicationUser", "", "communication_user")
INNER_KEYS = ("id", "value", "userId", "appId", "tenantId", "resourceId", "cloud", "isAnonymous", "assertedId")
inner_values = st.one_of(json_scalars, st.sampled_from(["public", "DOD", "gcch", "Public", "dod ", "8:acs:x"]))
inner_models = st.one_of(
    st.none(),
    json_values,
    st.dictionaries(st.sampled_from(INNER_KEYS), inner_values, max_size=6),
)
wire_models = st.one_of(
    json_values,
    st.dictionaries(
        st.sampled_from(("rawId", "kind", *NESTED_KEYS, "extra")),
        st.one_of(inner_models, st.sampled_from(WIRE_KINDS), raw_ids),
        max_size=5,
    ),
)


def _b64url_json(value: Any) -> str:
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = "{}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


exp_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=2),
)
jwt_like = st.builds(
    lambda header, claims, signature, padding: ".".join(
        (_b64url_json(header) + padding, _b64url_json(claims) + padding, signature)
    ),
    st.one_of(st.just({"alg": "RS256", "typ": "JWT"}), json_values),
    st.one_of(
        st.fixed_dictionaries({"exp": exp_values}, optional={"skypeid": st.text(max_size=10)}),
        json_values,
    ),
    secret_b64url,
    st.sampled_from(["", "=", "=="]),
)


def _assert_not_echoed(exc: BaseException, *secrets: str) -> None:
    texts = [str(exc), repr(exc), *(repr(a) for a in exc.args)]
    for secret in secrets:
        for text in texts:
            assert secret not in text, f"{type(exc).__name__} quotes a secret ({len(secret)} chars)"


# --------------------------------------------------------------------------------------------------------
# Identifiers
# --------------------------------------------------------------------------------------------------------


@fuzz
@given(raw_ids)
def test_identifier_from_raw_id_is_total_and_round_trips(raw_id: str) -> None:
    identifier = identifier_from_raw_id(raw_id)
    assert identifier.raw_id == raw_id
    assert isinstance(identifier.kind, CommunicationIdentifierKind)
    # The wire model of whatever came out deserializes to an equal identifier.
    assert deserialize_identifier(serialize_identifier(identifier)) == identifier


@fuzz
@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text()), st.floats()))
def test_identifier_from_raw_id_rejects_non_strings_with_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        identifier_from_raw_id(value)  # type: ignore[arg-type]


@fuzz
@given(wire_models)
def test_deserialize_identifier_raises_only_documented_errors(model: Any) -> None:
    try:
        identifier = deserialize_identifier(model)
    except DOCUMENTED as exc:
        message = str(exc)
        assert message, "an error without a message"
        return
    # Whatever deserializes has a string raw id and serializes back without error.
    assert isinstance(identifier.raw_id, str)
    wire = serialize_identifier(identifier)
    assert wire["rawId"] == identifier.raw_id


# --------------------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------------------


def _distinctive(token: str) -> bool:
    """Whether finding ``token`` in a message means it was quoted (a 1-character token is in most texts)."""
    return len(token.strip()) >= 12


@fuzz
@given(st.one_of(jwt_like, tricky_text, secret_b64url))
def test_token_parsing_raises_only_documented_errors_and_never_quotes_the_token(token: str) -> None:
    secrets = [token.strip()] if _distinctive(token) else []
    try:
        parsed = normalize_token(token, 1_000.0)
    except DOCUMENTED as exc:
        _assert_not_echoed(exc, *secrets)
        assert not token.strip(), "only an empty or whitespace token is refused"
        return
    assert parsed.token == token.strip()
    assert not math.isnan(parsed.expires_on)
    assert all(s not in repr(parsed) for s in secrets)
    try:
        exp = parse_jwt_expiry(token)
    except DOCUMENTED as exc:
        _assert_not_echoed(exc, *secrets)
        assert parsed.expires_on == 1_000.0 + 600.0, "a token without a numeric exp is opaque (600 s)"
    else:
        assert parsed.expires_on == exp


@fuzz
@given(st.one_of(jwt_like, secret_b64url, tricky_text))
def test_credential_constructor_accepts_tokens_or_raises_documented_errors(token: str) -> None:
    try:
        credential = CommunicationTokenCredential(token)
    except DOCUMENTED:
        assert not token.strip(), "only an empty or whitespace token is refused"
        return
    secrets = [token.strip()] if _distinctive(token) else []
    with credential:
        access = credential.get_token()
        info = credential.get_token_info()
        assert access.token == token.strip()
        assert info.token == token.strip()
        for text in (repr(credential), str(credential), repr(access), str(access), repr(info)):
            assert all(s not in text for s in secrets)


token_objects = st.one_of(
    st.builds(AccessToken, secret_b64url, st.one_of(st.integers(), st.floats(), st.text(max_size=3), st.none())),
    st.builds(
        AccessTokenInfo,
        secret_b64url,
        st.one_of(st.integers(), st.floats()),
        refresh_on=st.one_of(st.none(), st.integers(), st.floats()),
    ),
    st.tuples(st.none(), st.builds(AccessToken, secret_b64url, st.integers())),
    st.dictionaries(st.just("token"), secret_b64url),
    st.binary(),
    st.integers(),
    st.none(),
)


@fuzz
@given(token_objects)
def test_token_objects_are_accepted_or_refused_with_documented_errors(value: Any) -> None:
    secrets = _secrets_in(value)
    try:
        parsed = normalize_token(value, 0.0)
    except DOCUMENTED as exc:
        _assert_not_echoed(exc, *secrets)
        return
    assert isinstance(value, (AccessToken, AccessTokenInfo))
    assert parsed.token == value.token.strip()
    assert not any(s in repr(parsed) for s in secrets)


def _secrets_in(value: Any) -> list[str]:
    if isinstance(value, (AccessToken, AccessTokenInfo)):
        return [value.token]
    if isinstance(value, tuple):
        return [v.token for v in value if isinstance(v, AccessToken)]
    if isinstance(value, dict):
        return list(value.values())
    return []


# --------------------------------------------------------------------------------------------------------
# Connection strings, client arguments, keys
# --------------------------------------------------------------------------------------------------------

endpoints = st.one_of(
    st.sampled_from(
        [
            "https://contoso.communication.azure.com/",
            "https://contoso.communication.azure.com",
            "http://127.0.0.1:8080",
            "https://user@host/",
            "https://host/path",
            "https://host/?q=1",
            "ftp://host/",
            "https://",
            "",
            "https://[::1]:443/",
            "https://host:99999/",
            "https://host:abc/",
        ]
    ),
    tricky_text,
)
CS_KEYS = ("endpoint", "accesskey", "ENDPOINT", "AccessKey", "other", "", "endpoint ", " accesskey")


@st.composite
def connection_strings(draw: st.DrawFn) -> tuple[str, str]:
    """A connection string made of shuffled, duplicated, missing or mangled parts, and its key."""
    key = draw(secret_b64)
    parts = [f"endpoint={draw(endpoints)}", f"accesskey={key}"]
    extra = draw(
        st.lists(
            st.builds(lambda k, v: f"{k}={v}", st.sampled_from(CS_KEYS), st.one_of(endpoints, tricky_text)),
            max_size=3,
        )
    )
    parts = draw(st.permutations(parts + extra))
    if draw(st.booleans()):
        parts = parts[: draw(st.integers(0, len(parts)))]
    separator = draw(st.sampled_from([";", "; ", ";;", "&", ""]))
    text = separator.join(parts) + draw(st.sampled_from(["", ";", " ", "\n"]))
    return text, key


@fuzz
@given(connection_strings())
def test_parse_connection_string_never_quotes_the_key(case: tuple[str, str]) -> None:
    text, key = case
    try:
        parsed = parse_connection_string(text)
    except DOCUMENTED as exc:
        _assert_not_echoed(exc, key)
        return
    assert key not in repr(parsed)
    assert key not in str(parsed)
    assert isinstance(parsed.credential, AzureKeyCredential)
    assert parsed.credential.key in text


@fuzz
@given(st.one_of(tricky_text, st.text(), st.none(), st.integers(), st.binary()))
def test_parse_connection_string_arbitrary_input(text: Any) -> None:
    try:
        parsed = parse_connection_string(text)
    except DOCUMENTED as exc:
        message = str(exc)
        assert message, "an error without a message"
        return
    assert isinstance(parsed.endpoint, str)
    assert parsed.endpoint
    assert parsed.credential.key not in repr(parsed)


@fuzz
@given(
    st.one_of(connection_strings(), st.tuples(endpoints, secret_b64)),
    st.one_of(st.none(), secret_b64.map(AzureKeyCredential), secret_b64, st.integers()),
)
def test_parse_client_arguments_raises_only_documented_errors(first: tuple[str, str], credential: Any) -> None:
    text, key = first
    secrets = [key]
    if isinstance(credential, AzureKeyCredential):
        secrets.append(credential.key)
    elif isinstance(credential, str):
        secrets.append(credential)
    try:
        endpoint, result = parse_client_arguments(text, credential)
    except DOCUMENTED as exc:
        _assert_not_echoed(exc, *secrets)
        return
    assert isinstance(endpoint, str)
    assert endpoint.startswith(("http://", "https://"))
    for secret in secrets:
        assert secret not in endpoint
    assert result is not None


@fuzz
@given(st.one_of(secret_b64, tricky_text, secret_b64.map(lambda k: k[:-1] + "!")))
def test_decode_access_key_never_quotes_the_key(key: str) -> None:
    try:
        decoded = decode_access_key(key)
    except DOCUMENTED as exc:
        _assert_not_echoed(exc, *([key] if _distinctive(key) else []))
        return
    assert base64.b64encode(decoded).decode() == key.strip()


# --------------------------------------------------------------------------------------------------------
# Other parsers that see untrusted text: URLs to sign, service timestamps
# --------------------------------------------------------------------------------------------------------

urls = st.one_of(
    st.builds(
        lambda scheme, host, path, query: f"{scheme}://{host}{path}{query}",
        st.sampled_from(["http", "https", "HTTPS", "ftp", ""]),
        st.sampled_from(["example.com", "EXAMPLE.com:443", "[::1]:8080", "bücher.de", "127.0.0.1:0", "", "h:x"]),
        tricky_text.map(lambda t: "/" + t),
        st.one_of(st.just(""), tricky_text.map(lambda t: "?" + t)),
    ),
    tricky_text,
)


@fuzz
@given(urls)
def test_canonical_url_raises_only_documented_errors_and_is_idempotent(url: str) -> None:
    try:
        canonical = canonical_url(url)
    except DOCUMENTED:
        return
    assert canonical_url(canonical) == canonical


@fuzz
@given(
    st.one_of(
        tricky_text,
        st.from_regex(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
        ),
    )
)
def test_parse_timestamp_raises_only_documented_errors(text: str) -> None:
    try:
        value = parse_timestamp(text)
    except DOCUMENTED:
        return
    assert math.isfinite(value)


# --------------------------------------------------------------------------------------------------------
# atheris (coverage-guided), only under `make fuzz`
# --------------------------------------------------------------------------------------------------------

HARNESS = Path(__file__).with_name("atheris_harness.py")


if FUZZ_EXAMPLES >= 5_000:  # `make fuzz` (20,000): not collected in `make test`, so no skip line there either

    def test_atheris_harness_runs_clean() -> None:
        pytest.importorskip("atheris", reason="atheris is not installed (dev extra)")
        runs = FUZZ_EXAMPLES * 25
        result = subprocess.run(
            [sys.executable, str(HARNESS), f"-atheris_runs={runs}", "-rss_limit_mb=2048"],
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
        )
        tail = (result.stdout + result.stderr)[-3000:]
        assert result.returncode == 0, tail
        assert f"Done {runs} " in tail, tail
