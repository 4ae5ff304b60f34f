"""The public surface: `__all__` is complete, sorted and matches the contract; optional libraries stay optional."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

import azure.communication.common as common
import azure.communication.common.aio as common_aio

SRC = Path(common.__file__).resolve().parents[3]

# The names ../shared/DESIGN.md makes public.
CONTRACT = {
    "AzureCommunicationTokenCredential",
    "CommunicationAccessKeyCredentialPolicy",
    "CommunicationCloudEnvironment",
    "CommunicationIdentifier",
    "CommunicationIdentifierKind",
    "CommunicationTokenCredential",
    "CommunicationUserIdentifier",
    "EndpointCredential",
    "MicrosoftTeamsAppIdentifier",
    "MicrosoftTeamsUserIdentifier",
    "PhoneNumberIdentifier",
    "TeamsExtensionUserIdentifier",
    "TokenRefresher",
    "UnknownIdentifier",
    "create_communication_auth_policy",
    "deserialize_identifier",
    "identifier_from_raw_id",
    "is_key_credential",
    "parse_client_arguments",
    "parse_connection_string",
    "serialize_identifier",
}
AIO_CONTRACT = {
    "AsyncTokenRefresher",
    "AzureCommunicationTokenCredential",
    "CommunicationTokenCredential",
    "create_communication_auth_policy",
}


def _public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } - {"annotations"}


@pytest.mark.parametrize(("module", "contract"), [(common, CONTRACT), (common_aio, AIO_CONTRACT)], ids=["sync", "aio"])
def test_all_is_sorted_complete_and_resolvable(module: types.ModuleType, contract: set[str]) -> None:
    exported = list(module.__all__)
    assert exported == sorted(exported)
    assert len(exported) == len(set(exported))
    assert contract <= set(exported), f"missing: {sorted(contract - set(exported))}"
    assert _public_names(module) <= set(exported) | {"VERSION"}
    for name in exported:
        assert getattr(module, name) is not None


def test_aliases_are_the_same_classes() -> None:
    assert common.AzureCommunicationTokenCredential is common.CommunicationTokenCredential
    assert common_aio.AzureCommunicationTokenCredential is common_aio.CommunicationTokenCredential
    assert common_aio.CommunicationTokenCredential is not common.CommunicationTokenCredential


def test_version_is_exposed() -> None:
    assert common.__version__ == common.VERSION
    assert common.VERSION.count(".") >= 2


def test_namespace_packages_have_no_init() -> None:
    assert not (SRC / "azure" / "__init__.py").exists()
    assert not (SRC / "azure" / "communication" / "__init__.py").exists()
    assert (SRC / "azure" / "communication" / "common" / "py.typed").exists()


def test_installs_beside_the_official_packages() -> None:
    # The official packages live in the same `azure.communication` namespace.
    import azure.communication.chat
    import azure.communication.identity

    # `azure.communication` is an implicit namespace package: no __init__.py of ours (or theirs) claims it,
    # so every package's directory is one of its path entries, however each was installed.
    assert getattr(azure.communication, "__file__", None) is None
    spanned = {str(Path(entry).resolve()) for entry in azure.communication.__path__}
    for package in (common, azure.communication.identity, azure.communication.chat):
        assert str(Path(package.__file__).resolve().parent.parent) in spanned, package.__name__


def test_core_import_pulls_in_no_optional_library() -> None:
    code = (
        "import sys, azure.communication.common, azure.communication.common.aio\n"
        "bad = [m for m in ('aiohttp', 'httpx', 'requests', 'jwt', 'cryptography', 'yarl') "
        "if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
