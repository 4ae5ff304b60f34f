"""HTTPS for the emulator: a local certificate authority made for the run, and the server's TLS context.

The official clients' ``from_connection_string`` insists on ``https://`` endpoints, and their bearer policies refuse
to send user tokens over plain HTTP. ``Emulator(https=True)`` therefore serves TLS with a leaf certificate for the
bound host, issued by a CA that exists only for this emulator; clients trust it through ``connection_verify=``
(azure-core), ``verify=`` (requests, httpx) or ``ssl=`` (aiohttp) set to :attr:`Emulator.ca_bundle`.

With a database file, the CA's certificate and key are kept beside it (``<database>.ca.pem`` and
``<database>.ca-key.pem``), so a client configured once keeps trusting the emulator across restarts. Without one,
both live in a temporary folder removed at stop.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Final

import trustme

__all__ = ["LocalAuthority"]

_ORGANIZATION: Final = "acs-emulator local CA"


def _identities(host: str) -> list[str]:
    names = ["127.0.0.1", "localhost", "::1"]
    try:
        text = str(ipaddress.ip_address(host))
    except ValueError:
        text = host
    if text not in names and text not in ("0.0.0.0", "::"):  # noqa: S104 - names, not a bind
        names.append(text)
    return names


class LocalAuthority:
    """A CA for one emulator, its PEM bundle on disk, and a server certificate for ``host``.

    Args:
        host: the address the emulator binds (it and the loopback names go in the certificate).
        database: the emulator's database file, beside which the CA is kept; None for a temporary folder.

    Raises:
        ValueError: a CA file beside the database exists but cannot be read as a certificate and key.
    """

    def __init__(self, host: str, database: str | os.PathLike[str] | None) -> None:
        self._temporary: str | None = None
        if database is None:
            self._temporary = tempfile.mkdtemp(prefix="acs-emulator-tls-")
            cert_path = Path(self._temporary, "ca.pem")
            key_path = Path(self._temporary, "ca-key.pem")
        else:
            base = Path(os.fspath(database))
            cert_path = base.with_name(base.name + ".ca.pem")
            key_path = base.with_name(base.name + ".ca-key.pem")
        if cert_path.exists() and key_path.exists():
            try:
                ca = trustme.CA.from_pem(cert_path.read_bytes(), key_path.read_bytes())
            except (ValueError, TypeError, OSError):
                raise ValueError(f"The CA files beside the database cannot be read: {cert_path}") from None
        else:
            ca = trustme.CA(organization_name=_ORGANIZATION)
            key_path.write_bytes(ca.private_key_pem.bytes())
            os.chmod(key_path, 0o600)
            cert_path.write_bytes(ca.cert_pem.bytes())
        self._ca = ca
        self._leaf = ca.issue_cert(*_identities(host), organization_name=_ORGANIZATION)
        self.ca_bundle = str(cert_path)

    def server_context(self) -> ssl.SSLContext:
        """A TLS 1.2+ server context holding the leaf certificate and its chain."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._leaf.configure_cert(context)
        return context

    def close(self) -> None:
        """Remove the temporary folder (a CA kept beside a database stays)."""
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None
