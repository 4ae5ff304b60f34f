"""User access tokens on the Chat service: ``Authorization: Bearer <token>`` verified like the service does.

A token is accepted when it is an RS256 JWT signed by this emulator's key, is not past its ``exp`` (plus a
small clock-skew allowance, see :data:`CLOCK_SKEW`), and carries a chat scope. Whether its identity still
exists and was not revoked after the token was issued is a database question, answered by
:func:`identity_verdict` inside the same database call as the operation itself (one round trip per request).

Verifying a token (PyJWT and one RSA-2048 public-key operation) costs a tenth of a millisecond of CPU or
more, as much as the rest of a chat request; a cache hit costs a few microseconds. Verified tokens are
therefore cached (bounded, keyed by the whole token). The cache only remembers that the *signature* and
the claims' shape are good; ``exp`` and revocation are checked again on every request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ._errors import ApiError

__all__ = [
    "CHAT_SCOPES",
    "CLOCK_SKEW",
    "Caller",
    "CallerRefused",
    "UserTokenVerifier",
    "identity_verdict",
]

#: The scopes that open the Chat service: ``chat`` (everything), ``chat.join`` (no creating or deleting
#: threads) and ``chat.join.limited`` (``chat.join`` without adding or removing participants).
CHAT_SCOPES: Final = frozenset({"chat", "chat.join", "chat.join.limited"})

#: Seconds a token is still accepted after its ``exp``. Real token validators allow for clock skew
#: (Microsoft's default is five minutes); the emulator allows a few seconds, enough that a request a
#: client sent with a token in its last moment (azure-core's bearer policy keeps a token until
#: ``expires_on``) is not refused because it spent some milliseconds in flight or in a busy server's
#: queue, and short enough that tests of expiry with short tokens stay quick.
CLOCK_SKEW: Final = 5.0

#: Verified tokens remembered (each entry is a few hundred bytes; 32 clients refreshing every few
#: seconds for an hour stay far below it).
_CACHE_LIMIT: Final = 8192

_UNAUTHORIZED: Final = "Request is not authorized."


class CallerRefused(ApiError):
    """A 401 for a token that is not (or no longer) acceptable, with the verdict for the request log.

    Attributes:
        verdict: the short verdict (``"bearer: expired"``, ...) the request log records.
    """

    def __init__(self, verdict: str, message: str = _UNAUTHORIZED) -> None:
        super().__init__(401, "Unauthorized", message)
        self.verdict: str = verdict


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a verified token says is calling.

    Attributes:
        raw_id: the identity's raw id (``8:acs:...``).
        iat: the token's issue time (whole seconds).
        exp: the token's expiry (whole seconds).
        scopes: the token's chat scopes.
    """

    raw_id: str
    iat: int
    exp: int
    scopes: frozenset[str]

    def __repr__(self) -> str:
        return f"Caller({self.raw_id!r}, scopes={sorted(self.scopes)})"

    @property
    def can_manage_threads(self) -> bool:
        """Whether the token may create and delete threads (the full ``chat`` scope)."""
        return "chat" in self.scopes

    @property
    def can_manage_participants(self) -> bool:
        """Whether the token may add and remove participants (``chat`` or ``chat.join``)."""
        return "chat" in self.scopes or "chat.join" in self.scopes


def _whole_seconds(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _caller_from_claims(claims: Mapping[str, Any]) -> Caller:
    skype_id = claims.get("skypeid")
    iat = _whole_seconds(claims.get("iat"))
    exp = _whole_seconds(claims.get("exp"))
    acs_scope = claims.get("acsScope")
    if not isinstance(skype_id, str) or not skype_id.startswith("acs:") or iat is None or exp is None:
        raise CallerRefused("bearer: not a user token")
    scopes = frozenset(acs_scope.split(",")) & CHAT_SCOPES if isinstance(acs_scope, str) else frozenset()
    if not scopes:
        raise CallerRefused("bearer: no chat scope", "The access token does not grant the chat scope.")
    return Caller(raw_id=f"8:{skype_id}", iat=iat, exp=exp, scopes=scopes)


class UserTokenVerifier:
    """Turns an ``Authorization`` header into a :class:`Caller`, or a 401.

    Args:
        verify_signature: returns a token's claims when this emulator signed it, else raises ValueError
            (``TokenIssuer.verify``).
        clock: the POSIX clock ``exp`` is compared with.
        skew: seconds a token is still accepted after its ``exp``.
    """

    def __init__(
        self,
        verify_signature: Callable[[str], dict[str, Any]],
        clock: Callable[[], float],
        *,
        skew: float = CLOCK_SKEW,
    ) -> None:
        self._verify_signature = verify_signature
        self._clock = clock
        self._skew = skew
        self._cache: dict[str, Caller] = {}
        #: Signature checks done (cache misses); the benchmark and the tests read it.
        self.signature_checks = 0

    def caller(self, authorization: str | None) -> Caller:
        """Return the caller of a request, given its ``Authorization`` header.

        Raises:
            CallerRefused: no bearer token, a token this emulator did not sign, without a chat scope, or
                expired (beyond the skew allowance).
        """
        if not authorization:
            raise CallerRefused("bearer: missing", "The Authorization header with a Bearer token is required.")
        scheme, _, token = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "hmac-sha256":
            raise CallerRefused(
                "hmac: not accepted on chat",
                "Chat requests are authenticated with a user access token (Bearer), not an access key.",
            )
        token = token.strip()
        if scheme != "bearer" or not token:
            raise CallerRefused("bearer: malformed", "The Authorization header must be 'Bearer <access token>'.")
        caller = self._cache.get(token)
        if caller is None:
            caller = self._verify(token)
        if self._clock() > caller.exp + self._skew:
            raise CallerRefused("bearer: expired", "The access token has expired.")
        return caller

    def _verify(self, token: str) -> Caller:
        self.signature_checks += 1
        try:
            claims = self._verify_signature(token)
        except ValueError:
            raise CallerRefused("bearer: bad signature", "The access token was not issued by this resource.") from None
        caller = _caller_from_claims(claims)
        if len(self._cache) >= _CACHE_LIMIT:
            # Dicts keep insertion order: dropping the oldest eighth keeps the cache bounded without
            # paying for LRU bookkeeping on every hit.
            for stale in list(self._cache)[: _CACHE_LIMIT // 8]:
                del self._cache[stale]
        self._cache[token] = caller
        return caller


def identity_verdict(caller: Caller, row: tuple[float | None, float | None] | None) -> str | None:
    """Decide whether a verified token's identity may still call: None when it may, else the verdict.

    Args:
        caller: the verified caller.
        row: the identity's ``(last_token_issued_at, revoked_at)``, or None when it does not exist.

    Tokens carry whole-second ``iat``s. A token from before the revocation's second is revoked; one from
    that same second is accepted only when a token was issued after the revocation (the refresher that
    follows a revoke must not get a token that fails for up to a second). Identical requests within a
    second get identical tokens, so two tokens of that second cannot be told apart anyway.
    """
    if row is None:
        return "bearer: identity deleted"
    last_issued, revoked_at = row
    if revoked_at is None or caller.iat > revoked_at:
        return None
    if caller.iat == int(revoked_at) and last_issued is not None and last_issued > revoked_at:
        return None
    return "bearer: revoked"
