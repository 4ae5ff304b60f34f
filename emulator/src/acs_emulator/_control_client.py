"""A small client of the control plane (standard library only), and what the pytest plugin hands to tests.

Every request is HMAC-signed with the access key, so the same client works with an emulator bound to
loopback (which does not ask for a signature) and with one bound elsewhere (which does).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["ControlClient", "EmulatorTarget", "parse_connection_string"]

#: A control-plane call is local and small; anything slower than this is a hung emulator.
DEFAULT_TIMEOUT: Final = 10.0
_SIGNED_HEADERS: Final = "x-ms-date;host;x-ms-content-sha256"


@dataclass(frozen=True)
class EmulatorTarget:
    """Where a running emulator is, and how to talk to it.

    Attributes:
        endpoint: ``http(s)://HOST:PORT`` without a trailing slash.
        access_key: the base64 access key (never in the repr).
        ca_bundle: the PEM file of the CA that signed an HTTPS emulator's certificate, or None.
    """

    endpoint: str
    access_key: str = field(repr=False)
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("The emulator URL must be http(s)://HOST:PORT.")
        try:
            key = base64.b64decode(self.access_key.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"The emulator access key is not valid base64 (length {len(self.access_key)}).") from None
        if not key:
            raise ValueError("The emulator access key must not be empty.")
        object.__setattr__(self, "endpoint", self.endpoint.rstrip("/"))


def parse_connection_string(text: str, ca_bundle: str | None = None) -> EmulatorTarget:
    """Read ``endpoint=...;accesskey=...`` (the value is never quoted in errors).

    Raises:
        ValueError: a field is missing or malformed.
    """
    fields: dict[str, str] = {}
    for part in text.strip().split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    if "endpoint" not in fields or "accesskey" not in fields:
        raise ValueError("The emulator connection string needs endpoint=...;accesskey=...")
    return EmulatorTarget(fields["endpoint"], fields["accesskey"], ca_bundle)


class ControlClient:
    """Calls ``/_emulator/`` of one running emulator.

    Args:
        target: the emulator's endpoint, key and CA bundle.
        emulator: the in-process :class:`Emulator`, when this process runs it.
        timeout: seconds to wait for each answer.
    """

    def __init__(self, target: EmulatorTarget, *, emulator: Emulator | None = None, timeout: float = DEFAULT_TIMEOUT):
        self._target = target
        self._key = base64.b64decode(target.access_key.strip())
        self._timeout = timeout
        self._context = ssl.create_default_context(cafile=target.ca_bundle) if target.ca_bundle else None
        #: The in-process emulator, or None when the tests use one that was already running.
        self.emulator = emulator

    def __repr__(self) -> str:
        mode = "in-process" if self.emulator is not None else "already running"
        return f"ControlClient({self.endpoint}, {mode})"

    @property
    def endpoint(self) -> str:
        """``http(s)://HOST:PORT`` (no trailing slash)."""
        return self._target.endpoint

    @property
    def access_key(self) -> str:
        """The base64 access key that clients sign with."""
        return self._target.access_key

    @property
    def ca_bundle(self) -> str | None:
        """The CA bundle of an HTTPS emulator (``connection_verify=``), or None."""
        return self._target.ca_bundle

    @property
    def connection_string(self) -> str:
        """``endpoint=...;accesskey=...`` (it holds the key: do not log it)."""
        return f"endpoint={self.endpoint}/;accesskey={self.access_key}"

    @property
    def control_url(self) -> str:
        """``endpoint/_emulator``."""
        return self.endpoint + "/_emulator"

    @property
    def inspector_url(self) -> str:
        """``endpoint/_emulator/ui/``."""
        return self.endpoint + "/_emulator/ui/"

    def _headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        date = formatdate(usegmt=True)
        host = urlsplit(self.endpoint).netloc
        body_hash = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        to_sign = f"{method}\n{path}\n{date};{host};{body_hash}"
        signature = base64.b64encode(hmac.new(self._key, to_sign.encode("utf-8"), hashlib.sha256).digest())
        return {
            "x-ms-date": date,
            "x-ms-content-sha256": body_hash,
            "Authorization": f"HMAC-SHA256 SignedHeaders={_SIGNED_HEADERS}&Signature={signature.decode()}",
            "Content-Type": "application/json",
        }

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        """Send one control-plane request; return the decoded JSON answer (None for 204).

        Args:
            method: ``GET``, ``PUT`` or ``POST``.
            path: the path under ``/_emulator/`` (``requests?since=3``).
            payload: the JSON body, or None.

        Raises:
            RuntimeError: the emulator answered an error (its code and message are in the text) or is
                not reachable.
        """
        target = f"/_emulator/{path}"
        body = b"" if payload is None else json.dumps(payload).encode("utf-8")
        # The URL is this client's own http(s) endpoint (checked by EmulatorTarget), never a caller's.
        request = urllib.request.Request(  # noqa: S310
            self.endpoint + target,
            data=body or None,
            method=method,
            headers=self._headers(method, target, body),
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._context) as response:  # noqa: S310
                data = response.read()
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())["error"]
                detail = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                detail = exc.reason
            raise RuntimeError(f"{method} {target} answered {exc.code} ({detail})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RuntimeError(
                f"No acs-emulator answers at {self.endpoint} ({type(reason).__name__}); is it running?"
            ) from None
        return json.loads(data) if data else None

    def health(self) -> dict[str, Any]:
        """``GET /_emulator/health``: ``{"status": "ok", "version", "resourceId"}``."""
        result: dict[str, Any] = self.call("GET", "health")
        return result

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The request log (entries after id ``since``), oldest first."""
        result: list[dict[str, Any]] = self.call("GET", f"requests?since={int(since)}")["requests"]
        return result

    def identities(self) -> list[dict[str, Any]]:
        """Every identity, with its recent tokens' claims."""
        result: list[dict[str, Any]] = self.call("GET", "identities")["identities"]
        return result

    def chat_threads(self) -> list[dict[str, Any]]:
        """The chat threads, with participants and messages."""
        result: list[dict[str, Any]] = self.call("GET", "chat/threads")["threads"]
        return result

    def reset(self) -> None:
        """``POST /_emulator/reset``: no identities, tokens, chat data or logged requests; start-up chaos rules."""
        self.call("POST", "reset")

    def chaos(self) -> list[dict[str, Any]]:
        """The chaos rules (each ``times`` is what is left of it)."""
        result: list[dict[str, Any]] = self.call("GET", "chaos")["rules"]
        return result

    def set_chaos(self, rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Replace the chaos rules (``[]`` clears them); return them as the emulator stored them."""
        result: list[dict[str, Any]] = self.call("PUT", "chaos", {"rules": [dict(rule) for rule in rules]})["rules"]
        return result
