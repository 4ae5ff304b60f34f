"""``acs-common demo``: the whole product working, end to end, in a few seconds.

With no connection string the demo starts the emulator in-process (loopback, in-memory, short tokens
allowed). With one it runs the same flow against that resource; real tokens live at least an hour, so the
refresh steps hand the credential each issued token with a short *assumed* lifetime instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from ._common import (
    IDENTITY_API_VERSION,
    SECRETS_HELP,
    CLIError,
    HelpFormatter,
    add_connection_string_argument,
    build_async_pipeline,
    build_pipeline,
    first_line,
    join_url,
    resolve_connection_string,
)
from ._output import Output, format_clock, format_duration, format_time, mask_connection_string

__all__ = ["Demo", "add_parser", "run"]

DEFAULT_TOKEN_SECONDS: Final = 8
DEFAULT_REFRESHES: Final = 2
DEFAULT_THREADS: Final = 32
DEFAULT_TASKS: Final = 1000
# Real tokens: the shortest lifetime the service allows; the demo deletes its user at the end anyway.
REAL_TOKEN_MINUTES: Final = 60
# Tokens for the concurrency checks live long enough that every caller finds the refreshed token
# fresh even on a loaded machine, so a second (stale-window) refresh cannot blur "one refresher call".
CONCURRENCY_TOKEN_SECONDS: Final = 60
# Slack on top of the refresh schedule before a wait is declared failed (scheduling jitter, slow CI).
WAIT_MARGIN_SECONDS: Final = 10.0

EPILOG: Final = (
    """\
examples:
  acs-common demo                         # starts the emulator in-process; about 15 seconds
  acs-common demo --token-seconds 4 --refreshes 3
  acs-common demo -c - < connection-string.txt     # the same flow against a real resource

Steps: 1 connection string and HMAC-signed requests (create a user, issue a token);
2 the token credential with proactive refresh (background refreshes as they happen; many threads,
one refresher call); 3 the same with asyncio; 4 identifiers and the wire model; 5 revocation and
deletion; then a summary table.
Against a real resource the demo creates one user and deletes it at the end (even after a failure).
Exit status: 0 when every check held, 1 otherwise, 2 for usage errors.

