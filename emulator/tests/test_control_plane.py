"""The control plane under ``/_emulator/`` and its chaos rules, driven through the official clients.

Identity tests use the plugin's own ``acs_emulator`` fixture (one in-process emulator for the session, reset
around each test), which also proves that the plugin loads in this suite without clashing with its fixtures.
Chat tests use an HTTPS emulator of their own (the official chat client refuses bearer tokens over http).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from azure.communication.chat import ChatClient, ChatParticipant
from azure.communication.identity import CommunicationIdentityClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from acs_emulator import Emulator
from acs_emulator._chaos import ChaosEngine, ChaosRule, parse_rules, shorthand_rules
from acs_emulator._control import RequestLog, TokenLog, _explanation, is_loopback_host
from acs_emulator._control_client import ControlClient, EmulatorTarget
from acs_emulator._errors import ApiError
from acs_emulator._tokens import TokenIssuer
from azure.communication.common import CommunicationTokenCredential
from emulator_support import FakeClock

WRONG_KEY = "d3Jvbmcta2V5LW9mLXRoZS1lbXVsYXRvci10ZXN0cw=="


def _identity(emu: Any, **kwargs: Any) -> CommunicationIdentityClient:
    return CommunicationIdentityClient(
        emu.endpoint,
        AzureKeyCredential(emu.access_key),
        retry_backoff_factor=0.01,
        connection_verify=emu.ca_bundle or True,
        **kwargs,
    )


def _raw(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def chat_emulator() -> Iterator[ControlClient]:
    with Emulator(https=True) as emu:
        assert emu.ca_bundle is not None
        yield ControlClient(EmulatorTarget(emu.endpoint, emu.access_key, emu.ca_bundle), emulator=emu)
        assert emu.unexpected_errors == 0


# -- identity, through the plugin's fixture --------------------------------------------------------------


def test_a_503_once_is_retried_away_by_the_identity_client_and_the_log_shows_both_tries(
    acs_emulator: ControlClient,
) -> None:
    stored = acs_emulator.set_chaos(
        [{"method": "POST", "path": "/identities", "status": 503, "retryAfter": 0, "times": 1}]
    )
    assert stored == [
        {
            "method": "POST",
            "path": "/identities",
            "status": 503,
            "probability": 1.0,
            "latency": 0.0,
            "retryAfter": 0,
            "times": 1,
        }
    ]
    user = _identity(acs_emulator).create_user()
    log = acs_emulator.requests()
    assert [(e["method"], e["path"], e["status"], e["injected"]) for e in log] == [
        ("POST", "/identities", 503, True),
        ("POST", "/identities", 201, False),
    ]
    assert log[0]["explanation"]["code"] == "ServiceUnavailable"
    assert log[1]["auth"] == "hmac: ok"
    assert [identity["id"] for identity in acs_emulator.identities()] == [user.properties["id"]]
    # Spent: the rule stays, with nothing left of it.
    assert acs_emulator.chaos()[0]["times"] == 0


def test_a_401_is_logged_with_its_explanation_and_no_secret(acs_emulator: ControlClient) -> None:
    wrong = CommunicationIdentityClient(acs_emulator.endpoint, AzureKeyCredential(WRONG_KEY), retry_total=0)
    with pytest.raises((ClientAuthenticationError, HttpResponseError)):
        wrong.create_user()
    (entry,) = acs_emulator.requests()
    assert (entry["method"], entry["path"], entry["status"]) == ("POST", "/identities", 401)
    assert entry["auth"].startswith("hmac: ")
    assert entry["auth"] != "hmac: ok"
    explanation = entry["explanation"]
    assert explanation["code"] == "Denied"
    assert "signature" in explanation["message"].lower()
    inner = explanation["innererror"]
    host = acs_emulator.endpoint.split("//", 1)[1]
    assert inner["host"] == host
    assert inner["stringToSign"].startswith("POST\n/identities?api-version=")
    assert inner["stringToSign"].endswith(f";{host};{inner['contentHash']}")
    text = json.dumps(acs_emulator.requests())
    assert WRONG_KEY not in text
    assert acs_emulator.access_key not in text


def test_identities_show_token_claims_and_remaining_life_from_the_service_clock() -> None:
    clock = FakeClock(time.time())
    with Emulator(_clock=clock) as emu:
        control = ControlClient(EmulatorTarget(emu.endpoint, emu.access_key))
        user, token = _identity(emu).create_user_and_token(["chat", "voip"])
        clock.advance(3600.5)
        (identity,) = control.identities()
        assert identity["id"] == user.properties["id"]
        (entry,) = identity["tokens"]
        issued = int(clock.now - 3600.5)
        assert entry["claims"]["iat"] == issued
        assert entry["claims"]["exp"] == issued + 24 * 3600
        assert entry["claims"]["skypeid"] == user.properties["id"][2:]
        assert entry["scopes"] == ["chat", "voip"]
        assert entry["remainingSeconds"] == int(issued + 24 * 3600 - clock.now)
        assert entry["revoked"] is False
        assert token.token not in json.dumps(identity)
        clock.advance(-3600.5)  # back to the clients' time, so that their signatures are fresh
        _identity(emu).revoke_tokens(user)
        assert control.identities()[0]["tokens"][0]["revoked"] is True
        clock.advance(25 * 3600)
        assert control.identities()[0]["tokens"][0]["remainingSeconds"] == 0


def test_shorthand_flags_are_one_rule_and_reset_restores_it() -> None:
    with Emulator(latency=0.001, fail_rate=0.25, retry_after=3) as emu:
        control = ControlClient(EmulatorTarget(emu.endpoint, emu.access_key))
        shorthand = {
            "method": "*",
            "path": "*",
            "status": 503,
            "probability": 0.25,
            "latency": 0.001,
            "retryAfter": 3,
            "times": None,
        }
        assert control.chaos() == [shorthand]
        assert control.set_chaos([]) == []
        control.reset()
        assert control.chaos() == [shorthand]


def test_the_control_plane_and_the_jwks_are_not_subject_to_chaos_nor_logged(acs_emulator: ControlClient) -> None:
    acs_emulator.set_chaos([{"status": 500}])
    assert _raw(acs_emulator.endpoint + "/.well-known/jwks.json")[0] == 200
    status, body = _raw(acs_emulator.endpoint + "/identities?api-version=2023-10-01", "POST", b"{}")
    assert status == 500
    assert json.loads(body)["error"]["code"] == "InternalServerError"
    assert acs_emulator.health()["status"] == "ok"
    assert [(e["path"], e["status"]) for e in acs_emulator.requests()] == [
        ("/.well-known/jwks.json", 200),
        ("/identities", 500),
    ]


def test_reset_keeps_the_resource_and_the_key(acs_emulator: ControlClient, acs_connection_string: str) -> None:
    assert acs_connection_string == f"endpoint={acs_emulator.endpoint}/;accesskey={acs_emulator.access_key}"
    before = acs_emulator.health()
    client = _identity(acs_emulator)
    client.create_user()
    acs_emulator.set_chaos([{"path": "/nowhere", "status": 404}])
    acs_emulator.reset()
    assert (acs_emulator.identities(), acs_emulator.requests(), acs_emulator.chaos()) == ([], [], [])
    assert acs_emulator.health()["resourceId"] == before["resourceId"]
    # The same key still signs; new ids keep the resource id.
    assert before["resourceId"] in client.create_user().properties["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "The body"),
        ({"rules": {}}, "rules"),
        ({"rules": [], "extra": 1}, "The body"),
        ({"rules": [1]}, "rules[0]"),
        ({"rules": [{"status": 503, "retry_after": 1}]}, "unknown field"),
        ({"rules": [{"method": "FETCH", "status": 503}]}, "rules[0].method"),
        ({"rules": [{"path": "identities", "status": 503}]}, "rules[0].path"),
        ({"rules": [{"path": "/a*b", "status": 503}]}, "rules[0].path"),
        ({"rules": [{"status": 200}]}, "rules[0].status"),
        ({"rules": [{"status": True}]}, "rules[0].status"),
        ({"rules": [{"status": 503, "probability": 1.5}]}, "rules[0].probability"),
        ({"rules": [{"status": 503, "latency": -1}]}, "rules[0].latency"),
        ({"rules": [{"status": 503, "retryAfter": 1.5}]}, "rules[0].retryAfter"),
        ({"rules": [{"status": 503, "times": -1}]}, "rules[0].times"),
        ({"rules": [{"method": "GET"}]}, "rules[0] must be given a status or a latency"),
        ({"rules": [{"status": 503}] * 65}, "at most 64"),
    ],
)
def test_bad_chaos_rules_get_a_service_shaped_400_and_change_nothing(
    acs_emulator: ControlClient, body: Any, field: str
) -> None:
    acs_emulator.set_chaos([{"path": "/kept", "status": 503}])
    status, raw = _raw(acs_emulator.control_url + "/chaos", "PUT", json.dumps(body).encode())
    assert status == 400
    error = json.loads(raw)["error"]
    assert error["code"] == "InvalidChaosRule"
    assert field in error["message"]
    assert [rule["path"] for rule in acs_emulator.chaos()] == ["/kept"]


def test_bad_control_requests_get_service_shaped_errors(acs_emulator: ControlClient) -> None:
    url = acs_emulator.control_url
    assert _raw(url + "/chaos", "PUT", b"{not json")[0] == 400
    status, raw = _raw(url + "/requests?since=-1")
    assert (status, json.loads(raw)["error"]["code"]) == (400, "BadRequest")
    status, raw = _raw(url + "/nothing-here")
    assert (status, json.loads(raw)["error"]["code"]) == (404, "NotFound")
    assert _raw(url + "/reset")[0] == 405
    # A web page on another site cannot change the emulator, nor reach it through a rebound name.
    acs_emulator.set_chaos([{"path": "/kept", "status": 503}])
    evil = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    assert _raw(url + "/chaos", "PUT", b'{"rules": []}', evil)[0] == 403
    assert _raw(url + "/reset", "POST", b"", evil)[0] == 403
    assert _raw(url + "/identities", headers={"Host": "evil.example"})[0] == 403
    assert [rule["path"] for rule in acs_emulator.chaos()] == ["/kept"]
    # since= pages through the log.
    _raw(acs_emulator.endpoint + "/nope")
    _raw(acs_emulator.endpoint + "/nope2")
    first = acs_emulator.requests()[0]["id"]
    assert [e["path"] for e in acs_emulator.requests(since=first)] == ["/nope2"]


async def test_bound_beyond_loopback_the_control_plane_needs_a_signature() -> None:
    emu = Emulator()
    loop = asyncio.get_running_loop()
    service = await loop.run_in_executor(None, emu._open)
    server = TestServer(service.application(control_open=False), host="127.0.0.1")
    await server.start_server()
    try:
        endpoint = str(server.make_url("")).rstrip("/")
        status, raw = await loop.run_in_executor(None, _raw, endpoint + "/_emulator/health")
        assert status == 401
        assert json.loads(raw)["error"]["code"] == "Denied"
        assert (await loop.run_in_executor(None, _raw, endpoint + "/_emulator/ui/"))[0] == 401
        signed = ControlClient(EmulatorTarget(endpoint, emu.access_key))
        assert (await loop.run_in_executor(None, signed.health))["status"] == "ok"
        wrong = ControlClient(EmulatorTarget(endpoint, WRONG_KEY))
        with pytest.raises(RuntimeError, match="401"):
            await loop.run_in_executor(None, wrong.reset)
    finally:
        await server.close()
        await loop.run_in_executor(None, emu._close_store)


# -- chat ----------------------------------------------------------------------------------------------


def test_chat_threads_and_a_503_once_on_send_message(chat_emulator: ControlClient) -> None:
    chat_emulator.reset()
    identity = _identity(chat_emulator)
    alice, alice_token = identity.create_user_and_token(["chat"])
    bob = identity.create_user()
    with CommunicationTokenCredential(alice_token.token) as credential:
        chat = ChatClient(chat_emulator.endpoint, credential, connection_verify=chat_emulator.ca_bundle)
        thread = chat.create_chat_thread(
            "control plane", thread_participants=[ChatParticipant(identifier=bob, display_name="Bob")]
        ).chat_thread
        assert thread is not None
        thread_client = chat.get_chat_thread_client(thread.id, connection_verify=chat_emulator.ca_bundle)
        chat_emulator.set_chaos(
            [{"method": "POST", "path": "/chat/threads/*", "status": 503, "retryAfter": 0, "times": 1}]
        )
        since = chat_emulator.requests()[-1]["id"]
        thread_client.send_message("hello, Bob")
    log = chat_emulator.requests(since=since)
    assert [(e["method"], e["status"], e["injected"]) for e in log] == [("POST", 503, True), ("POST", 201, False)]
    assert log[0]["path"] == log[1]["path"] == f"/chat/threads/{thread.id}/messages"
    assert log[1]["auth"] == "bearer: ok"
    (shown,) = chat_emulator.chat_threads()
    assert (shown["id"], shown["topic"]) == (thread.id, "control plane")
    assert {p.get("rawId") for p in shown["participants"]} == {alice.properties["id"], bob.properties["id"]}
    assert [m["message"] for m in shown["messages"] if m["type"] == "text"] == ["hello, Bob"]
    # Reset deletes chat data and the users, so their tokens stop working.
    chat_emulator.reset()
    assert chat_emulator.chat_threads() == []
    with CommunicationTokenCredential(alice_token.token) as credential:
        chat = ChatClient(chat_emulator.endpoint, credential, connection_verify=chat_emulator.ca_bundle)
        with pytest.raises(HttpResponseError) as refused:
            chat.get_chat_thread_client(thread.id, connection_verify=chat_emulator.ca_bundle).get_properties()
        assert refused.value.status_code == 401


# -- the rules as data -----------------------------------------------------------------------------------


def test_rules_match_by_method_and_path_prefix() -> None:
    rule = ChaosRule("POST", "/identities*", 503)
    assert rule.matches("POST", "/identities")
    assert rule.matches("POST", "/identities/8:acs:x/:issueAccessToken")
    assert not rule.matches("GET", "/identities")
    assert not rule.matches("POST", "/chat/threads")
    exact = ChaosRule("*", "/identities", 503)
    assert exact.matches("DELETE", "/identities")
    assert not exact.matches("POST", "/identities/x")
    assert ChaosRule("*", "*", 503).matches("GET", "/anything")


def test_probability_follows_the_seeded_source_and_times_count_answers() -> None:
    seed, probability, requests = 99, 0.3, 300
    expected_source = random.Random(seed)
    expected = [expected_source.random() < probability for _ in range(requests)]
    engine = ChaosEngine(random.Random(seed), parse_rules({"rules": [{"status": 429, "probability": probability}]}))
    decisions = [engine.decide("GET", "/x") for _ in range(requests)]
    assert [d is not None and d.status == 429 for d in decisions] == expected
    assert all(d is not None for d in decisions)  # the rule matched every time, fired only sometimes

    limited = ChaosEngine(random.Random(0), (ChaosRule(status=503, times=2, retry_after=4),))
    answers = [limited.decide("POST", "/identities") for _ in range(4)]
    assert [a.status if a else None for a in answers] == [503, 503, None, None]
    assert answers[0] is not None
    assert (answers[0].retry_after, answers[0].code) == (4, "ServiceUnavailable")
    assert limited.to_json()["rules"][0]["times"] == 0
    limited.restore()
    assert limited.to_json()["rules"][0]["times"] == 2


def test_latencies_add_up_and_the_first_firing_rule_answers() -> None:
    rules = parse_rules(
        {
            "rules": [
                {"path": "/chat/*", "latency": 0.25, "times": 1},
                {"method": "GET", "path": "/chat/*", "status": 418, "latency": 0.5},
                {"path": "*", "status": 500},
            ]
        }
    )
    engine = ChaosEngine(random.Random(0), rules)
    first = engine.decide("GET", "/chat/threads")
    assert first is not None
    assert (first.latency, first.status, first.code) == (0.75, 418, "InjectedFault")
    second = engine.decide("GET", "/chat/threads")
    assert second is not None
    assert (second.latency, second.status) == (0.5, 418)
    other = engine.decide("POST", "/chat/threads")
    assert other is not None
    assert (other.latency, other.status) == (0.0, 500)
    assert (
        ChaosEngine(random.Random(0), parse_rules({"rules": [{"path": "/a", "latency": 1}]})).decide("GET", "/b")
        is None
    )


def test_shorthand_rules() -> None:
    assert shorthand_rules(0.0, 0.0, 1) == ()
    assert shorthand_rules(0.5, 0.0, 1) == (ChaosRule(latency=0.5),)
    assert shorthand_rules(0.0, 0.1, 7) == (ChaosRule(status=503, probability=0.1, retry_after=7),)


def test_parse_errors_are_api_errors_naming_the_field() -> None:
    with pytest.raises(ApiError) as caught:
        parse_rules({"rules": [{"status": 503}, {"status": 503, "latency": float("inf")}]})
    assert caught.value.status == 400
    assert "rules[1].latency" in caught.value.message


def test_the_request_log_and_the_token_log_are_bounded() -> None:
    log = RequestLog(limit=3)
    for index in range(5):
        log.add({"time": 1_800_000_000.0 + index, "path": f"/{index}"})
    assert [(e["id"], e["path"]) for e in log.entries()] == [(3, "/2"), (4, "/3"), (5, "/4")]
    assert log.entries()[0]["time"] == "2027-01-15T08:00:02.000Z"
    assert [e["id"] for e in log.entries(since=3, limit=1)] == [5]
    log.clear()
    log.add({"time": 0.0})
    assert [e["id"] for e in log.entries()] == [6]

    issuer = TokenIssuer(str(uuid.uuid4()))
    tokens = TokenLog(limit=2)
    issuer.on_issue = tokens.record
    for iat in (100, 200, 300, 300):  # the last one comes from the issuer's cache
        issuer.issue(skype_id="acs:x_y", scopes=["chat"], iat=iat, exp=iat + 60)
    assert [claims["iat"] for claims in tokens.claims()] == [300, 300]


def test_a_latency_only_rule_delays_and_then_handles_the_request(acs_emulator: ControlClient) -> None:
    acs_emulator.set_chaos([{"method": "POST", "path": "/identities", "latency": 0.001, "times": 1}])
    _identity(acs_emulator).create_user()
    (entry,) = acs_emulator.requests()
    assert (entry["status"], entry["injected"]) == (201, False)
    assert entry["duration"] >= 0.001
    assert acs_emulator.chaos()[0]["times"] == 0


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.test", False),
    ],
)
def test_which_bind_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_an_error_body_that_is_not_the_service_shape_has_no_explanation() -> None:
    assert _explanation(b'{"error": {"code": "Denied", "message": "m", "target": "t"}}') == {
        "code": "Denied",
        "message": "m",
    }
    for body in (b"not json", b"[1]", b'{"error": "text"}', b"\xff", None, b'{"error": {}}'):
        assert _explanation(body) is None
