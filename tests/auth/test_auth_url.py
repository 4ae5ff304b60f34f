"""The canonical URL C(url): examples, errors, and property tests against yarl, requests and httpx."""

from __future__ import annotations

import httpx
import pytest
import requests
import yarl
from hypothesis import example, given
from hypothesis import strategies as st

from azure.communication.common._url import (
    CanonicalURL,
    _compile,
    _fast_path,
    _slow_path,
    canonical_url,
    canonicalize,
)

# The tests below call the two paths directly; canonicalize() compiles their patterns at its first miss.
_compile()

# Pieces that clients treat differently: escapes of reserved and unreserved characters in both cases,
# spaces, '+', '&', '=', dot segments, non-ASCII, characters that must be escaped, broken escapes, controls.
PIECES = [
    *"aZ0-._~/!$'()*,;:@&=+ ?#[]{}|\\^`\"<>\t\x7f",
    *("%3A", "%3a", "%2F", "%2f", "%7e", "%7E", "%20", "%2B", "%2b", "%26", "%3D", "%3B", "%23", "%25"),
    *("%2e", "%2E", "%3F", "%40", "%21", "%5B", "%C3%A9", "%e9", "%00", "%", "%zz", "%4"),
    *("..", ".", "é", "😀", "中文"),
]
HOSTS = ["h", "EXAMPLE.com", "h.", "127.0.0.1", "[::1]", "[0:0::1]", "bücher.de", "faß.DE", "a-b_c.d"]
PORTS = ["", ":", ":443", ":80", ":8080", ":0443", ":1"]

texts = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTPS"]))
    path = draw(texts).replace("?", "%3F").replace("#", "%23")
    if path and not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{draw(st.sampled_from(HOSTS))}{draw(st.sampled_from(PORTS))}{path}"
    if draw(st.booleans()):
        url += "?" + draw(texts).replace("#", "%23")
    if draw(st.booleans()):
        url += "#" + draw(texts)
    return url


def via_yarl(url: str) -> tuple[str, str | None]:
    # What aiohttp puts on the wire: ClientSession._request builds URL(str_or_url) (encoded=False), the
    # request line is raw_path_qs and the Host header host_port_subcomponent.
    parsed = yarl.URL(url)
    return parsed.raw_path_qs, parsed.host_port_subcomponent


def via_requests(url: str) -> str:
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.path_url


def via_httpx(url: str) -> tuple[str, str]:
    parsed = httpx.URL(url)
    return parsed.raw_path.decode("ascii"), parsed.netloc.decode("ascii")


@given(urls())
@example("https://h/a%3Ab%2Fc%7e d+e&f=g?q=a b+c&d=%2B%3D%26%3B%23%7e%3A%2F%3F%20&e=")
@example("https://h/a/%2e%2e/b/%2E/c?x=%41%5b%5D[]{}|\\^`")
@example("https://h./a\tb")
def test_canonical_form_is_a_fixed_point_of_yarl_requests_and_httpx(url: str) -> None:
    canonical = canonicalize(url)
    assert via_yarl(canonical.url) == (canonical.path_and_query, canonical.host)
    assert via_requests(canonical.url) == canonical.path_and_query
    assert via_httpx(canonical.url) == (canonical.path_and_query, canonical.host)


@given(urls())
def test_canonicalization_is_idempotent_and_the_fast_path_takes_its_output(url: str) -> None:
    canonical = canonicalize(url)
    assert canonicalize(canonical.url) == canonical
    assert _slow_path(canonical.url) == canonical
    if "@" not in canonical.url and "[" not in canonical.url:
        assert _fast_path(canonical.url) == canonical


@given(st.one_of(urls(), st.text(), texts.map(lambda text: "https://h" + text)))
def test_the_fast_path_only_accepts_what_the_full_path_leaves_unchanged(url: str) -> None:
    fast = _fast_path(url)
    try:
        slow = _slow_path(url)
    except ValueError:
        assert fast is None
        return
    assert fast is None or fast == slow == CanonicalURL(url, fast.host, fast.path_and_query)


@given(st.text())
def test_any_text_canonicalizes_or_raises_value_error(text: str) -> None:
    try:
        result = canonical_url(text)
    except ValueError:
        return
    assert result.isascii()
    assert result.startswith(("http://", "https://"))


