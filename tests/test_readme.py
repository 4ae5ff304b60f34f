"""The README's Python examples, run as they are written, so the docs cannot drift from the code.

Every fenced ``python`` block of README.md becomes one test case, named by the Markdown heading it sits
under and its position there. ``CHECKS`` maps each block to the function that runs it and asserts what the
block promises; a block without a check fails, and so does a check whose block is gone.

The blocks run with ``exec`` as modules of their own, exactly as a script pasted from the README would: a
top-level ``await`` or ``async with`` is the ``SyntaxError`` it would be there (issue 16). They run against a
real ACS emulator on 127.0.0.1 (plain http, and an https one for the blocks written for
``from_connection_string``). The blocks that start their own emulator (offline development, offline chat, the
control plane, troubleshooting 401s) are complete scripts: they run in a fresh ``__main__`` namespace with
nothing provided. The pytest example runs under pytest in ``tests/test_docs.py``, in one subprocess with the
docs' own. For the other blocks, what the README leaves to the reader is
provided here, and nothing else: the names it assumes (``fetch_token_from_my_server_for_user``, its async
twin, ``entra_credential``, ``endpoint``, ``key_credential``, and ``CommunicationTokenCredential`` or
``credential`` for blocks that continue the one above them) are defined in the block's namespace, and its
placeholder strings (``https://<resource>.communication.azure.com``, the ``<base64 key>`` connection
string, the sample token standing for one issued at start-up) are replaced by the emulator's. Each
replacement must find its text, so an edit that removes a placeholder fails here instead of silently
running something else. The chat client block keeps the README's endpoint and gets a transport whose
requests adapter records the request instead of sending it.

The blocks are compiled with README.md as their file name and their own line numbers, so a traceback
points at the README line that failed.
"""

from __future__ import annotations

import ast
import asyncio
import io
import pickle
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
import pytest
import requests
import urllib3
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.pipeline.transport import RequestsTransport

from acs_emulator import Emulator
from azure.communication.common import (
    CommunicationTokenCredential,
    CommunicationUserIdentifier,
    parse_connection_string,
)

README = Path(__file__).resolve().parents[1] / "README.md"

# The README's endpoint placeholder; blocks that can reach the emulator get its endpoint instead.
RESOURCE_ENDPOINT = "https://<resource>.communication.azure.com"
# The email the credential examples fetch a token for.
BOB = "bob@contoso.com"
# The proactive and on-demand refresh windows of DESIGN.md §3, for tokens longer-lived than them.
PROACTIVE_WINDOW = 600
ON_DEMAND_WINDOW = 120

_FENCE = re.compile(r"^```(\S*)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$")


