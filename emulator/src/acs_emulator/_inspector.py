"""The web inspector at ``/_emulator/ui/``: server-rendered HTML over the control plane's data.

One page (``ui/page.html``, a :class:`string.Template`) with four sections, each rendered here by a pure
function of the data, every value passed through :func:`html.escape`: identities with their tokens' decoded
claims and remaining life, the request log with each error's explanation beside it, the chat threads with
their messages, and the chaos rules with a form that edits them. ``ui/inspector.js`` polls
``GET /_emulator/requests`` and, when the log changes, fetches the sections again as HTML fragments
(``/_emulator/ui/sections/{name}``). No build step, nothing from another origin (the Content-Security-Policy
says so to the browser): it works offline.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from html import escape
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from ._errors import ApiError
from ._version import VERSION

if TYPE_CHECKING:
    from ._control import ControlPlane

__all__ = [
    "UI_PATH",
    "Inspector",
    "format_remaining",
    "render_chaos",
    "render_chat",
    "render_identities",
    "render_requests",
]

#: Where the inspector is served.
UI_PATH: Final = "/_emulator/ui/"
#: Request-log rows on the page: enough to scroll back through a test, few enough to render at once.
PAGE_REQUESTS: Final = 200

_STATIC: Final = {"inspector.css": "text/css", "inspector.js": "text/javascript"}
_SECURITY_HEADERS: Final = {
    # Everything comes from the emulator itself: no CDN, no inline script, no framing by other sites.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def format_remaining(seconds: int) -> str:
    """A token's remaining life for people: ``23 h 59 min``, ``4 min 10 s``, ``9 s`` or ``expired``."""
    if seconds <= 0:
        return "expired"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _empty(colspan: int, text: str) -> str:
    return f'<tr class="empty"><td colspan="{colspan}">{_e(text)}</td></tr>'