"""
    + SECRETS_HELP
)


@dataclass
class Check:
    """One verified statement of the demo, for the summary table."""

    step: int
    name: str
    ok: bool
    seconds: float
    detail: str = ""


class DemoFailure(Exception):
    """A step could not go on (its reason is recorded as a failed check)."""


class Demo:
    """The demo's state: output, endpoint, pipeline, user and the checks made so far.

    Args:
        out: where to narrate.
        endpoint_credential: the parsed connection string.
        emulated: whether the endpoint is the in-process emulator (short tokens can be requested).
        token_seconds: lifetime of the short tokens used by the refresh steps.
        refreshes: how many background refreshes step 2 waits for.
        threads: concurrent callers in step 2.
        tasks: concurrent asyncio tasks in step 3.
    """

    def __init__(
        self,
        out: Output,
        endpoint_credential: Any,
        *,
        emulated: bool,
        token_seconds: int = DEFAULT_TOKEN_SECONDS,
        refreshes: int = DEFAULT_REFRESHES,
        threads: int = DEFAULT_THREADS,
        tasks: int = DEFAULT_TASKS,
    ) -> None:
        self.out = out
        self.endpoint = endpoint_credential.endpoint
        self.key_credential = endpoint_credential.credential
        self.emulated = emulated
        self.token_seconds = token_seconds
        self.refreshes = refreshes
        self.threads = threads
        self.tasks = tasks
        self.checks: list[Check] = []
        self.started = time.monotonic()
        self.step = 0
        self.user_id: str | None = None
        self.deleted = False
        self.pipeline = build_pipeline(self.key_credential)

    # ----------------------------------------------------------------------------------- narration

    def stamp(self) -> str:
        """Wall-clock time and time since the demo started, for narrated events."""
        return self.out.style(f"{format_clock(time.time())} +{time.monotonic() - self.started:5.2f}s", "dim")

    def check(self, name: str, ok: bool, started: float, detail: str = "") -> bool:
        """Record and print one check; ``started`` is the ``perf_counter`` value when it began."""
        seconds = time.perf_counter() - started
        self.checks.append(Check(self.step, name, ok, seconds, detail))
        self.out.check(ok, name + (f" ({detail})" if detail else ""))
        return ok

    def heading(self, step: int, title: str) -> None:
        """Start a numbered step."""
        self.step = step
        self.out.heading(f"Step {step} · {title}" if self.out.unicode else f"Step {step} - {title}")

    # ---------------------------------------------------------------------------------------- HTTP

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        from azure.core.pipeline.transport import HttpRequest

        request = HttpRequest(method, join_url(self.endpoint, path), headers={"Accept": "application/json"})
        if body is not None:
            request.headers["Content-Type"] = "application/json"
            request.set_bytes_body(json.dumps(body).encode("utf-8"))
        return request

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one signed request through the sync pipeline; return status and parsed JSON (or None)."""
        response = self.pipeline.run(self._request(method, path, body)).http_response
        return response.status_code, _json_or_none(response.body())

    def token_body(self, seconds: int) -> dict[str, Any]:
        """The body of an issue-token request for a token living ``seconds`` (emulated) or an hour."""
        if self.emulated:
            # The emulator's documented short-token switch (it was started with allow_short_tokens=True).
            return {"scopes": ["chat"], "expiresInSeconds": seconds}
        return {"scopes": ["chat"], "expiresInMinutes": REAL_TOKEN_MINUTES}

    def issue_path(self) -> str:
        """The issue-token path of the demo's user."""
        return f"/identities/{self.user_id}/:issueAccessToken?api-version={IDENTITY_API_VERSION}"

    def token_from(self, status: int, document: Any, seconds: int) -> tuple[Any, float]:
        """Turn an issue-token response into what the refresher returns, and its expiry.

        Emulated: the bare JWT string (the credential reads its ``exp``). Real resource: an ``AccessToken``
        whose ``expires_on`` is ``seconds`` ahead, an assumed lifetime shorter than the real one.
        """
        from azure.core.credentials import AccessToken

        from .._timestamps import parse_timestamp

        if status != 200 or not isinstance(document, dict) or not isinstance(document.get("token"), str):
            raise DemoFailure(f"issue token returned HTTP {status}")
        if self.emulated:
            return document["token"], parse_timestamp(document["expiresOn"])
        expires_on = int(time.time() + seconds)
        return AccessToken(document["token"], expires_on), float(expires_on)

    def issue_token(self, seconds: int | None = None) -> tuple[Any, float]:
        """Issue a token for the demo's user that lives (or is assumed to live) ``seconds``."""
        lifetime = self.token_seconds if seconds is None else seconds
        return self.token_from(*self.call("POST", self.issue_path(), self.token_body(lifetime)), lifetime)

    def _mark(self) -> str:
        return "↻ " if self.out.unicode else ""

    # --------------------------------------------------------------------------------------- steps

    def step1(self) -> None:
        """Connection string parsed; a user created and a token issued through our HMAC policy."""
        from .._connection_string import parse_connection_string
        from .._identifiers import CommunicationIdentifierKind, identifier_from_raw_id
        from .._timestamps import parse_timestamp
        from .._tokens import decode_jwt_payload

        self.heading(1, "Connection string and HMAC-signed requests")
        out = self.out
        out.field("connection string", mask_connection_string(self.endpoint))
        out.field("endpoint", self.endpoint)
        out.field("access key", f"{type(self.key_credential).__name__} (key hidden)")
        out.field("pipeline", "RetryPolicy -> CommunicationAccessKeyCredentialPolicy -> RequestsTransport")
        started = time.perf_counter()
        # The parser's tolerance, shown on the real input: keys in any order and case, a trailing ';'.
        variant = parse_connection_string(f"AccessKey={self.key_credential.key}; ENDPOINT={self.endpoint};")
        self.check(
            "connection string parsed (any key order and case)",
            variant.endpoint == self.endpoint and variant.credential.key == self.key_credential.key,
            started,
        )
        started = time.perf_counter()
        path = f"/identities?api-version={IDENTITY_API_VERSION}"
        status, document = self.call(
            "POST", path, {"createTokenWithScopes": ["chat"], "expiresInMinutes": REAL_TOKEN_MINUTES}
        )
        out.line(f"  {self.stamp()} POST {path} -> HTTP {status}")
        identity = document.get("identity") if isinstance(document, dict) else None
        user_id = identity.get("id") if isinstance(identity, dict) else None
        if not self.check(
            "user created through the HMAC policy",
            status == 201 and isinstance(user_id, str),
            started,
            f"HTTP {status}",
        ):
            raise DemoFailure(f"creating a user returned HTTP {status}")
        assert isinstance(user_id, str)
        self.user_id = user_id
        out.field("user", user_id)
        started = time.perf_counter()
        kind = identifier_from_raw_id(user_id).kind
        self.check(
            "the user id parses as a communication user",
            kind is CommunicationIdentifierKind.COMMUNICATION_USER,
            started,
            kind.value,
        )
        started = time.perf_counter()
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
            out.field("token", f"JWT, {len(token)} characters (not shown: it is a secret)")
            left = format_duration(expires_on - time.time())
            out.field("expires on", f"{format_time(expires_on)} (in {left})")
            detail = "JWT for this user, exp matches expiresOn" if ok else "claims do not match the response"
        self.check("token issued with the user", ok, started, detail)
        started = time.perf_counter()
        wrong = self._wrong_key_status()
        out.line(f"  {self.stamp()} the same request signed with another key -> HTTP {wrong}")
        self.check("a request signed with a wrong key is rejected", wrong == 401, started, f"HTTP {wrong}")

    def _wrong_key_status(self) -> int:
        import base64

        from azure.core.credentials import AzureKeyCredential

        other = AzureKeyCredential(base64.b64encode(b"not the resource's key, 32 bytes").decode("ascii"))
        with build_pipeline(other) as pipeline:
            request = self._request("POST", f"/identities?api-version={IDENTITY_API_VERSION}", {})
            return int(pipeline.run(request).http_response.status_code)

    def step2(self) -> None:
        """The credential with proactive refresh in threads; many callers, one refresher call."""
        from azure.core.credentials import AccessToken

        from .._credential import CommunicationTokenCredential

        self.heading(2, "CommunicationTokenCredential: proactive refresh (threads)")
        out = self.out
        self._explain_lifetimes()
        lock = threading.Lock()
        done = threading.Event()
        refreshed: list[tuple[str, float, float]] = []  # thread name, previous token's remaining, new expiry
        current = {"expires_on": 0.0}
        refreshed_tokens: set[str] = set()

        def refresher() -> Any:
            called = time.time()
            previous_left = current["expires_on"] - called
            token, expires_on = self.issue_token()
            with lock:
                refreshed.append((threading.current_thread().name, previous_left, expires_on))
                number = len(refreshed)
                current["expires_on"] = expires_on
                refreshed_tokens.add(token if isinstance(token, str) else token.token)
            out.line(
                f"  {self.stamp()} {self._mark()}refresh #{number} on thread {threading.current_thread().name!r}: "
                f"previous token had {format_duration(previous_left)} left; "
                f"new one expires in {format_duration(expires_on - time.time())}"
            )
            if number >= self.refreshes:
                done.set()
            return token

        started = time.perf_counter()
        initial, initial_expiry = self.issue_token()
        current["expires_on"] = initial_expiry
        out.line(
            f"  {self.stamp()} initial token expires in {format_duration(initial_expiry - time.time())}; "
            f"proactive_refresh=True; waiting for {self.refreshes} background refreshes"
        )
        credential = CommunicationTokenCredential(initial, token_refresher=refresher, proactive_refresh=True)
        try:
            timeout = self.refreshes * self.token_seconds + WAIT_MARGIN_SECONDS
            done.wait(timeout)
            with lock:
                snapshot = list(refreshed)
            self.check(
                f"{self.refreshes} background refreshes, no caller asking",
                len(snapshot) >= self.refreshes,
                started,
                f"{len(snapshot)} in {format_duration(time.perf_counter() - started)}",
            )
            main = threading.current_thread().name
            started = time.perf_counter()
            self.check(
                "refreshes ran off the main thread, each before the old token expired",
                bool(snapshot) and all(name != main and left > 0 for name, left, _ in snapshot),
                started,
                ", ".join(f"{left:.1f} s left" for _, left, _ in snapshot),
            )
            started = time.perf_counter()
            got = credential.get_token()
            left = got.expires_on - time.time()
            out.line(f"  {self.stamp()} get_token() -> token expiring in {format_duration(left)} (from cache)")
            with lock:
                from_refresher = got.token in refreshed_tokens
            self.check(
                "get_token() returns a token from the refresher, unexpired", left > 0 and from_refresher, started
            )
        finally:
            credential.close()
        started = time.perf_counter()
        try:
            credential.get_token()
            closed_ok = False
        except RuntimeError:
            closed_ok = True
        self.check("a closed credential refuses get_token() with RuntimeError", closed_ok, started)

        # Many threads on an expired token: they all wait for one refresher call.
        calls = {"n": 0}

        def counting_refresher() -> Any:
            with lock:
                calls["n"] += 1
            return self.issue_token(CONCURRENCY_TOKEN_SECONDS)[0]

        expired_text = initial if isinstance(initial, str) else initial.token
        expired = AccessToken(expired_text, int(time.time()) - 1)
        credential = CommunicationTokenCredential(expired, token_refresher=counting_refresher)
        barrier = threading.Barrier(self.threads)
        results: list[tuple[str, int] | None] = [None] * self.threads
        errors: list[str] = []

        def caller(index: int) -> None:
            try:
                barrier.wait()
                got = credential.get_token()
                results[index] = (got.token, got.expires_on)
            except Exception as exc:  # reported as a failed check, not a traceback
                errors.append(type(exc).__name__)

        started = time.perf_counter()
        workers = [threading.Thread(target=caller, args=(i,), name=f"caller-{i}") for i in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(self.token_seconds + WAIT_MARGIN_SECONDS)
        credential.close()
        distinct = {r for r in results if r is not None}
        now = time.time()
        out.line(
            f"  {self.stamp()} {self.threads} threads called get_token() at once on an expired token: "
            f"refresher calls: {calls['n']}; distinct tokens returned: {len(distinct)}"
        )
        self.check(
            f"{self.threads} concurrent callers on an expired token -> 1 refresher call",
            calls["n"] == 1
            and not errors
            and None not in results
            and len(distinct) == 1
            and all(expires_on > now for _, expires_on in distinct),
            started,
            _calls_detail(calls["n"], f"errors: {', '.join(sorted(set(errors)))}" if errors else ""),
        )

    def _explain_lifetimes(self) -> None:
        if self.emulated:
            self.out.paragraph(
                f"Tokens in this step live {self.token_seconds} s (the emulator's short-token switch). "
                "With less left than the 10-minute proactive window, the credential refreshes half-way "
                "through the remaining lifetime (fractional back-off)."
            )
        else:
            self.out.paragraph(
                "Real tokens live at least an hour. For this step the refresher hands the credential each "
                f"issued token as an AccessToken with expires_on {self.token_seconds} s ahead (an assumed "
                "lifetime, shorter than the real one), so the refresh schedule runs in seconds."
            )

    def step3(self) -> None:
        """The same with asyncio: one refresher call for many tasks, and a background refresh."""
        self.heading(3, "The same with asyncio (AsyncPipeline + AioHttpTransport)")
        self._explain_lifetimes()
        asyncio.run(self._step3())

    async def _step3(self) -> None:
        from azure.core.credentials import AccessToken

        from ..aio import CommunicationTokenCredential as AsyncCommunicationTokenCredential

        out = self.out
        async with build_async_pipeline(self.key_credential) as pipeline:

            async def issue(seconds: int) -> tuple[Any, float]:
                request = self._request("POST", self.issue_path(), self.token_body(seconds))
                response = (await pipeline.run(request)).http_response
                return self.token_from(response.status_code, _json_or_none(response.body()), seconds)

            # Many tasks on an expired token: one refresher call, every task gets its result.
            calls = {"n": 0}

            async def counting_refresher() -> Any:
                calls["n"] += 1
                token, expires_on = await issue(CONCURRENCY_TOKEN_SECONDS)
                out.line(
                    f"  {self.stamp()} refresher call in task {_task_name()}: "
                    f"new token expires in {format_duration(expires_on - time.time())}"
                )
                return token

            started = time.perf_counter()
            credential = AsyncCommunicationTokenCredential(
                AccessToken("an.expired.token", int(time.time()) - 1), token_refresher=counting_refresher
            )
            try:
                results = await asyncio.gather(
                    *(credential.get_token() for _ in range(self.tasks)), return_exceptions=True
                )
            finally:
                await credential.close()
            tokens = {(r.token, r.expires_on) for r in results if isinstance(r, AccessToken)}
            failures = sum(1 for r in results if not isinstance(r, AccessToken))
            now = time.time()
            out.line(
                f"  {self.stamp()} {self.tasks} tasks awaited get_token() on an expired token: "
                f"refresher calls: {calls['n']}; distinct tokens returned: {len(tokens)}"
            )
            self.check(
                f"{self.tasks} concurrent tasks on an expired token -> 1 refresher call",
                calls["n"] == 1
                and failures == 0
                and len(tokens) == 1
                and all(expires_on > now for _, expires_on in tokens),
                started,
                _calls_detail(calls["n"], f"{failures} failed" if failures else ""),
            )

            # Proactive refresh on the event loop: a short-lived token is replaced in the background.
            done = asyncio.Event()

            async def background_refresher() -> Any:
                token, expires_on = await issue(self.token_seconds)
                out.line(
                    f"  {self.stamp()} {self._mark()}background refresh in task {_task_name()}: "
                    f"new token expires in {format_duration(expires_on - time.time())}"
                )
                done.set()
                return token

            started = time.perf_counter()
            initial, initial_expiry = await issue(self.token_seconds)
            credential = AsyncCommunicationTokenCredential(
                initial, token_refresher=background_refresher, proactive_refresh=True
            )
            out.line(
                f"  {self.stamp()} initial token expires in {format_duration(initial_expiry - time.time())}; "
                "waiting for the background refresh on the event loop ..."
            )
            try:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(done.wait(), self.token_seconds + WAIT_MARGIN_SECONDS)
            finally:
                await credential.close()
            self.check(
                "a background refresh on the event loop (proactive_refresh=True)",
                done.is_set(),
                started,
                f"after {format_duration(time.perf_counter() - started)}",
            )

    def step4(self) -> None:
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

        self.heading(4, "Communication identifiers and the wire model")
        user = self.user_id or "8:acs:1b5cc06b-f352-4571-b1e6-d9b259b7c776_00000005-6d8c-4ee5-aaeb-b33a0d00b3c4"
        teams = "45ab2481-1c1c-4005-be24-0ffb879b1130"
        resource, tenant = "1b5cc06b-f352-4571-b1e6-d9b259b7c776", "2a5b0c3d-9e4f-4a1b-8c2d-3e4f5a6b7c8d"
        examples: list[tuple[str, Any]] = [
            (user, CommunicationUserIdentifier(user)),
            ("4:+14255550123", PhoneNumberIdentifier("+14255550123")),
            (f"8:orgid:{teams}", MicrosoftTeamsUserIdentifier(teams)),
            (f"8:teamsvisitor:{teams}", MicrosoftTeamsUserIdentifier(teams, is_anonymous=True)),
            (f"28:orgid:{teams}", MicrosoftTeamsAppIdentifier(teams)),
            (
                f"8:acs:{resource}_{tenant}_{teams}",
                TeamsExtensionUserIdentifier(user_id=teams, tenant_id=tenant, resource_id=resource),
            ),
            ("48:echo123", UnknownIdentifier("48:echo123")),
        ]
        started = time.perf_counter()
        rows: list[list[str]] = []
        styles: dict[int, list[str]] = {}
        failures = 0
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
            failures += not ok
            shown = raw_id if len(raw_id) <= 44 else raw_id[:41] + "..."
            rows.append([shown, parsed.kind.value, str(wire.get("kind")), self.out.tick if ok else self.out.cross])
            if not ok:
                styles[index] = ["red"]
        self.out.table(["raw id", "kind", "wire kind", "round trip"], rows, styles)
        kinds = {built.kind for _, built in examples}
        self.check(
            f"{len(examples)} raw ids ({len(kinds)} kinds) parsed, serialized, deserialized, equal",
            failures == 0,
            started,
            f"{len(examples) - failures}/{len(examples)}",
        )
        started = time.perf_counter()
        sample = serialize_identifier(identifier_from_raw_id(f"8:teamsvisitor:{teams}"))
        self.out.line("  wire model of the anonymous Teams user:")
        for line in json.dumps(sample, indent=2).splitlines():
            self.out.line("    " + line)
        try:
            deserialize_identifier({"rawId": "x", "kind": "communicationUser", "communicationUser": {}})
            message = ""
        except ValueError as exc:
            message = str(exc)
        self.check(
            "an incomplete wire model is rejected with the JS error text",
            message == "Property id is required for identifier of type communicationUser.",
            started,
        )

    def step5(self) -> None:
        """Revocation and deletion; a deleted user gets no token."""
        from azure.core.credentials import AccessToken
        from azure.core.exceptions import HttpResponseError

        from .._credential import CommunicationTokenCredential

        self.heading(5, "Revocation and deletion")
        user = self.user_id
        started = time.perf_counter()
        status, _ = self.call("POST", f"/identities/{user}/:revokeAccessTokens?api-version={IDENTITY_API_VERSION}")
        self.out.line(f"  {self.stamp()} POST /identities/{{id}}/:revokeAccessTokens -> HTTP {status}")
        self.check("tokens revoked", status == 204, started, f"HTTP {status}")
        started = time.perf_counter()
        status, _ = self.call("DELETE", f"/identities/{user}?api-version={IDENTITY_API_VERSION}")
        self.deleted = status == 204
        self.out.line(f"  {self.stamp()} DELETE /identities/{{id}} -> HTTP {status}")
        self.check("user deleted", status == 204, started, f"HTTP {status}")
        started = time.perf_counter()
        status, document = self.call("POST", self.issue_path(), {"scopes": ["chat"]})
        code = document.get("error", {}).get("code") if isinstance(document, dict) else None
        self.out.line(
            f"  {self.stamp()} POST /identities/{{id}}/:issueAccessToken -> HTTP {status}"
            + (f" ({code})" if code else "")
        )
        self.check("issuing a token for the deleted user -> 404", status == 404, started, f"HTTP {status}")

        def refresher() -> str:
            status, document = self.call("POST", self.issue_path(), {"scopes": ["chat"]})
            if status != 200:
                raise HttpResponseError(message=f"issue token: HTTP {status}")
            return str(document["token"])

        started = time.perf_counter()
        credential = CommunicationTokenCredential(
            AccessToken("expired.token.value", int(time.time()) - 1), token_refresher=refresher
        )
        try:
            credential.get_token()
            error = "no error"
        except HttpResponseError as exc:
            error = first_line(str(exc))
        finally:
            credential.close()
        self.out.line(f"  {self.stamp()} credential whose refresher targets the deleted user: {error}")
        self.check("the refresher's error reaches the caller unchanged", "404" in error, started)

    def cleanup(self) -> None:
        """Delete the demo's user if a failure stopped the flow before step 5 did."""
        if self.user_id is None or self.deleted:
            return
        with contextlib.suppress(Exception):
            self.call("DELETE", f"/identities/{self.user_id}?api-version={IDENTITY_API_VERSION}")
            self.out.line(f"  (cleanup: deleted the demo user {self.user_id})")

    def run_steps(self) -> None:
        """Run the five steps; a failing step is recorded and the independent steps still run."""
        steps: list[tuple[Callable[[], None], bool]] = [
            (self.step1, True),
            (self.step2, False),
            (self.step3, False),
            (self.step4, False),
            (self.step5, False),
        ]
        for number, (step, essential) in enumerate(steps, start=1):
            if number in (2, 3, 5) and self.user_id is None:
                continue
            started = time.perf_counter()
            try:
                step()
            except Exception as exc:  # a failed step is a failed check, never a traceback
                self.step = number
                self.check(f"step {number} completed", False, started, _describe(exc))
                if essential:
                    return

    def summary(self) -> bool:
        """Print the summary table; return whether every check held."""
        out = self.out
        out.heading("Summary")
        rows = [
            [str(c.step), c.name, out.tick if c.ok else out.cross, _format_check_time(c.seconds)] for c in self.checks
        ]
        styles = {i: ["red"] for i, c in enumerate(self.checks) if not c.ok}
        out.table(["step", "check", "ok", "time"], rows, styles)
        failed = [c for c in self.checks if not c.ok]
        total = time.monotonic() - self.started
        out.line()
        if failed:
            out.line(out.style(f"{len(failed)} of {len(self.checks)} checks failed in {total:.1f} s.", "red", "bold"))
        else:
            out.line(out.style(f"All {len(self.checks)} checks passed in {total:.1f} s.", "green", "bold"))
        return not failed and bool(self.checks)


def _calls_detail(calls: int, problem: str) -> str:
    """The detail of a concurrency check: empty when it held, else what was seen."""
    if calls == 1 and not problem:
        return ""
    return ", ".join(part for part in (f"refresher calls: {calls}", problem) if part)


def _format_check_time(seconds: float) -> str:
    text = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
    return text.rjust(9)


def _task_name() -> str:
    task = asyncio.current_task()
    return repr(task.get_name()) if task is not None else "(none)"


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    text = first_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def _library_debug_log() -> Iterator[None]:
    """Show the library's debug log on stderr for the duration of the demo, then undo it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("    [%(levelname)s %(name)s] %(message)s"))
    logger = logging.getLogger("azure.communication.common")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextlib.contextmanager
def _emulator(out: Output) -> Iterator[Any]:
    try:
        from acs_emulator import Emulator
    except ImportError as exc:
        raise CLIError(
            f"the demo needs the acs-emulator distribution ({exc.name or 'a dependency'} is missing): "
            "pip install 'azure-communication-common[emulator]'"
        ) from None
    emulator = Emulator(allow_short_tokens=True)
    emulator.start()
    try:
        out.line(
            f"Started the ACS Identity emulator in-process at {emulator.endpoint} "
            "(in-memory store, short tokens allowed)."
        )
        yield emulator
    finally:
        emulator.stop()


def run(args: argparse.Namespace, out: Output) -> int:
    """Run ``demo``."""
    endpoint_credential = resolve_connection_string(args.connection_string, required=False)
    out.line(out.style("azure-communication-common for Python: end-to-end demo", "bold"))
    with contextlib.ExitStack() as stack:
        if args.verbose:
            stack.enter_context(_library_debug_log())
        if endpoint_credential is None:
            from .._connection_string import parse_connection_string

            emulator = stack.enter_context(_emulator(out))
            endpoint_credential = parse_connection_string(emulator.connection_string)
            emulated = True
        else:
            out.line(
                "Running against the resource at "
                f"{endpoint_credential.endpoint} (from the connection string; key hidden)."
            )
            emulated = False
        demo = Demo(
            out,
            endpoint_credential,
            emulated=emulated,
            token_seconds=args.token_seconds,
            refreshes=args.refreshes,
            threads=args.threads,
            tasks=args.tasks,
        )
        with demo.pipeline:
            try:
                demo.run_steps()
            finally:
                demo.cleanup()
        ok = demo.summary()
    if not ok:
        failed = [c for c in demo.checks if not c.ok]
        reason = "no checks ran"
        if failed:
            first = failed[0]
            reason = f"first: step {first.step}: {first.name}" + (f" ({first.detail})" if first.detail else "")
        raise CLIError(f"demo failed: {len(failed)} of {len(demo.checks)} checks failed; {reason}")
    return 0


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low} to {high}, got {value}")
        return value

    return convert


def add_parser(subparsers: Any) -> None:
    """Register ``demo``."""
    demo = subparsers.add_parser(
        "demo",
        help="the end-to-end walkthrough (emulator in-process, or a real resource)",
        description="Walk through the library end to end: HMAC-signed requests, the token credential with "
        "proactive refresh (threads and asyncio), identifiers, revocation and deletion.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_connection_string_argument(demo)
    demo.add_argument(
        "--token-seconds",
        type=_bounded_int(4, 300),
        default=DEFAULT_TOKEN_SECONDS,
        metavar="S",
        help=f"lifetime of the short tokens in the refresh steps (default {DEFAULT_TOKEN_SECONDS})",
    )
    demo.add_argument(
        "--refreshes",
        type=_bounded_int(1, 20),
        default=DEFAULT_REFRESHES,
        metavar="N",
        help=f"background refreshes to wait for in step 2 (default {DEFAULT_REFRESHES})",
    )
    demo.add_argument(
        "--threads",
        type=_bounded_int(2, 256),
        default=DEFAULT_THREADS,
        metavar="N",
        help=f"concurrent threads in step 2 (default {DEFAULT_THREADS})",
    )
    demo.add_argument(
        "--tasks",
        type=_bounded_int(2, 100_000),
        default=DEFAULT_TASKS,
        metavar="N",
        help=f"concurrent asyncio tasks in step 3 (default {DEFAULT_TASKS})",
    )
    demo.add_argument("--verbose", "-v", action="store_true", help="show the library's debug log on stderr")
    demo.set_defaults(handler=run)