@pytest.mark.parametrize(
    ("url", "expected", "host", "target"),
    [
        ("https://example.com", "https://example.com/", "example.com", "/"),
        (
            "https://example.com/testPath?testQuery=test",
            "https://example.com/testPath?testQuery=test",
            "example.com",
            "/testPath?testQuery=test",
        ),
        ("HTTPS://EXAMPLE.com:443/Path", "https://example.com/Path", "example.com", "/Path"),
        ("http://h:80/", "http://h/", "h", "/"),
        ("http://h:443/", "http://h:443/", "h:443", "/"),
        ("https://h:0443/x", "https://h/x", "h", "/x"),
        ("https://h:/x", "https://h/x", "h", "/x"),
        ("https://localhost:8080/path?x=1", "https://localhost:8080/path?x=1", "localhost:8080", "/path?x=1"),
        ("https://[0:0::1]:8080/x", "https://[::1]:8080/x", "[::1]:8080", "/x"),
        ("https://bücher.de/", "https://xn--bcher-kva.de/", "xn--bcher-kva.de", "/"),
        ("https://faß.de/", "https://xn--fa-hia.de/", "xn--fa-hia.de", "/"),
        ("https://h./", "https://h/", "h", "/"),
        (
            "https://acs.test/identities/8%3Aacs%3Ar_u?api-version=1",
            "https://acs.test/identities/8:acs:r_u?api-version=1",
            "acs.test",
            "/identities/8:acs:r_u?api-version=1",
        ),
        ("https://h/a%2fb%7e", "https://h/a%2Fb~", "h", "/a%2Fb~"),
        ("https://h/a b?c d=e f", "https://h/a%20b?c%20d=e%20f", "h", "/a%20b?c%20d=e%20f"),
        ("https://h/?q=%2b%26%3d%3b%3a%2f%3f", "https://h/?q=%2B%26%3D%3B:/?", "h", "/?q=%2B%26%3D%3B:/?"),
        ("https://h/a%2B%3B%3D%26", "https://h/a+;=&", "h", "/a+;=&"),
        ("https://h/é?é=ü", "https://h/%C3%A9?%C3%A9=%C3%BC", "h", "/%C3%A9?%C3%A9=%C3%BC"),
        ("https://h/%zz%", "https://h/%25zz%25", "h", "/%25zz%25"),
        ("https://h/a/../b/./c/.", "https://h/b/c/", "h", "/b/c/"),
        ("https://h/a/%2e%2E/b", "https://h/b", "h", "/b"),
        ("https://h/..", "https://h/", "h", "/"),
        ("https://h//a//b", "https://h//a//b", "h", "//a//b"),
        ("https://h/a?", "https://h/a", "h", "/a"),
        ("https://h/a?b#frag", "https://h/a?b", "h", "/a?b"),
        ("https://h/a?&", "https://h/a?&", "h", "/a?&"),
        ("  https://h/a\n", "https://h/a", "h", "/a"),
        ("https://h/a\tb", "https://h/a%09b", "h", "/a%09b"),
        ("https://%41.test/", "https://a.test/", "a.test", "/"),
    ],
)
def test_examples(url: str, expected: str, host: str, target: str) -> None:
    assert canonicalize(url) == CanonicalURL(expected, host, target)
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/relative/path", "absolute http or https URL"),
        ("example.com/path", "absolute http or https URL"),
        ("ftp://example.com/", "http or https"),
        ("https:///path", "no host"),
        ("https://exa mple.com/", "host"),
        ("https://h:99999/", "port"),
        ("https://h:8a/", "port"),
        ("https://[::1/", "closing"),
        ("https://[::1]x/", "after the URL's IPv6 host"),
        ("https://[fe80::1%25eth0]/", "zone"),
        ("https://[not-ipv6]/", "IPv6"),
        ("https://\u0080.de/", "internationalised"),
        ("https://%ff.de/", "UTF-8"),
        ("https://h/\ud800", "surrogate"),
        ("https://u%3a:p@w@h/x", "user info"),
        ("https://user:pass@h/", "user info"),
        ("https://user@h/", "user info"),
        ("HTTP://:secret-password@H:8080/x?y", "user info"),
        ("https://@h/", "user info"),
    ],
)
def test_invalid_urls_raise_value_error(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        canonicalize(url)
    assert "pass" not in str(raised.value).replace("password@", "")
    assert "secret" not in str(raised.value)


def test_a_non_string_url_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be a str, not bytes"):
        canonicalize(b"https://h/")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/identities/8:acs:r_u/:issueAccessToken?api-version=2023-10-01",
        "http://127.0.0.1:8080/a%2Fb/%C3%A9?x=%26%2B&y=",
        "https://h/.well-known/x",
    ],
)
def test_canonical_urls_take_the_fast_path(url: str) -> None:
    slow = _slow_path(url)
    assert _fast_path(url) == slow == CanonicalURL(url, slow.host, slow.path_and_query)
    assert hash(_fast_path(url)) == hash(slow)
    assert tuple(slow) == (slow.url, slow.host, slow.path_and_query)
    assert repr(slow).startswith(f"CanonicalURL(url={url!r}, host=")
    assert slow != tuple(slow)


@pytest.mark.parametrize(
    "url",
    [
        "https://h:443/",
        "https://h:70000/",
        "https://h/%2e/",
        "https://h/a/..",
        "https://h/%7e",
        "https://h/?%3a",
        "https://h/%e9",
        "https://h/%",
        "https://EXAMPLE.com/",
    ],
)
def test_urls_that_need_work_skip_the_fast_path(url: str) -> None:
    assert _fast_path(url) is None


def test_results_are_cached_and_the_cache_stays_bounded() -> None:
    from azure.communication.common import _url

    url = "https://h/cache%3Atest"
    first = canonicalize(url)
    assert _url._cache[url] is first
    assert canonicalize(url) is first
    for number in range(_url._CACHE_SIZE + 10):
        canonicalize(f"https://h/{number}")
    assert 0 < len(_url._cache) <= _url._CACHE_SIZE
    assert canonicalize(url) == first