# ---------------------------------------------------------------------------------------------------------
# Reading the README
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One fenced ``python`` block of README.md."""

    heading: str  # the nearest Markdown heading above it
    ordinal: int  # its position among the python blocks under that heading
    line: int  # the 1-based line of its first line of code
    source: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.heading, self.ordinal)

    @property
    def id(self) -> str:
        return f"{self.heading}#{self.ordinal}"


@dataclass(frozen=True)
class Fence:
    """Any fenced block: its language and where it starts (the line of its opening fence)."""

    language: str
    line: int
    body: str


@dataclass(frozen=True)
class Heading:
    """A Markdown heading outside any fence (a ``#`` comment in a bash block is none)."""

    line: int
    level: int
    title: str


def read_fences(text: str) -> tuple[list[Fence], list[Heading]]:
    """Return the fenced blocks and the headings outside them, in order."""
    fences: list[Fence] = []
    headings: list[Heading] = []
    open_fence: tuple[str, int, list[str]] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        fence = _FENCE.match(line)
        if open_fence is not None:
            if fence and not fence.group(1):
                language, start, body = open_fence
                fences.append(Fence(language, start, "\n".join(body) + "\n"))
                open_fence = None
            else:
                open_fence[2].append(line)
        elif fence:
            open_fence = (fence.group(1), number, [])
        elif heading := _HEADING.match(line):
            headings.append(Heading(number, len(heading.group(1)), heading.group(2)))
    assert open_fence is None, f"README.md: the fence opened at line {open_fence[1]} is never closed"
    return fences, headings


def read_python_blocks(text: str) -> list[Block]:
    """Return the README's ``python`` blocks, each keyed by its heading and position under it."""
    fences, headings = read_fences(text)
    blocks: list[Block] = []
    seen: dict[str, int] = {}
    for fence in fences:
        if fence.language != "python":
            continue
        heading = next((h.title for h in reversed(headings) if h.line < fence.line), "(top)")
        ordinal = seen.get(heading, 0)
        seen[heading] = ordinal + 1
        blocks.append(Block(heading, ordinal, fence.line + 1, fence.body))
    return blocks


README_TEXT = README.read_text(encoding="utf-8")
BLOCKS = read_python_blocks(README_TEXT)


def substitute(source: str, old: str, new: str) -> str:
    """Replace a placeholder the block must contain (a missing one means the README changed under us)."""
    assert old in source, f"the README block no longer contains {old!r}; update tests/test_readme.py"
    return source.replace(old, new)


def run_block(block: Block, namespace: dict[str, Any], source: str | None = None) -> dict[str, Any]:
    """Run a block (or its substituted source) in ``namespace`` and return the namespace.

    Padding with the lines above the block makes tracebacks name the block's own README lines.
    """
    text = "\n" * (block.line - 1) + (block.source if source is None else source)
    code = compile(text, str(README), "exec", dont_inherit=True)
    exec(code, namespace)  # noqa: S102 - the README's own examples, compiled above
    return namespace


# ---------------------------------------------------------------------------------------------------------
# What the README leaves to the reader
# ---------------------------------------------------------------------------------------------------------


class FakeEntraCredential:
    """A sync ``TokenCredential`` standing for e.g. ``InteractiveBrowserCredential``.

    Its token is an unsigned-for-real JWT with the claims the emulator reads (``tid``, ``oid``, ``exp``);
    the emulator does not verify Entra signatures (a documented limitation).
    """

    def __init__(self, token: str, expires_on: int) -> None:
        self.token = token
        self.expires_on = expires_on
        self.scopes_asked: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes_asked.append(scopes)
        return AccessToken(self.token, self.expires_on)


@dataclass
class Server:
    """The reader's own server, played by the emulator through the official identity client."""

    emulator: Emulator
    secret_registry: Any
    users: dict[str, CommunicationUserIdentifier] = field(default_factory=dict)
    _jwks: jwt.PyJWKClient | None = None

    def __post_init__(self) -> None:
        from azure.communication.identity import CommunicationIdentityClient

        self.identity = CommunicationIdentityClient(
            self.emulator.endpoint, AzureKeyCredential(self.emulator.access_key)
        )

    def user_for(self, email: str) -> Any:
        if email not in self.users:
            self.users[email] = self.identity.create_user()
        return self.users[email]

    def issue_token(self, email: str) -> str:
        token: str = self.identity.get_token(self.user_for(email), ["chat", "voip"]).token
        return self.secret_registry.register(token)  # type: ignore[no-any-return]

    async def issue_token_async(self, email: str) -> str:
        from azure.communication.identity.aio import CommunicationIdentityClient

        user = self.user_for(email)
        async with CommunicationIdentityClient(
            self.emulator.endpoint, AzureKeyCredential(self.emulator.access_key)
        ) as identity:
            token: str = (await identity.get_token(user, ["chat", "voip"])).token
        return self.secret_registry.register(token)  # type: ignore[no-any-return]

    def claims(self, token: str) -> dict[str, Any]:
        """The claims of a token, after checking its RS256 signature with the emulator's published JWKS."""
        if self._jwks is None:
            self._jwks = jwt.PyJWKClient(self.emulator.jwks_url)
        key = self._jwks.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=["RS256"], options={"verify_aud": False})
        return claims

    def skype_id_of(self, email: str) -> str:
        # A user's token names it by its raw id without the "8:" prefix.
        return str(self.users[email].properties["id"]).removeprefix("8:")


