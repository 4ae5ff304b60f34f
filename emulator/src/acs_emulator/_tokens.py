"""RS256 access tokens shaped like the service's, and the JWKS document that validates them.

Each :class:`TokenIssuer` owns one 2048-bit RSA key generated when it is built (once per emulator), so
tokens from one emulator run validate against that run's JWKS only. The key object is kept loaded:
signing never re-parses a PEM, which keeps an issue request near one RSA operation (about 1 ms).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["ACS_SCP", "TEAMS_SCP", "TokenIssuer"]

#: The ``scp`` claim of real Communication user tokens (an opaque bit set the service uses).
ACS_SCP: Final = 1792
#: The ``scp`` claim of tokens obtained by exchanging a Teams user's Entra token.
TEAMS_SCP: Final = 1024
#: The ``resourceLocation`` claim; the emulator pretends to live in the United States data location.
RESOURCE_LOCATION: Final = "unitedstates"

# Identical inputs give identical RS256 signatures (PKCS#1 v1.5 is deterministic), so a request that
# repeats another's (same user, scopes, iat second and expiry) reuses its token instead of signing again.
# The cache is bounded by entries and by the bytes of the tokens and keys it holds (a token is about 900
# bytes; the bound holds even if a request path ever lets bigger claims through).
_CACHE_LIMIT: Final = 4096
_CACHE_BYTES: Final = 8 * 1024 * 1024


_PKCS1V15: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_signers_lock = threading.Lock()
_signer_pool: ThreadPoolExecutor | None = None


def _signers() -> ThreadPoolExecutor:
    """The process's two token-signing threads (shared by every emulator; made at the first signature)."""
    global _signer_pool
    with _signers_lock:
        if _signer_pool is None:
            _signer_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="acs-emulator-sign")
        return _signer_pool


class TokenIssuer:
    """Mints RS256 JWTs for one emulated resource and publishes the matching JWKS.

    Args:
        resource_id: the GUID written into ``resourceId`` claims.
        key: the RSA private key (generated, 2048 bits, when omitted).
    """

    def __init__(self, resource_id: str, *, key: rsa.RSAPrivateKey | None = None) -> None:
        self.resource_id = resource_id
        self._key = key if key is not None else rsa.generate_private_key(65537, 2048)
        self._public_key = self._key.public_key()
        public_jwk: dict[str, Any] = dict(RSAAlgorithm.to_jwk(self._public_key, as_dict=True))
        # RFC 7638 thumbprint: a stable kid derived from the key itself.
        canonical = json.dumps({"e": public_jwk["e"], "kty": "RSA", "n": public_jwk["n"]}, separators=(",", ":"))
        self.kid: str = _b64url(hashlib.sha256(canonical.encode("ascii")).digest())
        # RFC 7517 advises against "key_ops" next to "use"; JWKS consumers look for "use": "sig".
        public_jwk.pop("key_ops", None)
        public_jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        self._jwks: dict[str, Any] = {"keys": [public_jwk]}
        self.jwks_bytes: bytes = json.dumps(self._jwks).encode("utf-8")
        # The JWS header is the same for every token (PyJWT's: sorted keys, compact separators).
        header = json.dumps({"alg": "RS256", "kid": self.kid, "typ": "JWT"}, separators=(",", ":"), sort_keys=True)
        self._header_segment = _b64url(header.encode("utf-8")) + "."
        self._cache: dict[tuple[str, str, int, int, int], str] = {}
        self._cache_bytes = 0
        #: Called with every token issued (the control plane remembers the newest ones' claims).
        self.on_issue: Callable[[str], None] | None = None

    def issue(self, *, skype_id: str, scopes: Sequence[str], iat: int, exp: int, scp: int = ACS_SCP) -> str:
        """Return a signed token.

        Args:
            skype_id: the ``skypeid`` claim: the user's raw id without its ``8:`` prefix.
            scopes: the scopes, joined with ``,`` into the ``acsScope`` claim.
            iat: issue time (whole POSIX seconds); also the ``csi`` claim, as a string.
            exp: expiry time (whole POSIX seconds).
            scp: the ``scp`` claim.
        """
        key, payload = self._request(skype_id, scopes, iat, exp, scp)
        token = self._cached(key)
        if token is None:
            signing_input = self._signing_input(payload)
            token = self._store(key, self._finish(signing_input, self._rsa_sign(signing_input)))
        return token

    async def issue_async(self, *, skype_id: str, scopes: Sequence[str], iat: int, exp: int, scp: int = ACS_SCP) -> str:
        """:meth:`issue` for the event loop: the RSA signature is computed on a signing thread.

        OpenSSL releases the GIL while it signs, so two signing threads use the second core that the event
        loop alone leaves idle (one RSA-2048 signature costs about a millisecond of CPU here).
        """
        key, payload = self._request(skype_id, scopes, iat, exp, scp)
        token = self._cached(key)
        if token is None:
            # Only the RSA operation goes to the thread: it runs without the GIL, so the thread never
            # competes with the event loop for it (the JSON and base64 work stays on the loop).
            signing_input = self._signing_input(payload)
            signature = await asyncio.get_running_loop().run_in_executor(_signers(), self._rsa_sign, signing_input)
            token = self._store(key, self._finish(signing_input, signature))
        return token

    def _request(
        self, skype_id: str, scopes: Sequence[str], iat: int, exp: int, scp: int
    ) -> tuple[tuple[str, str, int, int, int], dict[str, Any]]:
        acs_scope = ",".join(scopes)
        payload = {
            "skypeid": skype_id,
            "scp": scp,
            "csi": str(iat),
            "exp": exp,
            "acsScope": acs_scope,
            "resourceId": self.resource_id,
            "resourceLocation": RESOURCE_LOCATION,
            "iat": iat,
        }
        return (skype_id, acs_scope, iat, exp, scp), payload

    def _cached(self, key: tuple[str, str, int, int, int]) -> str | None:
        token = self._cache.get(key)
        if token is not None and self.on_issue is not None:
            self.on_issue(token)
        return token

    def _signing_input(self, payload: dict[str, Any]) -> bytes:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return (self._header_segment + _b64url(body)).encode("ascii")

    def _rsa_sign(self, signing_input: bytes) -> bytes:
        return self._key.sign(signing_input, _PKCS1V15, _SHA256)

    @staticmethod
    def _finish(signing_input: bytes, signature: bytes) -> str:
        return signing_input.decode("ascii") + "." + _b64url(signature)

    def _store(self, key: tuple[str, str, int, int, int], token: str) -> str:
        # On the event loop's thread (or the caller's, for issue()): the cache needs no lock.
        size = len(token) + len(key[0]) + len(key[1])
        if len(self._cache) >= _CACHE_LIMIT or self._cache_bytes + size > _CACHE_BYTES:
            self._cache.clear()
            self._cache_bytes = 0
        self._cache[key] = token
        self._cache_bytes += size
        if self.on_issue is not None:
            self.on_issue(token)
        return token

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a token this issuer signed (expiry not checked).

        Raises:
            ValueError: the token was not signed by this issuer or is not a JWT.
        """
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError:
            raise ValueError("The token was not issued by this emulator.") from None
        return claims
