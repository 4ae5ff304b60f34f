"""The canonical form C(url) of a request URL: what gets signed is exactly what goes on the wire.

HTTP clients rewrite URLs before sending them, each in its own way: aiohttp (through yarl) decodes ``%3A``
to ``:`` and ``%7E`` to ``~``, requests decodes only unreserved escapes and upper-cases the rest, httpx
leaves escapes alone but keeps ``[``, ``{`` or ``|`` unescaped in the query. A signature computed over the URL
the caller wrote would then not match the request target the service receives. C(url) is a *fixed point* of
all three: each of them sends C(url)'s path and query byte for byte, so signing C(url) and sending C(url) is
always consistent, whatever the transport.

The rules (DESIGN.md section 4 item 1), per RFC 3986:

- scheme and host lower case, a non-ASCII host IDNA-encoded (UTS 46, as yarl, requests and httpx do), a
  single trailing dot of the host dropped (yarl sends ``Host: h`` for ``https://h./`` while httpx sends
  ``h.``: without the dot all three agree), IPv6 addresses compressed (yarl compresses them, the others do
  not: compressed, all agree), the default port and an empty port dropped (requests keeps an explicit
  ``:443`` in the URL, yarl and httpx drop it: dropped, all agree);
- dot segments removed (after decoding ``%2E``), ``/`` for an empty path;
- an empty query (a bare ``?``) and the fragment dropped;
- ``%XX`` decoded where the character is legal unescaped in its component (unreserved characters,
  sub-delims, ``:`` and ``@``, and ``/`` ``?`` in the query), except ``%2F`` in the path and
  ``%26 %3D %2B %3B`` (``& = + ;``) in the query, which carry meaning there; remaining escapes upper case;
- everything else UTF-8 percent-encoded, a space as ``%20`` (yarl would turn a literal space in a query into
  ``+``, but leaves ``%20`` alone), control characters included (yarl silently deletes a tab, httpx rejects
  it: encoded, all three send ``%09``); a ``%`` not starting a valid escape becomes ``%25``.

Leading and trailing spaces and control characters around the whole URL are stripped, as every client does.
A URL with user info (``https://user:pass@host/``) is refused with ``ValueError``: requests would send the
password as Basic auth in place of the signature, and aiohttp refuses such URLs.

Pure code, standard library only (plus ``idna``, which azure-core brings through requests, for non-ASCII
hosts), with a fast path for URLs that are already canonical and a small cache of recent results.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Final

__all__ = ["CanonicalURL", "canonical_url", "canonicalize"]

_UNRESERVED: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_SUB_DELIMS: Final = "!$&'()*+,;="

# Characters each component may hold unescaped in canonical form.
_PATH_LITERAL: Final = frozenset(_UNRESERVED + _SUB_DELIMS + ":@/")
_QUERY_LITERAL: Final = frozenset(_UNRESERVED + _SUB_DELIMS + ":@/?")

# Escapes decoded to their character: legal unescaped, and meaning the same escaped or not. ``%2F`` stays
# in the path (a slash would split a segment) and ``& = + ;`` stay escaped in the query (they separate or
# encode form fields).
_PATH_DECODE: Final = _PATH_LITERAL - {"/"}
_QUERY_DECODE: Final = _QUERY_LITERAL - set("&=+;")

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

# Leading/trailing characters every client strips: C0 controls and space.
_STRIP: Final = "".join(map(chr, range(0x21)))

# The patterns are compiled at the first URL that misses the cache (see _compile), not at import: compiling
# them is most of this module's import time, which every ``import azure.communication.common`` would pay.
# RFC 3986 appendix B, with the authority required (an absolute URL).
_URL_PATTERN: Final = r"(?P<scheme>[^:/?#]+)://(?P<authority>[^/?#]*)(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#.*)?"
# Fast path: an http(s) URL whose every character is one a canonical URL may hold in its place. Escapes,
# dot segments and the port still get a closer look in ``_fast_path``.
_FAST_PATTERN: Final = (
    r"(https?)://([a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*)(?::([1-9][0-9]{0,4}))?"
    r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*)(?:\?([A-Za-z0-9\-._~!$&'()*+,;=:@/?%]+))?"
)
_HOST_PATTERN: Final = r"[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*"

_URL_RE: re.Pattern[str]
_FAST_RE: re.Pattern[str]
_ESCAPE_RE: re.Pattern[str]
_DOT_SEGMENT_RE: re.Pattern[str]
_HOST_RE: re.Pattern[str]
_PATH: _Component
_QUERY: _Component
_compiled = False


def _compile() -> None:
    global _URL_RE, _FAST_RE, _ESCAPE_RE, _DOT_SEGMENT_RE, _HOST_RE, _PATH, _QUERY, _compiled
    _URL_RE = re.compile(_URL_PATTERN, re.DOTALL)
    _FAST_RE = re.compile(_FAST_PATTERN)
    _ESCAPE_RE = re.compile(r"%([0-9A-F]{2})")
    _DOT_SEGMENT_RE = re.compile(r"/\.\.?(?:/|$)")
    _HOST_RE = re.compile(_HOST_PATTERN)
    _PATH = _Component(_PATH_LITERAL, _PATH_DECODE)
    _QUERY = _Component(_QUERY_LITERAL, _QUERY_DECODE)
    _compiled = True


# C is pure, and a service client calls the same few URLs over and over: remember recent results. Clearing
# when full keeps the memory bounded without LRU bookkeeping on the hot path; single dict operations are
# atomic, so threads need no lock.
_CACHE_SIZE: Final = 1024
_cache: dict[str, CanonicalURL] = {}


class CanonicalURL:
    """A canonical URL and the two pieces of it that are signed (immutable by convention, compared by value).

    A plain slotted class rather than a ``NamedTuple``: building a ``NamedTuple`` class costs about 0.1 ms
    at import, and slot reads are the cheapest attribute reads on the signing path.
    """

    __slots__ = ("host", "path_and_query", "url")

    url: str
    """The whole canonical URL (``scheme://host[:port]/path[?query]``)."""
    host: str
    """``host[:port]``: the ``Host`` header every client sends for :attr:`url`."""
    path_and_query: str
    """The request target every client sends for :attr:`url`."""

    def __init__(self, url: str, host: str, path_and_query: str) -> None:
        self.url = url
        self.host = host
        self.path_and_query = path_and_query

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CanonicalURL):
            return NotImplemented
        return (self.url, self.host, self.path_and_query) == (other.url, other.host, other.path_and_query)

    def __hash__(self) -> int:
        return hash((self.url, self.host, self.path_and_query))

    def __iter__(self) -> Iterator[str]:
        return iter((self.url, self.host, self.path_and_query))

    def __repr__(self) -> str:
        return f"CanonicalURL(url={self.url!r}, host={self.host!r}, path_and_query={self.path_and_query!r})"


