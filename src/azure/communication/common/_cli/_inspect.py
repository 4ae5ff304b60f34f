"""``acs-common token inspect``: decode a user access token without verifying it."""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from typing import Any, Final

from .._jwt import read_jwt
from ._common import HelpFormatter, UsageError, read_stdin
from ._output import Output, format_duration, format_time

__all__ = ["TokenReport", "add_parser", "inspect_token", "run"]

# A token with less than the credential's proactive window left (``_refresh.PROACTIVE_WINDOW``, written out
# so that this offline command loads no azure-core; a test pins the two together) would already be
# refreshed by a credential created with proactive_refresh=True.
EXPIRES_SOON_SECONDS: Final = 600.0

VALID: Final = "valid"
EXPIRES_SOON: Final = "expires soon"
EXPIRED: Final = "expired"
NOT_A_JWT: Final = "not a JWT"
NO_EXPIRY: Final = "no expiry"

# The JavaScript troubleshooting guide's advice for the most common mistake.
WHOLE_RESPONSE_HINT: Final = (
    "This looks like the whole identity response. Make sure you pass only the `token` field of the "
    "response, the bare JWT string (for the Python identity client: `result[1].token` of the "
    "(user, AccessToken) tuple, or `.token` of an AccessToken)."
)
BEARER_HINT: Final = "Pass the bare JWT string, without the 'Bearer ' prefix."
JWT_SHAPE_HINT: Final = "A user access token is a JWT: three base64url parts separated by dots (eyJ...)."

_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")

EPILOG: Final = """\
examples:
  acs-common token inspect "$TOKEN"        # TOKEN: the bare JWT (eyJ...), the response's 'token' field
  pbpaste | acs-common token inspect -     # from the clipboard (macOS)
  acs-common token inspect --json "$TOKEN" | jq .remaining_seconds

The signature is not verified: this shows what the token says, not whether it is genuine.
Verdicts: valid, expires soon (under 10 minutes left), expired, not a JWT, no expiry.
Exit status: 0 for valid and expires soon, 1 for the others, 2 for usage errors.
Pass '-' (or nothing) to read the token from stdin, so it stays out of your shell history.
"""


