"""A lighter import: names load on first use, identifiers and the CLI's offline commands need no azure-core,
the public surface stays exact, and optional integrations say which extra to install.

Each check that depends on what a fresh interpreter has imported runs in a subprocess; the timings
themselves are measured by ``bench/case_startup.py``, never asserted here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import azure.communication.common as common
import azure.communication.common.aio as common_aio

PACKAGE = Path(common.__file__).resolve().parent


def _run(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


LOADED = "print(json.dumps(sorted(m for m in sys.modules if m == 'azure.core' or m.startswith('azure.core.'))))"


def test_identifiers_only_use_imports_no_azure_core() -> None:
    code = (
        "import json, sys\n"
        "import azure.communication.common as c\n"
        "assert c.identifier_from_raw_id('4:+14255550123').kind.value == 'phone_number'\n"
        "wire = c.serialize_identifier(c.CommunicationUserIdentifier('8:acs:r_u'))\n"
        "assert c.deserialize_identifier(wire).raw_id == '8:acs:r_u'\n"
        "assert c.CommunicationCloudEnvironment.PUBLIC.value == 'PUBLIC'\n"
        "print(json.dumps({'core': sorted(m for m in sys.modules if m.startswith('azure.core')),\n"
        "                  'ours': sorted(m for m in sys.modules if m.startswith('azure.communication.common'))}))\n"
    )
    result = _run(code)
    assert result["core"] == []
    # Only what identifiers need was loaded (no credential, policy or token modules).
    assert set(result["ours"]) == {  # type: ignore[arg-type]
        "azure.communication.common",
        "azure.communication.common._version",
        "azure.communication.common._identifiers",
        "azure.communication.common._wire",
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["id", "parse", "4:+14255550123"],
        ["id", "wire", '{"communicationUser": {"id": "8:acs:r_u"}}'],
        ["token", "inspect", "not-a-token"],
        ["--no-color", "token", "inspect", "--json", "a.b.c"],
    ],
    ids=["id-parse", "id-wire", "token-inspect", "token-inspect-json"],
)
def test_the_offline_cli_commands_import_no_azure_core(argv: list[str]) -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "from azure.communication.common._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    code = main({argv!r})\n"
        "print(json.dumps({'code': code, 'printed': bool(out.getvalue()),\n"
        "                  'core': sorted(m for m in sys.modules if m.startswith('azure.core'))}))\n"
    )
    result = _run(code)
    assert result["printed"] is True
    assert result["code"] in (0, 1)  # inspect's verdict on junk is 1 (not a JWT), as documented
    assert result["core"] == []


def test_the_full_import_still_loads_everything_on_use() -> None:
    code = (
        "import json, sys\n"
        "from azure.communication.common import *\n"
        "from azure.communication.common.aio import *\n"
        "import azure.communication.common as c\n"
        "print(json.dumps({'missing': [n for n in c.__all__ if n not in vars(c)],\n"
        "                  'core': 'azure.core.credentials' in sys.modules}))\n"
    )
    assert _run(code) == {"missing": [], "core": True}


def _type_checking_names(path: Path) -> dict[str, str]:
    """Names imported in the module's ``if ...TYPE_CHECKING:`` block, mapped to their relative module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                for alias in statement.names:
                    names[alias.asname or alias.name] = "." * statement.level + (statement.module or "")
    return names


@pytest.mark.parametrize(
    ("module", "init"), [(common, "__init__.py"), (common_aio, "aio/__init__.py")], ids=["sync", "aio"]
)
def test_lazy_table_type_checking_block_and_all_agree(module: types.ModuleType, init: str) -> None:
    lazy: dict[str, str] = module._LAZY  # type: ignore[attr-defined]
    eager = {"VERSION", "__version__"} if module is common else set()
    # Type checkers see exactly the lazily loaded names, from the same modules.
    assert _type_checking_names(PACKAGE / init) == lazy
    assert set(module.__all__) == set(lazy) | eager
    for name, where in lazy.items():
        assert getattr(module, name) is getattr(sys.modules[module.__name__ + where], name)
    listed = dir(module)
    assert set(module.__all__) <= set(listed)
    assert listed == sorted(listed)


def test_the_packages_load_no_typing_and_leave_no_helper_names() -> None:
    result = _run(
        "import json, sys\nimport azure.communication.common as c, azure.communication.common.aio as a\n"
        "typing = 'typing' in sys.modules and 'coverage' not in sys.modules  # subprocess coverage imports it\n"
        "print(json.dumps({'typing': typing, 'names': sorted(set(vars(c)) | set(vars(a)))}))\n"
    )
    # typing costs more than the whole package: `import azure.communication.common` alone does not load it.
    assert result["typing"] is False
    assert "TYPE_CHECKING" not in result["names"]  # type: ignore[operator]


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchName'"):
        common.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match=r"azure\.communication\.common\.aio"):
        common_aio.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'NoSuchName'"):
        from azure.communication.common import NoSuchName  # type: ignore[attr-defined]  # noqa: F401


def test_a_loaded_name_is_cached_in_the_module() -> None:
    value = common.parse_connection_string
    assert vars(common)["parse_connection_string"] is value


def test_the_cli_expiry_threshold_is_the_proactive_window() -> None:
    # Written out in the CLI so that `token inspect` loads no azure-core; pinned to the credential's here.
    from azure.communication.common._cli import _inspect
    from azure.communication.common._refresh import PROACTIVE_WINDOW

    assert _inspect.EXPIRES_SOON_SECONDS == PROACTIVE_WINDOW


@pytest.mark.parametrize("library", ["httpx", "requests"])
def test_an_optional_integration_without_its_library_names_the_extra(library: str) -> None:
    code = (
        "import json, sys\n"
        f"sys.modules[{library!r}] = None  # blocked: importing it raises ModuleNotFoundError\n"
        "try:\n"
        f"    import azure.communication.common.{library}\n"
        "except ImportError as exc:\n"
        "    print(json.dumps({'type': type(exc).__name__, 'message': str(exc), 'name': exc.name,\n"
        "                      'chained': exc.__cause__ is not None, 'shown': not exc.__suppress_context__}))\n"
    )
    result = _run(code)
    assert result == {
        "type": "ImportError",
        "message": f"azure.communication.common.{library} needs the {library} library: "
        f"pip install 'azure-communication-common[{library}]'",
        "name": library,
        "chained": False,
        "shown": False,
    }
