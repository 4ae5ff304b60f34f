"""The inspector's pages over plain HTTP (no browser): escaping, security headers, files, sections.

The browser tests (``test_inspector_browser.py``) check what a person sees; these check the server side
without Chromium, so they also run where it is not installed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from acs_emulator._control_client import ControlClient
from acs_emulator._inspector import (
    format_remaining,
    render_chaos,
    render_chat,
    render_identities,
    render_requests,
)

HOSTILE = "<script>alert('x')</script>&\""


def _get(url: str) -> tuple[int, Any, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_the_page_and_its_files_come_from_the_emulator_with_a_strict_policy(acs_emulator: ControlClient) -> None:
    status, headers, body = _get(acs_emulator.inspector_url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    page = body.decode()
    assert 'src="static/inspector.js"' in page
    assert "http://" not in page.replace(acs_emulator.endpoint, "")
    assert "https://" not in page
    for name, kind in (("inspector.js", "text/javascript"), ("inspector.css", "text/css")):
        status, headers, body = _get(acs_emulator.inspector_url + "static/" + name)
        assert (status, headers["Content-Type"].split(";")[0]) == (200, kind)
        assert len(body) > 500
    assert _get(acs_emulator.inspector_url + "static/page.html")[0] == 404
    assert _get(acs_emulator.inspector_url + "static/..%2F_control.py")[0] == 404
    status, _, body = _get(acs_emulator.inspector_url + "sections/secrets")
    assert (status, json.loads(body)["error"]["code"]) == (404, "NotFound")
    # Without the trailing slash: a redirect to the page.
    status, _, body = _get(acs_emulator.control_url + "/ui")
    assert status == 200
    assert b"acs-emulator inspector" in body
    # The control plane's own requests are not in the log.
    assert acs_emulator.requests() == []


@pytest.mark.parametrize("section", ["identities", "requests", "chat", "chaos"])
def test_each_section_renders_on_its_own(acs_emulator: ControlClient, section: str) -> None:
    status, headers, body = _get(acs_emulator.inspector_url + f"sections/{section}")
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert b"<" in body
    assert b"<html" not in body


def test_everything_rendered_is_escaped() -> None:
    identities = render_identities(
        [
            {
                "id": HOSTILE,
                "customId": HOSTILE,
                "createdAt": HOSTILE,
                "revokedAt": "2026-01-01T00:00:00Z",
                "tokens": [
                    {"scopes": [HOSTILE], "remainingSeconds": 0, "revoked": False, "claims": {"x": HOSTILE}},
                    {"scopes": ["chat"], "remainingSeconds": 90, "revoked": True, "claims": {}},
                ],
            }
        ]
    )
    requests = render_requests(
        [
            {
                "id": 1,
                "method": HOSTILE,
                "path": HOSTILE,
                "status": 401,
                "auth": HOSTILE,
                "duration": 0.0015,
                "explanation": {"code": HOSTILE, "message": HOSTILE, "innererror": {"stringToSign": HOSTILE}},
            },
            {"id": 2, "method": "GET", "path": "/", "status": 503, "injected": True, "duration": 0.0},
        ]
    )
    chat = render_chat(
        [
            {
                "id": HOSTILE,
                "topic": HOSTILE,
                "createdBy": HOSTILE,
                "participants": [{"displayName": HOSTILE}],
                "messages": [
                    {"seq": 1, "type": "text", "senderDisplayName": HOSTILE, "message": HOSTILE},
                    {"seq": 2, "type": "topicUpdated", "topic": HOSTILE},
                    {"seq": 3, "type": "participantAdded", "participants": json.dumps([{"rawId": HOSTILE}])},
                    {"seq": 4, "type": "participantRemoved", "participants": "not json"},
                    {"seq": 5, "type": "text", "message": HOSTILE, "deletedOn": "2026-01-01T00:00:00Z"},
                ],
            }
        ]
    )
    chaos = render_chaos([{"method": "*", "path": HOSTILE, "status": 503}])
    for html in (identities, requests, chat, chaos):
        assert "<script>" not in html
        assert "&lt;script&gt;" in html
    assert '<span class="badge revoked">revoked</span>' in identities
    assert "expired" in identities
    assert "1.5 ms" in requests
    assert '<span class="badge injected">chaos</span>' in requests
    assert "(deleted)" in chat
    assert "added: &lt;script&gt;" in chat
    assert "removed: not json" in chat
    assert "No chat threads yet." in render_chat([])
    assert "No identities yet." in render_identities([])
    assert "No requests yet." in render_requests([])
    assert "No chaos rules" in render_chaos([])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "expired"), (0, "expired"), (9, "9 s"), (250, "4 min 10 s"), (86399, "23 h 59 min"), (86400, "24 h 0 min")],
)
def test_format_remaining(seconds: int, text: str) -> None:
    assert format_remaining(seconds) == text