@dataclass
class Context:
    """What one block's check gets: the server, a fresh namespace and a place to register clean-ups."""

    server: Server
    cleanups: list[Callable[[], Any]]
    https_emulator: Callable[[], Emulator]
    fetched: list[str] = field(default_factory=list)

    def namespace(self, **extra: Any) -> dict[str, Any]:
        """A fresh namespace with the README's placeholder functions (which record the calls made)."""

        def fetch_token_from_my_server_for_user(email: str) -> str:
            self.fetched.append(email)
            return self.server.issue_token(email)

        async def fetch_token_from_my_server_for_user_async(email: str) -> str:
            self.fetched.append(email)
            return await self.server.issue_token_async(email)

        return {
            "__name__": "readme_example",
            "fetch_token_from_my_server_for_user": fetch_token_from_my_server_for_user,
            "fetch_token_from_my_server_for_user_async": fetch_token_from_my_server_for_user_async,
            **extra,
        }

    def closing(self, closable: Any) -> Any:
        self.cleanups.append(closable.close)
        return closable

    def exiting(self, manager: Any) -> Any:
        self.cleanups.append(lambda: manager.__exit__(None, None, None))
        return manager


@pytest.fixture(scope="module")
def server(secret_registry: Any) -> Iterator[Server]:
    emulator = Emulator(allow_short_tokens=True).start()
    try:
        yield Server(emulator, secret_registry)
    finally:
        emulator.stop()
    assert emulator.unexpected_errors == 0


@pytest.fixture(scope="module")
def https_emulator() -> Iterator[Emulator]:
    """An https emulator, for the blocks written for the official clients' ``from_connection_string``."""
    emulator = Emulator(https=True).start()
    try:
        yield emulator
    finally:
        emulator.stop()
    assert emulator.unexpected_errors == 0


@pytest.fixture
def context(server: Server, request: pytest.FixtureRequest) -> Iterator[Context]:
    cleanups: list[Callable[[], Any]] = []
    yield Context(server, cleanups, lambda: request.getfixturevalue("https_emulator"))
    for cleanup in reversed(cleanups):
        cleanup()


# ---------------------------------------------------------------------------------------------------------
# User access token credential
# ---------------------------------------------------------------------------------------------------------


def check_static_token(block: Block, ctx: Context) -> None:
    ns = run_block(block, ctx.namespace())
    credential = ctx.closing(ns["credential"])
    (literal,) = re.findall(r'"(eyJ[^"]+)"', block.source)

    # A static credential hands out exactly the token it was given, with the JWT's own expiry, even one
    # long past (as in JS): it never calls anyone.
    token = credential.get_token()
    assert isinstance(credential, CommunicationTokenCredential)
    assert token.token == literal
    assert token.expires_on == jwt.decode(literal, options={"verify_signature": False})["exp"]
    assert ctx.fetched == []


def check_callback(block: Block, ctx: Context) -> None:
    ns = run_block(block, ctx.namespace())
    credential = ctx.closing(ns["credential"])
    assert ctx.fetched == []  # nothing is fetched before the first get_token()

    info = credential.get_token_info()

    assert ctx.fetched == [BOB]
    assert ctx.server.claims(info.token)["skypeid"] == ctx.server.skype_id_of(BOB)
    assert info.expires_on - info.refresh_on == ON_DEMAND_WINDOW
    assert credential.get_token().token == info.token  # cached: no second fetch
    assert ctx.fetched == [BOB]


def check_proactive(block: Block, ctx: Context) -> None:
    ns = run_block(block, ctx.namespace(CommunicationTokenCredential=CommunicationTokenCredential))
    credential = ctx.closing(ns["credential"])

    info = credential.get_token_info()

    # One fetch, however the first token arrived (in the background or for this call); then the
    # background refresh is planned 10 minutes before expiry.
    assert ctx.fetched == [BOB]
    assert ctx.server.claims(info.token)["skypeid"] == ctx.server.skype_id_of(BOB)
    assert info.expires_on - info.refresh_on == PROACTIVE_WINDOW


def check_proactive_with_initial_token(block: Block, ctx: Context) -> None:
    # The README's literal stands for the token the app got at start-up; give it a live one from the server.
    (literal,) = re.findall(r'"(eyJ[^"]+)"', block.source)
    initial = ctx.server.issue_token(BOB)
    source = substitute(block.source, f'"{literal}"', repr(initial))
    ns = run_block(block, ctx.namespace(CommunicationTokenCredential=CommunicationTokenCredential), source)
    credential = ctx.closing(ns["credential"])

    info = credential.get_token_info()

    # The initial token is used as is: the refresher is not called at start-up.
    assert info.token == initial
    assert ctx.fetched == []
    assert info.expires_on - info.refresh_on == PROACTIVE_WINDOW


