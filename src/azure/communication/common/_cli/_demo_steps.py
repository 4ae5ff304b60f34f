"""The demo's scenarios: each takes a :class:`DemoContext` and returns the checks it made.

They emit progress events as they go (requests answered, refreshes as they happen) and never format text.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any, Final

from ._common import IDENTITY_API_VERSION, build_async_pipeline, build_pipeline, first_line
from ._demo_context import REAL_TOKEN_MINUTES, Check, DemoContext, DemoFailure, json_or_none
from ._output import format_duration, format_time, mask_connection_string

__all__ = [
    "CONCURRENCY_TOKEN_SECONDS",
    "WAIT_MARGIN_SECONDS",
    "calls_detail",
    "cleanup",
    "step_asyncio",
    "step_hmac",
    "step_identifiers",
    "step_revocation",
    "step_threads",
]

# Tokens for the concurrency checks live long enough that every caller finds the refreshed token fresh even
# on a loaded machine, so a second (stale-window) refresh cannot blur "one refresher call".
CONCURRENCY_TOKEN_SECONDS: Final = 60
# Slack on top of the refresh schedule before a wait is declared failed (scheduling jitter, slow CI): the
# waits end as soon as the awaited refresh happens, so the margin only bounds a failing run.
WAIT_MARGIN_SECONDS: Final = 10.0


def calls_detail(calls: int, problem: str) -> str:
    """The detail of a concurrency check: empty when it held, else what was seen."""
    if calls == 1 and not problem:
        return ""
    return ", ".join(part for part in (f"refresher calls: {calls}", problem) if part)


def _explain_refresh(context: DemoContext) -> None:
    seconds = context.options.token_seconds
    if context.emulated:
        context.paragraph(
            f"The proactive refresh below uses tokens that live {seconds} s (the emulator's short-token switch). "
            "With less left than the 10-minute proactive window, the credential refreshes half-way through "
            "the remaining lifetime (fractional back-off)."
        )
    else:
        context.paragraph(
            "Real tokens live at least an hour. For the proactive refresh below the refresher hands the "
            f"credential each issued token as an AccessToken with expires_on {seconds} s ahead (an assumed "
            "lifetime, shorter than the real one), so the refresh schedule runs in seconds."
        )


def _explain_concurrency(context: DemoContext, callers: str) -> None:
    context.paragraph(
        f"{callers} ask an expired credential at once. Its refresher issues a token that lives "
        f"{CONCURRENCY_TOKEN_SECONDS} s, long enough that every caller finds it fresh."
    )


# --------------------------------------------------------------------------------------------- step 1


def step_hmac(context: DemoContext) -> list[Check]:
    """Connection string parsed; a user created and a token issued through our HMAC policy."""
    from .._connection_string import parse_connection_string
    from .._identifiers import CommunicationIdentifierKind, identifier_from_raw_id
    from .._timestamps import parse_timestamp
    from .._tokens import decode_jwt_payload

    checks = context.checks()
    endpoint, key = context.endpoint, context.key_credential
    context.field("connection string", mask_connection_string(endpoint))
    context.field("endpoint", endpoint)
    context.field("access key", f"{type(key).__name__} (key hidden)")
    context.field("pipeline", "RetryPolicy -> CommunicationAccessKeyCredentialPolicy -> RequestsTransport")
    started = context.timer()
    # The parser's tolerance, shown on the real input: keys in any order and case, a trailing ';'.
    variant = parse_connection_string(f"AccessKey={key.key}; ENDPOINT={endpoint};")
    checks.add(
        "connection string parsed (any key order and case)",
        variant.endpoint == endpoint and variant.credential.key == key.key,
        started,
    )
    started = context.timer()
    path = f"/identities?api-version={IDENTITY_API_VERSION}"
    status, document = context.call(
        "POST", path, {"createTokenWithScopes": ["chat"], "expiresInMinutes": REAL_TOKEN_MINUTES}
    )
    context.note(f"POST {path} -> HTTP {status}")
    identity = document.get("identity") if isinstance(document, dict) else None
    user_id = identity.get("id") if isinstance(identity, dict) else None
    if not isinstance(user_id, str) or status != 201:
        checks.add("user created through the HMAC policy", False, started, f"HTTP {status}")
        raise DemoFailure(f"creating a user returned HTTP {status}")
    checks.add("user created through the HMAC policy", True, started, f"HTTP {status}")
    context.user_id = user_id
    context.field("user", user_id)
    started = context.timer()
    kind = identifier_from_raw_id(user_id).kind
    checks.add(
        "the user id parses as a communication user",
        kind is CommunicationIdentifierKind.COMMUNICATION_USER,
        started,
        kind.value,
    )
    started = context.timer()
    access = document.get("accessToken") or {}
    token, expires_text = access.get("token"), access.get("expiresOn")
    ok = False
    detail = "no token in the response"
    if isinstance(token, str) and isinstance(expires_text, str):
        claims = decode_jwt_payload(token)
        expires_on = parse_timestamp(expires_text)
        skype_id = str(claims.get("skypeid", ""))
        exp = claims.get("exp")
        ok = (
            user_id.endswith(skype_id)
            and skype_id != ""
            and isinstance(exp, (int, float))
            and abs(exp - expires_on) < 2
        )
        context.field("token", f"JWT, {len(token)} characters (not shown: it is a secret)")
        left = format_duration(expires_on - context.clock())
        context.field("expires on", f"{format_time(expires_on)} (in {left})")
        detail = "JWT for this user, exp matches expiresOn" if ok else "claims do not match the response"
    checks.add("token issued with the user", ok, started, detail)
    started = context.timer()
    wrong = _wrong_key_status(context)
    context.note(f"the same request signed with another key -> HTTP {wrong}")
    checks.add("a request signed with a wrong key is rejected", wrong == 401, started, f"HTTP {wrong}")
    return checks


def _wrong_key_status(context: DemoContext) -> int:
    from azure.core.credentials import AzureKeyCredential

    other = AzureKeyCredential(base64.b64encode(b"not the resource's key, 32 bytes").decode("ascii"))
    with build_pipeline(other) as pipeline:
        request = context.request("POST", f"/identities?api-version={IDENTITY_API_VERSION}", {})
        return int(pipeline.run(request).http_response.status_code)


# --------------------------------------------------------------------------------------------- step 2


def step_threads(context: DemoContext) -> list[Check]:
    """The credential with proactive refresh in threads; then many callers, one refresher call."""
    from .._credential import CommunicationTokenCredential

    checks = context.checks()
    options = context.options
    _explain_refresh(context)
    lock = threading.Lock()
    done = threading.Event()
    refreshed: list[tuple[str, float, float]] = []  # thread name, previous token's remaining, new expiry
    current = {"expires_on": 0.0}
    refreshed_tokens: set[str] = set()

    def refresher() -> Any:
        previous_left = current["expires_on"] - context.clock()
        token, expires_on = context.issue_token()
        name = threading.current_thread().name
        with lock:
            refreshed.append((name, previous_left, expires_on))
            number = len(refreshed)
            current["expires_on"] = expires_on
            refreshed_tokens.add(token if isinstance(token, str) else token.token)
        context.note(
            f"refresh #{number} on thread {name!r}: previous token had {format_duration(previous_left)} left; "
            f"new one expires in {format_duration(expires_on - context.clock())}",
            refresh=True,
        )
        if number >= options.refreshes:
            done.set()
        return token

    started = context.timer()
    initial, initial_expiry = context.issue_token()
    current["expires_on"] = initial_expiry
    context.note(
        f"initial token expires in {format_duration(initial_expiry - context.clock())}; "
        f"proactive_refresh=True; waiting for {options.refreshes} background refreshes"
    )
    credential = CommunicationTokenCredential(initial, token_refresher=refresher, proactive_refresh=True)
    try:
        done.wait(options.refreshes * options.token_seconds + WAIT_MARGIN_SECONDS)
        with lock:
            snapshot = list(refreshed)
        checks.add(
            f"{options.refreshes} background refreshes, no caller asking",
            len(snapshot) >= options.refreshes,
            started,
            f"{len(snapshot)} in {format_duration(context.timer() - started)}",
        )
        main = threading.current_thread().name
        started = context.timer()
        checks.add(
            "refreshes ran off the main thread, each before the old token expired",
            bool(snapshot) and all(name != main and left > 0 for name, left, _ in snapshot),
            started,
            ", ".join(f"{left:.1f} s left" for _, left, _ in snapshot),
        )
        started = context.timer()

        def from_refresher(token: str) -> bool:
            with lock:
                return token in refreshed_tokens

        got = _installed(context, credential, from_refresher)
        left = got.expires_on - context.clock()
        context.note(f"get_token() -> token expiring in {format_duration(left)} (from cache)")
        checks.add(
            "get_token() returns a token from the refresher, unexpired", left > 0 and from_refresher(got.token), started
        )
    finally:
        credential.close()
    started = context.timer()
    try:
        credential.get_token()
        closed_ok = False
    except RuntimeError:
        closed_ok = True
    checks.add("a closed credential refuses get_token() with RuntimeError", closed_ok, started)
    expired_text = initial if isinstance(initial, str) else initial.token
    checks.extend(_many_threads(context, expired_text))
    return checks


def _installed(context: DemoContext, credential: Any, wanted: Callable[[str], bool]) -> Any:
    """``credential.get_token()`` once the credential hands out a token that ``wanted`` accepts.

    The refresher reports a refresh when it is called, but the credential installs the token it returns a
    moment later, on the worker thread; until then ``get_token()`` rightly returns the still-valid old one.
    So this watches the credential's state until the refreshed token is in place (it takes microseconds,
    unless the worker thread is descheduled on a loaded machine), bounded so that a bug cannot hang the demo.
    """
    deadline = context.timer() + WAIT_MARGIN_SECONDS
    pause = threading.Event()  # never set: a short pause between looks at the credential's state
    got = credential.get_token()
    while not wanted(got.token) and context.timer() < deadline:
        pause.wait(0.001)
        got = credential.get_token()
    return got


def _many_threads(context: DemoContext, expired_text: str) -> list[Check]:
    """Many threads on an expired token: they all wait for one refresher call."""
    from azure.core.credentials import AccessToken

    from .._credential import CommunicationTokenCredential

    checks = context.checks()
    threads = context.options.threads
    _explain_concurrency(context, f"{threads} threads")
    lock = threading.Lock()
    calls = {"n": 0}

    def counting_refresher() -> Any:
        with lock:
            calls["n"] += 1
        return context.issue_token(CONCURRENCY_TOKEN_SECONDS)[0]

    expired = AccessToken(expired_text, int(context.clock()) - 1)
    credential = CommunicationTokenCredential(expired, token_refresher=counting_refresher)
    barrier = threading.Barrier(threads)
    results: list[tuple[str, int] | None] = [None] * threads
    errors: list[str] = []

    def caller(index: int) -> None:
        try:
            barrier.wait()
            got = credential.get_token()
            results[index] = (got.token, got.expires_on)
        except Exception as exc:  # reported as a failed check, not a traceback
            errors.append(type(exc).__name__)

    started = context.timer()
    workers = [threading.Thread(target=caller, args=(i,), name=f"caller-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(context.options.token_seconds + WAIT_MARGIN_SECONDS)
    credential.close()
    distinct = {r for r in results if r is not None}
    now = context.clock()
    context.note(
        f"{threads} threads called get_token() at once on an expired token: "
        f"refresher calls: {calls['n']}; distinct tokens returned: {len(distinct)}"
    )
    checks.add(
        f"{threads} concurrent callers on an expired token -> 1 refresher call",
        calls["n"] == 1
        and not errors
        and None not in results
        and len(distinct) == 1
        and all(expires_on > now for _, expires_on in distinct),
        started,
        calls_detail(calls["n"], f"errors: {', '.join(sorted(set(errors)))}" if errors else ""),
    )
    return checks


# --------------------------------------------------------------------------------------------- step 3


def step_asyncio(context: DemoContext) -> list[Check]:
    """The same with asyncio: one refresher call for many tasks, and a background refresh."""
    return asyncio.run(_step_asyncio(context))


def _task_name() -> str:
    task = asyncio.current_task()
    return repr(task.get_name()) if task is not None else "(none)"


async def _step_asyncio(context: DemoContext) -> list[Check]:
    from azure.core.credentials import AccessToken

    from ..aio import CommunicationTokenCredential as AsyncCommunicationTokenCredential

    checks = context.checks()
    options = context.options
    async with build_async_pipeline(context.key_credential) as pipeline:

        async def issue(seconds: int) -> tuple[Any, float]:
            request = context.request("POST", context.issue_path(), context.token_body(seconds))
            response = (await pipeline.run(request)).http_response
            return context.token_from(response.status_code, json_or_none(response.body()), seconds)

        _explain_concurrency(context, f"{options.tasks} tasks")
        calls = {"n": 0}

        async def counting_refresher() -> Any:
            calls["n"] += 1
            token, expires_on = await issue(CONCURRENCY_TOKEN_SECONDS)
            context.note(
                f"refresher call in task {_task_name()}: "
                f"new token expires in {format_duration(expires_on - context.clock())}"
            )
            return token

        started = context.timer()
        credential = AsyncCommunicationTokenCredential(
            AccessToken("an.expired.token", int(context.clock()) - 1), token_refresher=counting_refresher
        )
        try:
            results = await asyncio.gather(
                *(credential.get_token() for _ in range(options.tasks)), return_exceptions=True
            )
        finally:
            await credential.close()
        tokens = {(r.token, r.expires_on) for r in results if isinstance(r, AccessToken)}
        failures = sum(1 for r in results if not isinstance(r, AccessToken))
        now = context.clock()
        context.note(
            f"{options.tasks} tasks awaited get_token() on an expired token: "
            f"refresher calls: {calls['n']}; distinct tokens returned: {len(tokens)}"
        )
        checks.add(
            f"{options.tasks} concurrent tasks on an expired token -> 1 refresher call",
            calls["n"] == 1
            and failures == 0
            and len(tokens) == 1
            and all(expires_on > now for _, expires_on in tokens),
            started,
            calls_detail(calls["n"], f"{failures} failed" if failures else ""),
        )

        # Proactive refresh on the event loop: a short-lived token is replaced in the background.
        _explain_refresh(context)
        done = asyncio.Event()

        async def background_refresher() -> Any:
            token, expires_on = await issue(options.token_seconds)
            context.note(
                f"background refresh in task {_task_name()}: "
                f"new token expires in {format_duration(expires_on - context.clock())}",
                refresh=True,
            )
            done.set()
            return token

        started = context.timer()
        initial, initial_expiry = await issue(options.token_seconds)
        credential = AsyncCommunicationTokenCredential(
            initial, token_refresher=background_refresher, proactive_refresh=True
        )
        context.note(
            f"initial token expires in {format_duration(initial_expiry - context.clock())}; "
            "waiting for the background refresh on the event loop ..."
        )
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), options.token_seconds + WAIT_MARGIN_SECONDS)
        finally:
            await credential.close()
        checks.add(
            "a background refresh on the event loop (proactive_refresh=True)",
            done.is_set(),
            started,
            f"after {format_duration(context.timer() - started)}",
        )
    return checks


# --------------------------------------------------------------------------------------------- step 4

_TEAMS_ID: Final = "45ab2481-1c1c-4005-be24-0ffb879b1130"
_RESOURCE_ID: Final = "1b5cc06b-f352-4571-b1e6-d9b259b7c776"
_TENANT_ID: Final = "2a5b0c3d-9e4f-4a1b-8c2d-3e4f5a6b7c8d"
_SAMPLE_USER: Final = f"8:acs:{_RESOURCE_ID}_00000005-6d8c-4ee5-aaeb-b33a0d00b3c4"


def step_identifiers(context: DemoContext) -> list[Check]:
    """Identifiers of each kind: parsed, serialized to the wire model and back, equal."""
    from .._identifiers import (
        CommunicationUserIdentifier,
        MicrosoftTeamsAppIdentifier,
        MicrosoftTeamsUserIdentifier,
        PhoneNumberIdentifier,
        TeamsExtensionUserIdentifier,
        UnknownIdentifier,
        identifier_from_raw_id,
    )
    from .._wire import deserialize_identifier, serialize_identifier

    checks = context.checks()
    user, teams = context.user_id or _SAMPLE_USER, _TEAMS_ID
    examples: list[tuple[str, Any]] = [
        (user, CommunicationUserIdentifier(user)),
        ("4:+14255550123", PhoneNumberIdentifier("+14255550123")),
        (f"8:orgid:{teams}", MicrosoftTeamsUserIdentifier(teams)),
        (f"8:teamsvisitor:{teams}", MicrosoftTeamsUserIdentifier(teams, is_anonymous=True)),
        (f"28:orgid:{teams}", MicrosoftTeamsAppIdentifier(teams)),
        (
            f"8:acs:{_RESOURCE_ID}_{_TENANT_ID}_{teams}",
            TeamsExtensionUserIdentifier(user_id=teams, tenant_id=_TENANT_ID, resource_id=_RESOURCE_ID),
        ),
        ("48:echo123", UnknownIdentifier("48:echo123")),
    ]
    started = context.timer()
    rows: list[tuple[str, str, str, bool]] = []
    failed: list[int] = []
    for index, (raw_id, built) in enumerate(examples):
        parsed = identifier_from_raw_id(raw_id)
        wire = json.loads(json.dumps(serialize_identifier(parsed)))
        back = deserialize_identifier(wire)
        ok = (
            parsed == built
            and hash(parsed) == hash(built)
            and back == parsed
            and back.raw_id == raw_id
            and back.kind == built.kind
        )
        if not ok:
            failed.append(index)
        shown = raw_id if len(raw_id) <= 44 else raw_id[:41] + "..."
        rows.append((shown, parsed.kind.value, str(wire.get("kind")), ok))
    context.table(("raw id", "kind", "wire kind", "round trip"), rows, failed)
    kinds = {built.kind for _, built in examples}
    checks.add(
        f"{len(examples)} raw ids ({len(kinds)} kinds) parsed, serialized, deserialized, equal",
        not failed,
        started,
        f"{len(examples) - len(failed)}/{len(examples)}",
    )
    started = context.timer()
    sample = serialize_identifier(identifier_from_raw_id(f"8:teamsvisitor:{teams}"))
    context.text("wire model of the anonymous Teams user:")
    for line in json.dumps(sample, indent=2).splitlines():
        context.text("  " + line)
    try:
        deserialize_identifier({"rawId": "x", "kind": "communicationUser", "communicationUser": {}})
        message = ""
    except ValueError as exc:
        message = str(exc)
    checks.add(
        "an incomplete wire model is rejected with the JS error text",
        message == "Property id is required for identifier of type communicationUser.",
        started,
    )
    return checks


# ------------------------------------------------------------------------------------------ revocation


def step_revocation(context: DemoContext) -> list[Check]:
    """Revocation and deletion; a deleted user gets no token, and a refresher's error reaches the caller."""
    from azure.core.credentials import AccessToken
    from azure.core.exceptions import HttpResponseError

    from .._credential import CommunicationTokenCredential

    checks = context.checks()
    user = context.user_id
    started = context.timer()
    status, _ = context.call("POST", f"/identities/{user}/:revokeAccessTokens?api-version={IDENTITY_API_VERSION}")
    context.note(f"POST /identities/{{id}}/:revokeAccessTokens -> HTTP {status}")
    checks.add("tokens revoked", status == 204, started, f"HTTP {status}")
    started = context.timer()
    status, _ = context.call("DELETE", f"/identities/{user}?api-version={IDENTITY_API_VERSION}")
    context.deleted = status == 204
    context.note(f"DELETE /identities/{{id}} -> HTTP {status}")
    checks.add("user deleted", status == 204, started, f"HTTP {status}")
    started = context.timer()
    status, document = context.call("POST", context.issue_path(), {"scopes": ["chat"]})
    code = document.get("error", {}).get("code") if isinstance(document, dict) else None
    context.note(f"POST /identities/{{id}}/:issueAccessToken -> HTTP {status}" + (f" ({code})" if code else ""))
    checks.add("issuing a token for the deleted user -> 404", status == 404, started, f"HTTP {status}")

    def refresher() -> str:
        status, document = context.call("POST", context.issue_path(), {"scopes": ["chat"]})
        if status != 200:
            raise HttpResponseError(message=f"issue token: HTTP {status}")
        return str(document["token"])

    started = context.timer()
    credential = CommunicationTokenCredential(
        AccessToken("expired.token.value", int(context.clock()) - 1), token_refresher=refresher
    )
    try:
        credential.get_token()
        error = "no error"
    except HttpResponseError as exc:
        error = first_line(str(exc))
    finally:
        credential.close()
    context.note(f"credential whose refresher targets the deleted user: {error}")
    checks.add("the refresher's error reaches the caller unchanged", "404" in error, started)
    return checks


def cleanup(context: DemoContext) -> None:
    """Delete the demo's user if a failure stopped the flow before the revocation step did."""
    if context.user_id is None or context.deleted:
        return
    with contextlib.suppress(Exception):
        context.call("DELETE", f"/identities/{context.user_id}?api-version={IDENTITY_API_VERSION}")
        context.text(f"(cleanup: deleted the demo user {context.user_id})")
