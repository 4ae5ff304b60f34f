"""The web inspector in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

One browser and one HTTPS emulator serve the module. The page is loaded after creating users, a failed
(401) request and a chat thread with a message, and what it renders is asserted; then the chaos form adds a
rule, the next request fails, and the page's live log shows it without a reload. Screenshots are saved under
``emulator/tests/artifacts/`` (gitignored). Outside CI the tests skip when no Chromium is installed; with
``CI=true`` they fail instead.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.communication.chat import ChatClient, ChatParticipant
from azure.communication.identity import CommunicationIdentityClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError

from acs_emulator import Emulator
from azure.communication.common import CommunicationTokenCredential

CHROMIUM = os.environ.get("ACS_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
WRONG_KEY = "aW5zcGVjdG9yLXRlc3Qtd3Jvbmcta2V5LTAxMjM0NTY3ODk="
#: Generous: the page polls every second, and the machine may be busy.
WAIT_MS = 20_000


def _chromium() -> str:
    found = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but no Chromium at {CHROMIUM}: .ci/run installs Debian's chromium package.")
    pytest.skip(f"No Chromium at {CHROMIUM} (install Debian's chromium); the browser tests run in CI.")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(https=True) as emulator:
        yield emulator
        assert emulator.unexpected_errors == 0


@pytest.fixture
def page(browser: Any, emu: Emulator) -> Iterator[Any]:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    seen: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.seen_urls = seen
    yield page
    context.close()
    # Everything the page loaded came from the emulator (no CDN: it works offline), without errors
    # (a Content-Security-Policy violation would be one).
    assert seen
    assert all(url.startswith(emu.endpoint + "/") or url.startswith("data:") for url in seen), seen
    # The one expected: the chaos test's deliberately bad rule, refused with a 400.
    assert [text for text in problems if "status of 400" not in text] == []


def _identity(emu: Emulator, **kwargs: Any) -> CommunicationIdentityClient:
    return CommunicationIdentityClient(
        emu.endpoint, AzureKeyCredential(emu.access_key), connection_verify=emu.ca_bundle, **kwargs
    )


def _get(emu: Emulator, target: str) -> int:
    context = ssl.create_default_context(cafile=emu.ca_bundle)
    connection = http.client.HTTPSConnection("127.0.0.1", emu.port, context=context, timeout=10)
    try:
        connection.request("GET", target)
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_page_shows_identities_tokens_the_explained_401_and_chat(page: Any, emu: Emulator) -> None:
    identity = _identity(emu)
    alice, alice_token = identity.create_user_and_token(["chat"])
    bob = identity.create_user()
    with pytest.raises(HttpResponseError):
        CommunicationIdentityClient(
            emu.endpoint, AzureKeyCredential(WRONG_KEY), connection_verify=emu.ca_bundle, retry_total=0
        ).create_user()
    # A path that would be markup if the page did not escape what it renders.
    assert _get(emu, "/%3Cimg%20src=x%20id=injected%3E") == 404
    with CommunicationTokenCredential(alice_token.token) as credential:
        chat = ChatClient(emu.endpoint, credential, connection_verify=emu.ca_bundle)
        thread = chat.create_chat_thread(
            "Inspector demo", thread_participants=[ChatParticipant(identifier=bob, display_name="Bob")]
        ).chat_thread
        assert thread is not None
        chat.get_chat_thread_client(thread.id, connection_verify=emu.ca_bundle).send_message(
            "Hello Bob, this is the inspector test", sender_display_name="Alice"
        )

    page.goto(emu.inspector_url)
    identities = page.locator("#identities-table")
    assert identities.locator(f'tr.identity[data-id="{alice.properties["id"]}"]').count() == 1
    assert identities.locator(f'tr.identity[data-id="{bob.properties["id"]}"]').count() == 1
    token_row = identities.locator("tr.token").first
    assert "scopes chat" in token_row.inner_text()
    assert re.search(r"(23 h \d+|24 h 0) min left", token_row.inner_text())
    token_row.locator("summary").click()
    claims = token_row.locator("pre").inner_text()
    assert f'"skypeid": "{alice.properties["id"][2:]}"' in claims
    assert alice_token.token not in page.content()

    denied = page.locator('#requests-table tr.request[data-status="401"]')
    assert denied.count() == 1
    explanation = denied.locator("td.explanation").inner_text()
    assert "Denied" in explanation
    assert "stringToSign" in explanation
    assert "POST\n/identities?api-version=" in denied.locator("dd pre").first.inner_text()
    assert page.locator("#injected").count() == 0
    assert "<img src=x id=injected>" in page.locator('#requests-table tr[data-status="404"]').inner_text()

    chat_section = page.locator("#chat-body")
    assert "Inspector demo" in chat_section.locator("h3").inner_text()
    assert "Hello Bob, this is the inspector test" in chat_section.locator("table.messages").inner_text()
    assert "Bob" in chat_section.inner_text()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "inspector-state.png"), full_page=True)


def test_the_chaos_form_makes_the_next_request_fail_and_the_log_shows_it_live(page: Any, emu: Emulator) -> None:
    page.goto(emu.inspector_url)
    assert "No chaos rules" in page.locator("#chaos-table").inner_text()
    form = page.locator("#chaos-form")
    form.locator('select[name="method"]').select_option("POST")
    form.locator('input[name="path"]').fill("/identities")
    form.locator('input[name="status"]').fill("503")
    form.locator('input[name="times"]').fill("1")
    form.locator("#chaos-add").click()
    page.wait_for_selector("#chaos-table tr.rule")
    assert "/identities" in page.locator("#chaos-table tr.rule").inner_text()

    with pytest.raises(HttpResponseError) as failed:
        _identity(emu, retry_total=0).create_user()
    assert failed.value.status_code == 503
    # No reload: the page polls the log and shows the injected failure, marked as chaos.
    row = page.wait_for_selector('#requests-table tr.request[data-status="503"]')
    assert row is not None
    assert "chaos" in row.inner_text()
    page.wait_for_selector('#chaos-table tr.rule td:nth-child(8):text-is("0")')
    spent = _identity(emu, retry_total=0).create_user().properties["id"]
    page.wait_for_selector(f'#identities-table tr.identity[data-id="{spent}"]')

    # A bad rule is refused with the emulator's message, and the rules stay as they were.
    form.locator('input[name="path"]').fill("identities")
    form.locator("#chaos-add").click()
    page.wait_for_selector("#chaos-error:has-text('rules[1].path')")
    assert page.locator("#chaos-table tr.rule").count() == 1
    page.locator("#chaos-clear").click()
    page.wait_for_selector("#chaos-table tr.empty")

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "inspector.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # The rules as JSON: edited in the page's text area, saved with PUT.
    page.locator("#chaos-body summary").click()
    page.locator("#chaos-json").fill('{"rules": [{"method": "GET", "path": "/chat/*", "latency": 0.5}]}')
    page.locator("#chaos-json-save").click()
    page.wait_for_selector("#chaos-table tr.rule")
    assert "/chat/*" in page.locator("#chaos-table tr.rule").inner_text()
    # The reset button: no identities, no requests, no chat, and the start-up rules (none) again.
    page.locator("#reset-button").click()
    page.wait_for_selector("#identities-table tr.empty")
    page.wait_for_selector("#requests-table tr.empty")
    page.wait_for_selector("#chat-empty")
    page.wait_for_selector("#chaos-table tr.empty")


def test_without_chromium_the_browser_tests_skip_outside_ci_and_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="No Chromium at"):
        _chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but no Chromium"):
        _chromium()