def check_asyncio(block: Block, ctx: Context) -> None:
    ns = run_block(block, ctx.namespace())

    # The block ran its coroutine with asyncio.run, as a script must: one fetch, through the async refresher.
    assert asyncio.iscoroutinefunction(ns["main"])
    assert "asyncio.run(main())" in block.source
    assert ctx.fetched == [BOB]
    # main() is a coroutine function, so its credential closed inside the loop that used it.
    assert "token" not in ns
    assert "credential" not in ns


def check_identity_client(block: Block, ctx: Context) -> None:
    emulator = ctx.https_emulator()
    placeholder = '"endpoint=https://<resource>.communication.azure.com/;accesskey=<base64 key>"'
    source = substitute(
        block.source, placeholder, f"{emulator.connection_string!r}, connection_verify={emulator.ca_bundle!r}"
    )
    ns = run_block(block, ctx.namespace(), source)
    credential = ctx.closing(ns["credential"])

    info = credential.get_token_info()
    ctx.server.secret_registry.register(info.token)

    # The official client's own AccessToken (an ISO 8601 expires_on) went through as it is.
    claims = jwt.decode(info.token, options={"verify_signature": False})
    assert claims["skypeid"] == ns["user"].properties["id"].removeprefix("8:")
    assert info.expires_on == claims["exp"]
    assert info.expires_on - info.refresh_on == PROACTIVE_WINDOW


def run_script(block: Block) -> dict[str, Any]:
    """Run a self-contained block as ``__main__``, with nothing provided: it starts its own emulator."""
    return run_block(block, {"__name__": "__main__"})


def check_offline_https(block: Block, ctx: Context) -> None:
    ns = run_script(block)
    token = ns["token"]
    ctx.server.secret_registry.register(token.token)

    # The official client reached the emulator over TLS through from_connection_string (its endpoint is https).
    assert ns["identity"]._endpoint.startswith("https://127.0.0.1:")
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["skypeid"] == ns["user"].properties["id"].removeprefix("8:")
    # `with` closed the credential.
    with pytest.raises(RuntimeError, match="closed"):
        ns["credential"].get_token()


def check_offline_chat(block: Block, ctx: Context) -> None:
    ns = run_script(block)

    assert len(ns["said"]) == 6
    # Refreshes happened during the conversation, not only at its start: tokens lived 3 s, it lasted 3.
    refreshes = ns["refreshes"]
    assert max(refreshes) - min(refreshes) >= 1.0
    with pytest.raises(RuntimeError, match="closed"):
        ns["alice_credential"].get_token()


def check_explained_401s(block: Block, ctx: Context) -> None:
    ns = run_script(block)

    # The last comparison: the emulator's stringToSign differs from the client's only by the proxy's edit.
    ours = ns["client_side"]["innererror"]["stringToSign"].splitlines()
    theirs = ns["error"]["innererror"]["stringToSign"].splitlines()
    assert [ours[0], ours[2]] == [theirs[0], theirs[2]]
    assert theirs[1] == ours[1] + "&trace=1"
    # Nothing secret in an explanation: neither the key nor a signature.
    assert ns["emu"].access_key not in str(ns["error"])
    assert "Signature=" not in str(ns["error"])


def check_control_plane(block: Block, ctx: Context) -> None:
    ns = run_script(block)

    assert ns["rule"]["times"] == 1
    assert [entry["method"] for entry in ns["log"]] == ["POST", "POST"]


def check_pytest_plugin(block: Block, ctx: Context) -> None:
    # tests/test_docs.py runs this block under pytest, in one subprocess with the docs' own pytest example
    # (the plugin's start-up paid once); here: that it is the block it runs, and that it uses the plugin.
    from test_docs import PYTEST_SOURCES

    assert block.source in PYTEST_SOURCES
    tree = ast.parse(block.source)
    tests = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]
    assert len(tests) >= 2
    fixtures = {arg.arg for test in tests for arg in test.args.args}
    assert fixtures == {"acs_emulator", "acs_connection_string"}