class TokenReport:
    """What ``token inspect`` found; ``now`` is the instant the verdict refers to.

    A plain class rather than a dataclass: ``dataclasses`` (and the ``inspect`` module it loads) would add
    about 10 ms to the start-up of an offline command that takes well under 100 ms (``make bench`` case 9).
    """

    __slots__ = (
        "claims",
        "expires_on",
        "header",
        "hint",
        "identity",
        "identity_kind",
        "issued_at",
        "now",
        "reason",
        "scopes",
        "verdict",
    )

    def __init__(
        self,
        verdict: str,
        now: float,
        reason: str = "",
        hint: str | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> None:
        self.verdict = verdict
        self.now = now
        self.reason = reason
        self.hint = hint
        self.header = header
        self.claims = claims
        self.identity: str | None = None
        self.identity_kind: str | None = None
        self.scopes: list[str] = []
        self.issued_at: float | None = None
        self.expires_on: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the verdict is one a caller can use the token with."""
        return self.verdict in (VALID, EXPIRES_SOON)

    @property
    def remaining(self) -> float | None:
        """Seconds left before expiry at ``now`` (negative once expired)."""
        return None if self.expires_on is None else self.expires_on - self.now

    @property
    def lifetime(self) -> float | None:
        """The token's whole lifetime (``exp - iat``), when both are known and positive."""
        if self.expires_on is None or self.issued_at is None or self.expires_on <= self.issued_at:
            return None
        return self.expires_on - self.issued_at

    def to_json(self) -> dict[str, Any]:
        """Return the machine-readable form (``--json``); the token itself is never included."""
        return {
            "verdict": self.verdict,
            "ok": self.ok,
            "reason": self.reason,
            "hint": self.hint,
            "header": self.header,
            "claims": self.claims,
            "identity": (None if self.identity is None else {"raw_id": self.identity, "kind": self.identity_kind}),
            "scopes": self.scopes,
            "issued_at": self.issued_at,
            "expires_on": self.expires_on,
            "remaining_seconds": self.remaining,
            "lifetime_seconds": self.lifetime,
            "now": self.now,
        }


def _number(value: object) -> float | None:
    """A claim that is a finite number (``iat``, ``nbf``), else None; ``exp`` is read by ``_tokens``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        return None
    return number if math.isfinite(number) else None


def _time(timestamp: float) -> str:
    """A claim's time for display; a finite number can still be beyond what the platform's time_t holds."""
    try:
        return format_time(timestamp)
    except (OverflowError, ValueError, OSError):
        return "(out of the representable date range)"


def _misuse_hint(text: str) -> str | None:
    """Recognise the usual wrong pastes: the whole response JSON, a tuple repr, a Bearer header."""
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested deep enough to exhaust the parser
            document = None
        if isinstance(document, dict) and ("token" in document or "accessToken" in document or "identity" in document):
            return WHOLE_RESPONSE_HINT
    if text.startswith("(") or "AccessToken(" in text or "AccessTokenInfo(" in text:
        return WHOLE_RESPONSE_HINT
    if text.lower().startswith("bearer "):
        return BEARER_HINT
    return None


def _identity(claims: dict[str, Any]) -> tuple[str | None, str | None]:
    from .._identifiers import identifier_from_raw_id

    skype_id = claims.get("skypeid")
    if not isinstance(skype_id, str) or not skype_id:
        return None, None
    # Real ACS tokens carry the raw id without its "8:" prefix ("acs:<resource>_<user>").
    raw_id = skype_id if skype_id.startswith(("8:", "4:", "28:")) else "8:" + skype_id
    return raw_id, identifier_from_raw_id(raw_id).kind.value


def _scopes(claims: dict[str, Any]) -> list[str]:
    # acsScope is the readable list ("chat,voip"); scp is a bit mask in real tokens, a string in others.
    for name in ("acsScope", "scp"):
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return [s for s in re.split(r"[,\s]+", value.strip()) if s]
        if isinstance(value, list) and all(isinstance(s, str) for s in value):
            return list(value)
    return []


def inspect_token(text: str, now: float) -> TokenReport:
    """Decode ``text`` as a user access token and judge it at ``now`` (seconds since the epoch).

    Never raises for a string: anything that is not a JWT gets the ``not a JWT`` verdict and, for the usual
    wrong pastes, a hint.
    """
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    hint = _misuse_hint(text)
    if hint is not None:
        reason = "the input is not a bare token"
        found = _JWT_LIKE.search(text)
        if found is not None and hint is WHOLE_RESPONSE_HINT:
            reason += " (a JWT is inside it)"
        return TokenReport(NOT_A_JWT, now, reason=reason, hint=hint)
    try:
        # The credential's own reader: the expiry is exactly the one the credential would use.
        header, claims, expires_on = read_jwt(text)
    except (ValueError, TypeError, RecursionError) as exc:  # the decoders' messages never quote the token
        return TokenReport(NOT_A_JWT, now, reason=str(exc), hint=JWT_SHAPE_HINT)
    report = TokenReport(VALID, now, header=header, claims=claims)
    report.identity, report.identity_kind = _identity(claims)
    report.scopes = _scopes(claims)
    report.issued_at = _number(claims.get("iat"))
    report.expires_on = expires_on
    remaining = report.remaining
    if remaining is None:
        report.verdict = NO_EXPIRY
        report.reason = "the token has no finite numeric 'exp' claim (the credential treats it as opaque)"
    elif remaining <= 0:
        report.verdict = EXPIRED
        report.reason = f"expired {format_duration(-remaining)} ago"
    elif remaining <= EXPIRES_SOON_SECONDS:
        report.verdict = EXPIRES_SOON
        report.reason = f"expires in {format_duration(remaining)}"
    else:
        report.reason = f"expires in {format_duration(remaining)}"
    return report


def _render_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def render(report: TokenReport, out: Output) -> None:
    """Write the human-readable report."""
    colour = {VALID: "green", EXPIRES_SOON: "yellow"}.get(report.verdict, "red")
    mark = out.tick if report.ok else out.cross
    out.heading("User access token (decoded, signature not verified)")
    out.field("verdict", out.style(f"{mark} {report.verdict}", colour, "bold") + f"  ({report.reason})")
    if report.hint:
        out.field("hint", report.hint)
    if report.claims is None:
        return
    if report.identity is not None:
        out.field("identity", f"{report.identity}  ({report.identity_kind})")
    out.field("scopes", ", ".join(report.scopes) if report.scopes else "(none)")
    if report.issued_at is not None:
        out.field("issued", _time(report.issued_at))
    if report.expires_on is not None:
        out.field("expires", _time(report.expires_on))
    remaining, lifetime = report.remaining, report.lifetime
    if remaining is not None:
        text = format_duration(remaining) if remaining > 0 else "0 s (expired)"
        if lifetime is not None:
            text = f"{out.bar(remaining / lifetime)} {text} of {format_duration(lifetime)}"
        out.field("remaining", text)
    if report.header:
        out.heading("Header")
        for key, value in report.header.items():
            out.field(key, _render_value(value))
    out.heading("Claims")
    for key, value in report.claims.items():
        shown = _render_value(value)
        number = _number(value) if key in ("iat", "exp", "nbf") else None
        if number is not None:
            shown += f"  ({_time(number)})"
        out.field(key, shown)


def add_parser(subparsers: Any) -> None:
    """Register ``token`` with its ``inspect`` subcommand."""
    token = subparsers.add_parser(
        "token",
        help="work with user access tokens",
        description="Work with ACS user access tokens.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    actions = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    inspect = actions.add_parser(
        "inspect",
        help="decode a token: identity, scopes, expiry and a verdict",
        description="Decode a user access token without verifying it: header, claims, identity, scopes, "
        "issue and expiry times, remaining lifetime and a plain-language verdict.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    inspect.add_argument("value", nargs="?", default="-", metavar="TOKEN", help="the JWT, or '-' for stdin")
    inspect.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    inspect.set_defaults(handler=run)


def run(args: argparse.Namespace, out: Output) -> int:
    """Run ``token inspect``."""
    from_stdin = args.value == "-"
    text = read_stdin() if from_stdin else args.value
    if not text.strip():
        raise UsageError("no token given (pass it as an argument or on stdin)")
    report = inspect_token(text, time.time())
    if args.json:
        out.json(report.to_json())
    else:
        render(report, out)
    return 0 if report.ok else 1