def render_identities(identities: Sequence[Mapping[str, Any]]) -> str:
    """The identities table, each identity followed by its tokens (scopes, expiry, remaining life, claims)."""
    rows = []
    for identity in identities:
        tokens = identity.get("tokens", [])
        status = "revoked" if identity.get("revokedAt") else "active"
        rows.append(
            f'<tr class="identity" data-id="{_e(identity["id"])}">'
            f'<td class="mono">{_e(identity["id"])}</td><td>{_e(identity.get("customId") or "")}</td>'
            f"<td>{_e(identity.get('createdAt'))}</td><td>{_e(identity.get('lastTokenIssuedAt') or '-')}</td>"
            f'<td><span class="badge {status}">{status}</span></td><td>{len(tokens)}</td></tr>'
        )
        for token in tokens:
            claims = json.dumps(token.get("claims", {}), indent=2, sort_keys=True)
            state = "revoked" if token.get("revoked") else ("expired" if not token["remainingSeconds"] else "valid")
            rows.append(
                '<tr class="token"><td colspan="6">'
                f'<span class="badge {state}">{state}</span> '
                f"scopes <b>{_e(', '.join(token.get('scopes', [])) or '-')}</b>, "
                f"issued {_e(token.get('issuedAt'))}, expires {_e(token.get('expiresOn'))}, "
                f'<span class="remaining">{_e(format_remaining(int(token["remainingSeconds"])))} left</span>'
                f"<details><summary>decoded claims</summary><pre>{_e(claims)}</pre></details></td></tr>"
            )
    body = "".join(rows) or _empty(6, "No identities yet.")
    return (
        '<table id="identities-table"><thead><tr><th>id</th><th>customId</th><th>created</th>'
        "<th>last token issued</th><th>state</th><th>tokens</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _explanation(entry: Mapping[str, Any]) -> str:
    explanation = entry.get("explanation")
    if not isinstance(explanation, Mapping):
        return ""
    parts = [f'<div class="error-line"><b>{_e(explanation.get("code"))}</b>: {_e(explanation.get("message"))}</div>']
    inner = explanation.get("innererror")
    if isinstance(inner, Mapping):
        computed = [(name, inner[name]) for name in ("stringToSign", "contentHash", "host") if name in inner]
        if computed:
            parts.append('<dl class="computed">')
            for name, value in computed:
                parts.append(f"<dt>{_e(name)}</dt><dd><pre>{_e(value)}</pre></dd>")
            parts.append("</dl>")
    return "".join(parts)


def render_requests(entries: Sequence[Mapping[str, Any]]) -> str:
    """The request log, newest first, each error answer with its explanation in the row's last column."""
    rows = []
    for entry in reversed(entries):
        status = int(entry.get("status", 0))
        kind = "ok" if status < 400 else ("client-error" if status < 500 else "server-error")
        injected = ' <span class="badge injected">chaos</span>' if entry.get("injected") else ""
        duration = float(entry.get("duration", 0.0)) * 1000
        rows.append(
            f'<tr class="request {kind}" data-id="{_e(entry.get("id"))}" data-status="{status}">'
            f"<td>{_e(entry.get('id'))}</td><td>{_e(entry.get('time'))}</td><td>{_e(entry.get('method'))}</td>"
            f'<td class="mono">{_e(entry.get("path"))}</td><td class="status">{status}{injected}</td>'
            f"<td>{_e(entry.get('auth') or '-')}</td><td>{duration:.1f} ms</td>"
            f'<td class="explanation">{_explanation(entry)}</td></tr>'
        )
    body = "".join(rows) or _empty(8, "No requests yet.")
    return (
        '<table id="requests-table"><thead><tr><th>#</th><th>time</th><th>method</th><th>path</th>'
        "<th>status</th><th>auth</th><th>duration</th><th>explanation</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _participant_names(stored: object) -> str:
    try:
        participants = json.loads(stored) if isinstance(stored, str) else stored
    except ValueError:
        return str(stored)
    if not isinstance(participants, list):
        return str(stored)
    return ", ".join(
        str(p.get("displayName") or p.get("rawId") or "?") if isinstance(p, dict) else str(p) for p in participants
    )


def _message_text(message: Mapping[str, Any]) -> str:
    if message.get("deletedOn"):
        return "(deleted)"
    if message.get("type") == "topicUpdated":
        return f"topic set to {message.get('topic')!s}"
    if message.get("type") in ("participantAdded", "participantRemoved"):
        verb = "added" if message.get("type") == "participantAdded" else "removed"
        return f"{verb}: {_participant_names(message.get('participants'))}"
    return str(message.get("message") or "")


def render_chat(threads: Sequence[Mapping[str, Any]]) -> str:
    """The chat threads, each with its participants and its messages in order."""
    if not threads:
        return '<p class="empty" id="chat-empty">No chat threads yet.</p>'
    parts = []
    for thread in threads:
        participants = ", ".join(
            str(p.get("displayName") or p.get("rawId") or p.get("id") or "?") for p in thread.get("participants", [])
        )
        messages = "".join(
            f'<tr class="message"><td>{_e(message.get("seq", message.get("id")))}</td>'
            f"<td>{_e(message.get('type'))}</td>"
            f"<td>{_e(message.get('senderDisplayName') or message.get('sender') or '-')}</td>"
            f"<td>{_e(_message_text(message))}</td><td>{_e(message.get('createdOn'))}</td></tr>"
            for message in thread.get("messages", [])
        )
        parts.append(
            f'<article class="thread" data-id="{_e(thread.get("id"))}">'
            f'<h3>{_e(thread.get("topic") or "(no topic)")} <span class="mono small">{_e(thread.get("id"))}</span></h3>'
            f'<p>created by <span class="mono">{_e(thread.get("createdBy") or "-")}</span>, participants: '
            f"{_e(participants or '-')}</p>"
            '<table class="messages"><thead><tr><th>seq</th><th>type</th><th>sender</th><th>content</th>'
            f"<th>created</th></tr></thead><tbody>{messages or _empty(5, 'No messages.')}</tbody></table></article>"
        )
    return "".join(parts)


def render_chaos(rules: Sequence[Mapping[str, Any]]) -> str:
    """The chaos rules table (with a remove button per rule) and the rules as editable JSON."""
    rows = []
    for index, rule in enumerate(rules):
        cells = "".join(
            f"<td>{_e('-' if rule.get(name) is None else rule.get(name))}</td>"
            for name in ("method", "path", "status", "probability", "latency", "retryAfter", "times")
        )
        rows.append(
            f'<tr class="rule" data-index="{index}"><td>{index}</td>{cells}'
            f'<td><button type="button" class="remove-rule" data-index="{index}">remove</button></td></tr>'
        )
    body = "".join(rows) or _empty(9, "No chaos rules: every request is handled normally.")
    document = json.dumps({"rules": list(rules)}, indent=2)
    return (
        '<table id="chaos-table"><thead><tr><th>#</th><th>method</th><th>path</th><th>status</th>'
        "<th>probability</th><th>latency (s)</th><th>Retry-After</th><th>times left</th><th></th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
        f'<details><summary>edit as JSON</summary><textarea id="chaos-json" rows="8" cols="80">{_e(document)}'
        '</textarea><br><button type="button" id="chaos-json-save">save JSON</button></details>'
    )


class Inspector:
    """The inspector's routes over a :class:`ControlPlane` (same authentication as the control plane).

    Args:
        control: the control plane whose data the pages show.
    """

    def __init__(self, control: ControlPlane) -> None:
        self._control = control
        self._files: dict[str, bytes] = {}
        self._sections: dict[str, Callable[[], Awaitable[str]]] = {
            "identities": self._identities,
            "requests": self._requests,
            "chat": self._chat,
            "chaos": self._chaos,
        }

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register ``/_emulator/ui/`` (and ``/_emulator/ui``, which redirects there)."""
        router.add_get(UI_PATH.rstrip("/"), self.redirect)
        router.add_get(UI_PATH, self.page)
        router.add_get(UI_PATH + "sections/{name}", self.section)
        router.add_get(UI_PATH + "static/{name}", self.static)

    def _file(self, name: str) -> bytes:
        data = self._files.get(name)
        if data is None:
            data = resources.files("acs_emulator").joinpath("ui").joinpath(name).read_bytes()
            self._files[name] = data
        return data

    @staticmethod
    def _html(text: str) -> web.Response:
        return web.Response(text=text, content_type="text/html", charset="utf-8", headers=_SECURITY_HEADERS)

    async def _identities(self) -> str:
        return render_identities(await self._control.identities())

    async def _requests(self) -> str:
        return render_requests(self._control.requests.entries(limit=PAGE_REQUESTS))

    async def _chat(self) -> str:
        return render_chat(await self._control.chat_threads())

    async def _chaos(self) -> str:
        return render_chaos(self._control.chaos.to_json()["rules"])

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        """``GET /_emulator/ui``: a redirect to the page (relative links need the trailing slash)."""
        await self._control.authorize(request)
        return web.Response(status=302, headers={"Location": UI_PATH})

    async def page(self, request: web.Request) -> web.Response:
        """``GET /_emulator/ui/``: the whole page."""
        await self._control.authorize(request)
        template = Template(self._file("page.html").decode("utf-8"))
        sections = {name: await render() for name, render in self._sections.items()}
        text = template.substitute(
            version=_e(VERSION),
            resource_id=_e(self._control.resource_id),
            access="open (loopback)" if self._control.open_access else "HMAC-signed",
            **sections,
        )
        return self._html(text)

    async def section(self, request: web.Request) -> web.Response:
        """``GET /_emulator/ui/sections/{name}``: one section's HTML, for the page's live updates."""
        await self._control.authorize(request)
        render = self._sections.get(request.match_info["name"])
        if render is None:
            raise ApiError(404, "NotFound", "No such inspector section.")
        return self._html(await render())

    async def static(self, request: web.Request) -> web.Response:
        """``GET /_emulator/ui/static/{name}``: the page's stylesheet and script (a fixed list)."""
        await self._control.authorize(request)
        name = request.match_info["name"]
        content_type = _STATIC.get(name)
        if content_type is None:
            raise ApiError(404, "NotFound", "No such inspector file.")
        return web.Response(body=self._file(name), content_type=content_type, headers=_SECURITY_HEADERS)