class CapturingAdapter(requests.adapters.HTTPAdapter):
    """A requests adapter that records what would be sent and answers an empty chat thread list.

    It sits under azure-core's real ``RequestsTransport``, so the chat client's whole pipeline (its bearer
    policy calling our credential included) runs; only the socket is left out, because the chat client
    insists on https and the emulator speaks http.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        body = b'{"value": []}'
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(body),
            headers={"Content-Type": "application/json", "Content-Length": str(len(body))},
            status=200,
            preload_content=False,
        )
        return self.build_response(request, raw)


def check_chat_client(block: Block, ctx: Context) -> None:
    credential = ctx.closing(
        CommunicationTokenCredential(token_refresher=lambda: ctx.server.issue_token(BOB), proactive_refresh=True)
    )
    adapter = CapturingAdapter()
    session = requests.Session()
    session.mount("https://", adapter)
    # The one change: the chat client gets a transport (a keyword every azure-core client takes).
    source = substitute(block.source, ", credential)", ", credential, transport=transport)")
    ns = run_block(block, ctx.namespace(credential=credential, transport=RequestsTransport(session=session)), source)
    chat = ctx.closing(ns["chat"])

    threads = list(chat.list_chat_threads())

    assert threads == []
    (sent,) = adapter.sent
    url = urlsplit(str(sent.url))
    # requests percent-encodes the placeholder's angle brackets; it is the README's endpoint all the same.
    assert f"{url.scheme}://{unquote(url.netloc)}" == RESOURCE_ENDPOINT
    assert url.path == "/chat/threads"
    assert sent.headers["Authorization"] == f"Bearer {credential.get_token().token}"
    assert ctx.server.claims(credential.get_token().token)["skypeid"] == ctx.server.skype_id_of(BOB)


def check_entra(block: Block, ctx: Context) -> None:
    secret_registry = ctx.server.secret_registry
    entra_exp = int(time.time()) + 3600
    tenant, user = str(uuid.uuid4()), str(uuid.uuid4())
    entra_jwt = jwt.encode({"tid": tenant, "oid": user, "exp": entra_exp}, "k" * 32, algorithm="HS256")
    entra_credential = FakeEntraCredential(secret_registry.register(entra_jwt), entra_exp)
    source = substitute(block.source, RESOURCE_ENDPOINT, ctx.server.emulator.endpoint)
    ns = run_block(
        block,
        ctx.namespace(entra_credential=entra_credential, CommunicationTokenCredential=CommunicationTokenCredential),
        source,
    )
    credential = ctx.closing(ns["credential"])
    assert entra_credential.scopes_asked == []  # nothing is sent until the first get_token()

    token = credential.get_token()
    secret_registry.register(token.token)

    assert entra_credential.scopes_asked == [("https://communication.azure.com/clients/VoIP",)]
    claims = ctx.server.claims(token.token)
    assert claims["skypeid"].startswith(f"acs:{ctx.server.emulator.resource_id}_")
    # The exchanged token expires with the Entra token, as the service's does.
    assert token.expires_on == entra_exp


# ---------------------------------------------------------------------------------------------------------
# Communication identifiers, service authentication, the emulator
# ---------------------------------------------------------------------------------------------------------


def check_identifiers(block: Block, ctx: Context) -> None:
    ns = run_block(block, ctx.namespace())

    # The block's own asserts ran; the comment that shows `wire` must also be what it is.
    (shown,) = re.findall(r"^# (\{.*\})$", block.source, flags=re.MULTILINE)
    assert ns["wire"] == ast.literal_eval(shown)
    assert ns["user"].kind == "communication_user"
    assert ns["phone"].kind == "phone_number"
    # "equal by raw id; hashable, picklable", as the comment says.
    assert {ns["phone"], ns["deserialize_identifier"](ns["wire"])} == {ns["phone"]}
    assert pickle.loads(pickle.dumps(ns["phone"])) == ns["phone"]  # noqa: S301 - our own object


def check_hmac_pipeline(block: Block, ctx: Context) -> None:
    emulator = ctx.server.emulator
    (connection_string,) = re.findall(r'"(endpoint=[^"]+)"', block.source)
    assert "<base64 key>" in connection_string
    assert RESOURCE_ENDPOINT in connection_string
    source = substitute(block.source, f'"{connection_string}"', repr(emulator.connection_string))
    ns = run_block(block, ctx.namespace(), source)
    ctx.exiting(ns["pipeline"])

    response = ns["response"]
    assert response.status_code == 201
    body = response.json()
    assert ns["key_credential"].key == emulator.access_key
    assert body["identity"]["id"].startswith(f"8:acs:{emulator.resource_id}_")
    claims = ctx.server.claims(ctx.server.secret_registry.register(body["accessToken"]["token"]))
    assert claims["skypeid"] == body["identity"]["id"].removeprefix("8:")
    assert claims["acsScope"] == "chat"


def check_httpx_and_requests(block: Block, ctx: Context) -> None:
    emulator = ctx.server.emulator
    endpoint, key_credential = parse_connection_string(emulator.connection_string)
    ns = run_block(block, ctx.namespace(endpoint=endpoint, key_credential=key_credential))

    for name in ("httpx_response", "requests_response"):
        response = ns[name]
        assert response.status_code == 201, name
        assert response.json()["identity"]["id"].startswith(f"8:acs:{emulator.resource_id}_"), name
    assert ns["httpx_response"].json()["identity"] != ns["requests_response"].json()["identity"]


# ---------------------------------------------------------------------------------------------------------
# Every block has its check
# ---------------------------------------------------------------------------------------------------------

CHECKS: dict[tuple[str, int], Callable[[Block, Context], None]] = {
    ("Create a credential with a static token", 0): check_static_token,
    ("Create a credential with a callback", 0): check_callback,
    ("Create a credential with proactive refresh", 0): check_proactive,
    ("Create a credential with proactive refresh and an initial token", 0): check_proactive_with_initial_token,
    ("With the official identity client", 0): check_identity_client,
    ("asyncio and trio", 0): check_asyncio,
    ("asyncio and trio", 1): check_chat_client,
    ("Entra ID (Teams extension and Entra users)", 0): check_entra,
    ("Communication identifiers", 0): check_identifiers,
    ("Service authentication (server side)", 0): check_hmac_pipeline,
    ("Service authentication (server side)", 1): check_httpx_and_requests,
    ("Offline development: the ACS emulator", 0): check_offline_https,
    ("Offline chat", 0): check_offline_chat,
    ("Troubleshooting 401s", 0): check_explained_401s,
    ("The control plane", 0): check_control_plane,
    ("Tests with the pytest plugin", 0): check_pytest_plugin,
}


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_readme_python_block(block: Block, context: Context) -> None:
    check = CHECKS.get(block.key)
    if check is None:
        pytest.fail(
            f"README.md line {block.line}: the python block #{block.ordinal} under {block.heading!r} "
            "has no check in tests/test_readme.py CHECKS"
        )
    check(block, context)


def test_every_python_block_has_exactly_one_check() -> None:
    found = [block.key for block in BLOCKS]
    assert len(found) == len(set(found))
    assert sorted(found) == sorted(CHECKS), "README python blocks and CHECKS differ (a block added, moved or removed)"
    assert len(BLOCKS) == README_TEXT.count("```python")


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_every_python_block_compiles_as_a_script(block: Block) -> None:
    # Issue 16: the asyncio example had a top-level `async with`, a SyntaxError once pasted into a script.
    # Compiled as a plain module (no top-level-await flag), exactly as written, before any substitution.
    compile(block.source, f"README.md:{block.line}", "exec", dont_inherit=True)
    tree = ast.parse(block.source)
    top_level_awaits = [
        node
        for statement in tree.body
        if not isinstance(statement, (ast.AsyncFunctionDef, ast.FunctionDef, ast.ClassDef))
        for node in ast.walk(statement)
        if isinstance(node, (ast.Await, ast.AsyncWith, ast.AsyncFor))
    ]
    assert top_level_awaits == []


def test_readme_opens_with_make_demo_and_make_test() -> None:
    fences, headings = read_fences(README_TEXT)
    first_section = next(h for h in headings if h.level >= 2)
    first = fences[0]
    commands = [line.split("#")[0].strip() for line in first.body.splitlines()]

    # The first thing a reader sees after the title: the two commands, before any section.
    assert [h.level for h in headings if h.line < first.line] == [1]
    assert first.line < first_section.line
    assert first.language == "bash"
    assert commands[:2] == ["make demo", "make test"]