def canonical_url(url: str) -> str:
    """Return C(url), the canonical form of an absolute http(s) URL.

    Raises:
        TypeError: ``url`` is not a string.
        ValueError: ``url`` is not an absolute http(s) URL with a valid host and port.
    """
    return canonicalize(url).url


def canonicalize(url: str) -> CanonicalURL:
    """Return C(url) together with its signed ``host[:port]`` and path-and-query.

    Raises:
        TypeError: ``url`` is not a string.
        ValueError: ``url`` is not an absolute http(s) URL with a valid host and port.
    """
    if not isinstance(url, str):
        raise TypeError(f"The URL must be a str, not {type(url).__name__}.")
    cached = _cache.get(url)
    if cached is not None:
        return cached
    if not _compiled:
        _compile()
    result = _fast_path(url) or _slow_path(url)
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[url] = result
    return result


def _fast_path(url: str) -> CanonicalURL | None:
    """Recognise an already-canonical URL cheaply; None means "take the full path"."""
    match = _FAST_RE.fullmatch(url)
    if match is None:
        return None
    scheme, host, port, path, query = match.groups()
    if port is not None:
        number = int(port)
        if number > 65535 or number == _DEFAULT_PORTS[scheme]:
            return None
        host = f"{host}:{port}"
    if "%" in url:
        # Every escape must be upper case and one that stays escaped in its component.
        if url.count("%") != len(_ESCAPE_RE.findall(url)):
            return None
        for code in _ESCAPE_RE.findall(path):
            if chr(int(code, 16)) in _PATH_DECODE:
                return None
        if query:
            for code in _ESCAPE_RE.findall(query):
                if chr(int(code, 16)) in _QUERY_DECODE:
                    return None
    if "/." in path and _DOT_SEGMENT_RE.search(path):
        return None
    return CanonicalURL(url, host, f"{path}?{query}" if query else path)


