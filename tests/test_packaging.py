"""Release hygiene of both distributions, checked on the artefacts a release would upload.

One module fixture builds the library (the repository root) and the emulator (``emulator/``) the way a release
does with ``python -m build --no-isolation``: the sdist first, then the wheel built from that sdist, so a file
missing from the sdist breaks the wheel build here. It calls the build backend's PEP 517 hooks in-process, as
``build`` does in its subprocesses, which saves seconds of interpreter start-ups. The tests then read the four
archives: the licence and changelog in each, the library wheel free of emulator code, the published metadata
(classifiers, extras, a PyPI description without repository-relative links) and ``twine check --strict``, run
as the command a release runs.
"""

from __future__ import annotations

import email.parser
import hashlib
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LICENSE_TEXT = (ROOT / "LICENSE").read_text(encoding="utf-8")

# Markdown links and images whose target is neither absolute nor an anchor would be broken on PyPI.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")
# The emulator's HTTP server is aiohttp.web; the library is a client only.
_SERVER_CODE = re.compile(rb"aiohttp\s+import\s+web\b|aiohttp\.web\b")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class Dist:
    """The wheel and sdist of one distribution, and what they hold."""

    name: str
    source: Path
    wheel: Path
    sdist: Path

    def wheel_files(self) -> dict[str, bytes]:
        with zipfile.ZipFile(self.wheel) as archive:
            return {name: archive.read(name) for name in archive.namelist()}

    def sdist_files(self) -> dict[str, bytes]:
        with tarfile.open(self.sdist) as archive:
            files: dict[str, bytes] = {}
            for member in archive.getmembers():
                extracted = archive.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    # Drop the archive's top folder (name-version/).
                    files[member.name.split("/", 1)[1]] = extracted.read()
            return files

    def metadata(self) -> Message:
        (name,) = (n for n in self.wheel_files() if n.endswith(".dist-info/METADATA"))
        return email.parser.BytesParser().parsebytes(self.wheel_files()[name])


def build(source: Path, out: Path) -> tuple[Path, Path]:
    """Build a distribution as ``python -m build --no-isolation`` does, with the PEP 517 hooks in-process.

    The sdist is built from the source tree, and the wheel from that sdist unpacked (as ``build`` does), so a
    file the wheel needs but the sdist lacks fails here.
    """
    from hatchling import build as backend

    out.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(source)
        sdist = out / backend.build_sdist(str(out))
        with tarfile.open(sdist) as archive:
            archive.extractall(out / "unpacked", filter="data")
        (unpacked,) = (out / "unpacked").iterdir()
        patch.chdir(unpacked)
        wheel = out / backend.build_wheel(str(out))
    return wheel, sdist


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dist]:
    out = tmp_path_factory.mktemp("dist")
    sources = {"azure-communication-common": ROOT, "acs-emulator": ROOT / "emulator"}
    return {name: Dist(name, source, *build(source, out / name)) for name, source in sources.items()}


@pytest.mark.parametrize("name", ["azure-communication-common", "acs-emulator"])
def test_wheel_and_sdist_carry_the_license_and_the_changelog(dists: dict[str, Dist], name: str) -> None:
    dist = dists[name]
    changelog = (dist.source / "CHANGELOG.md").read_bytes()
    assert (dist.source / "LICENSE").read_text(encoding="utf-8") == LICENSE_TEXT
    assert "MIT License" in LICENSE_TEXT

    wheel = dist.wheel_files()
    licenses = [n for n in wheel if re.fullmatch(r"[^/]+\.dist-info/licenses/LICENSE", n)]
    changelogs = [n for n in wheel if n.endswith(".dist-info/extra_metadata/CHANGELOG.md")]
    assert [wheel[n].decode() for n in licenses] == [LICENSE_TEXT]
    assert [wheel[n] for n in changelogs] == [changelog]

    sdist = dist.sdist_files()
    assert sdist["LICENSE"].decode() == LICENSE_TEXT
    assert sdist["CHANGELOG.md"] == changelog
    # Keep a Changelog: an Unreleased section above the released ones.
    assert changelog.decode().splitlines()[0] == "# Changelog"
    assert "## [Unreleased]" in changelog.decode()


def test_library_wheel_holds_no_emulator_code(dists: dict[str, Dist]) -> None:
    library = dists["azure-communication-common"].wheel_files()
    emulator = dists["acs-emulator"].wheel_files()

    code = [n for n in library if not n.split("/")[0].endswith(".dist-info")]
    assert not [n for n in library if "acs_emulator" in n]
    assert code, "the library wheel holds no code at all"
    assert all(n.startswith("azure/communication/common/") for n in code), code
    # No emulator module was copied in under another name, and no HTTP server code came along.
    emulator_code = {sha256(data) for n, data in emulator.items() if n.endswith(".py")} - {sha256(b"")}
    assert not [n for n in code if sha256(library[n]) in emulator_code]
    assert not [n for n in code if n.endswith(".py") and _SERVER_CODE.search(library[n])]
    # The emulator wheel, for its part, ships no copy of the library: it depends on it.
    assert any(n.startswith("acs_emulator/") for n in emulator)
    assert not [n for n in emulator if n.startswith("azure/")]


def test_published_metadata(dists: dict[str, Dist]) -> None:
    library = dists["azure-communication-common"].metadata()
    emulator = dists["acs-emulator"].metadata()

    # Development tools are dependency groups, never published extras.
    assert sorted(library.get_all("Provides-Extra") or []) == ["aio", "emulator", "httpx", "requests"]
    assert emulator.get_all("Provides-Extra") is None
    requires = library.get_all("Requires-Dist") or []
    assert [r for r in requires if "extra ==" not in r] == ["azure-core>=1.31"]
    assert any(re.fullmatch(r"acs-emulator\S*; extra == ['\"]emulator['\"]", r) for r in requires), requires
    for metadata in (library, emulator):
        classifiers = metadata.get_all("Classifier") or []
        assert "License :: OSI Approved :: MIT License" in classifiers
        assert [c for c in classifiers if c.startswith("Development Status :: ")] == ["Development Status :: 4 - Beta"]
        # Only the Python versions CI runs or the README says how it checks (3.10 to 3.13).
        versions = sorted(c.rsplit(" ", 1)[1] for c in classifiers if re.fullmatch(r".*Python :: 3\.\d+", c))
        assert versions == ["3.10", "3.11", "3.12", "3.13"]
        assert metadata["Requires-Python"] == ">=3.10"
        assert metadata["License"] == "MIT"
        assert metadata["Description-Content-Type"] == "text/markdown"


@pytest.mark.parametrize("name", ["azure-communication-common", "acs-emulator"])
def test_description_has_no_repository_relative_links(dists: dict[str, Dist], name: str) -> None:
    description = dists[name].metadata().get_payload()
    assert isinstance(description, str)
    assert "pip install" in description
    links = _LINK.findall(description)
    relative = [link for link in links if not re.match(r"(https?://|#)", link)]
    assert relative == []
    # The check itself: a relative link is caught.
    assert _LINK.findall("see [the benchmarks](BENCHMARKS.md)") == ["BENCHMARKS.md"]


def test_twine_check_strict_passes_on_both(dists: dict[str, Dist]) -> None:
    files = [str(path) for dist in dists.values() for path in (dist.wheel, dist.sdist)]
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True,
        text=True,
        timeout=120,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 4, result.stdout