def _slow_path(url: str) -> CanonicalURL:
    match = _URL_RE.fullmatch(url.strip(_STRIP))
    if match is None:
        raise ValueError("Expected an absolute http or https URL (scheme://host/path).")
    scheme = match["scheme"].lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("Expected an http or https URL; other schemes cannot be signed.")
    if "@" in match["authority"]:
        # requests would replace the HMAC signature with Basic auth and send the password; aiohttp refuses.
        raise ValueError(
            "The URL holds user info ('user:password@' before the host): it cannot be signed, and some HTTP "
            "clients would send it as Basic auth instead of the signature. Remove it from the URL."
        )
    host, port = _split_host_port(match["authority"])
    host = _canonical_host(host)
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    path = _remove_dot_segments(_PATH.normalize(match["path"])) or "/"
    query = match["query"]
    target = f"{path}?{_QUERY.normalize(query)}" if query else path
    return CanonicalURL(f"{scheme}://{host}{target}", host, target)


def _split_host_port(hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("The URL's IPv6 host has no closing ']'.")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("Unexpected characters after the URL's IPv6 host.")
        port = rest[1:]
    else:
        host, _, port = hostport.partition(":")
    if not port:
        return host, None
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError("The URL's port must be a number from 0 to 65535.")
    return host, int(port)


def _canonical_host(host: str) -> str:
    if host.startswith("["):
        inner = host[1:-1]
        if "%" in inner:
            raise ValueError("IPv6 zone identifiers are not supported in URLs to sign.")
        try:
            return f"[{ipaddress.IPv6Address(inner).compressed}]"
        except ValueError:
            raise ValueError("The URL's host is not a valid IPv6 address.") from None
    if "%" in host:
        host = _unquote(host)
    host = host.lower()
    if not host.isascii():
        host = _idna_encode(host)
    if host.endswith("."):
        host = host[:-1]
    if not _HOST_RE.fullmatch(host):
        raise ValueError("The URL has no host, or its host contains characters not allowed in a host name.")
    return host


def _idna_encode(host: str) -> str:
    try:
        # ``idna`` ships with requests, which azure-core depends on; the import is lazy because only
        # non-ASCII hosts need it.
        import idna
    except ImportError:  # pragma: no cover - azure-core always brings requests and idna
        try:
            return host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("The URL's host is not a valid internationalised domain name.") from None
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise ValueError("The URL's host is not a valid internationalised domain name.") from None


def _unquote(text: str) -> str:
    """Decode ``%XX`` escapes as UTF-8 (used for hosts only)."""
    try:
        return re.sub(
            r"(?:%[0-9A-Fa-f]{2})+",
            lambda m: bytes.fromhex(m[0].replace("%", "")).decode("utf-8"),
            text,
        )
    except UnicodeDecodeError:
        raise ValueError("The URL's host holds escapes that are not UTF-8.") from None


class _Component:
    """How one URL component is normalised: which characters stay literal, which escapes get decoded."""

    __slots__ = ("_decode", "_tokens")

    def __init__(self, literal: frozenset[str], decode: frozenset[str]) -> None:
        self._decode = decode
        # A valid escape, or one character that may not appear literally (``%`` included, so that a ``%``
        # not starting a valid escape gets encoded).
        allowed = re.escape("".join(sorted(literal)))
        self._tokens = re.compile(f"%[0-9A-Fa-f]{{2}}|[^{allowed}]", re.DOTALL)

    def normalize(self, text: str) -> str:
        """Decode the escapes in ``decode``, upper-case the others, percent-encode illegal characters."""
        return self._tokens.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        token = match[0]
        if len(token) == 3:
            char = chr(int(token[1:], 16))
            return char if char in self._decode else token.upper()
        try:
            data = token.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("The URL contains a lone surrogate character.") from None
        return "".join(f"%{byte:02X}" for byte in data)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for a path that is empty or starts with ``/``."""
    if "." not in path:
        return path
    segments = path.split("/")
    if not any(segment in (".", "..") for segment in segments):
        return path
    output: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    # A path ending in "." or ".." names a directory: keep its trailing slash.
    if segments[-1] in (".", ".."):
        output.append("")
    return "/" + "/".join(output)
