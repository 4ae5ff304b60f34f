"""Request bodies as the bytes that are signed: the one body normaliser of every signer.

The content hash covers the exact bytes sent, so a body that is not bytes yet (text, JSON, a form, a file)
is turned into bytes here, and the signer puts those bytes on the request itself. Used by the azure-core
policy (:mod:`._policy`) and the requests adapter; httpx hands its auth the body bytes already.

azure-core requests are read through their public API where one exists: ``content`` of the REST request,
``data``/``files``/``multipart_mixed_info`` and ``set_bytes_body`` of the legacy one. The REST request has no
public way to tell a multipart body or to replace the body, so three private attributes are still read or
written; ``tests/auth/test_auth_body.py`` pins each one against the installed azure-core and fails loudly
when one is renamed (a rename would otherwise sign every POST over an empty body).
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

from azure.core.rest import HttpRequest as RestHttpRequest

from ._signing import EMPTY_CONTENT_HASH, content_hash

__all__ = [
    "FORM_CONTENT_TYPE",
    "REST_PRIVATE_ATTRIBUTES",
    "form_body",
    "hash_body",
    "hash_file",
    "sign_request_body",
]

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"

#: The private attributes of ``azure.core.rest.HttpRequest`` this module relies on (pinned by a test):
#: the body (read through ``content``, written here), the multipart files, and the multipart/mixed parts.
REST_PRIVATE_ATTRIBUTES: Final = ("_data", "_files", "_multipart_mixed_info_val")

# Files are hashed in chunks this large: big enough that the per-call overhead vanishes next to SHA-256.
_FILE_CHUNK: Final = 1 << 20


def hash_file(stream: Any) -> str:
    """Hash a seekable binary file from its current position to its end, then rewind to that position.

    Raises:
        ValueError: the file is not seekable or is open in text mode.
    """
    seekable = getattr(stream, "seekable", None)
    if seekable is None or not seekable():
        raise ValueError(
            "Cannot sign a request whose body is a non-seekable stream: it would have to be consumed "
            "to be hashed. Pass bytes or a seekable binary file."
        )
    import hashlib  # only here: see _signing for why hashlib is not imported with the package

    start = stream.tell()
    digest = hashlib.sha256()
    try:
        while chunk := stream.read(_FILE_CHUNK):
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise ValueError("Cannot sign a request whose body is a text-mode file: open it in binary mode ('rb').")
            digest.update(chunk)
    finally:
        stream.seek(start)
    return b64encode(digest.digest()).decode("ascii")


def form_body(fields: Mapping[Any, Any]) -> bytes:
    """Encode form fields as ``application/x-www-form-urlencoded`` (lists repeat the field; None is skipped)."""
    pairs = [(name, value) for name, value in fields.items() if value is not None]
    return urlencode(pairs, doseq=True).encode("ascii")


def hash_body(data: object) -> tuple[str, bytes | None]:
    """Hash a request body the way every signer here does.

    str is UTF-8, bytearray and memoryview are frozen to bytes, a form dict is urlencoded, a seekable binary
    file is hashed in chunks and rewound; ``None`` is the empty body.

    Returns:
        The content hash, and the bytes to send instead of ``data`` when they differ from it (``None`` when
        ``data`` is sent as it is: ``None``, bytes or a file).

    Raises:
        ValueError: the body cannot be hashed without being consumed (iterables, async iterables,
            non-seekable or text-mode files) or is of another type.
    """
    if data is None:
        return EMPTY_CONTENT_HASH, None
    if isinstance(data, bytes):
        return content_hash(data), None
    if isinstance(data, str):
        body = data.encode("utf-8")
    elif isinstance(data, (bytearray, memoryview)):
        body = bytes(data)
    elif isinstance(data, Mapping):
        body = form_body(data)
    elif hasattr(data, "read"):
        return hash_file(data), None
    elif hasattr(data, "__aiter__"):
        raise ValueError(
            "Cannot sign a request whose body is an async iterable: it would have to be consumed to be "
            "hashed. Pass bytes, str or a seekable binary file."
        )
    else:
        raise ValueError(
            f"Cannot sign a request whose body is a {type(data).__name__}: pass bytes, str, JSON, a form "
            "dict or a seekable binary file (streamed bodies would have to be consumed to be hashed)."
        )
    return content_hash(body), body


_MULTIPART: Final = (
    "Cannot sign a multipart request: its body is built by the transport after signing. Send the body as bytes instead."
)


def sign_request_body(http_request: Any) -> str:
    """Return the content hash of an azure-core request's body, first replacing a body that is not bytes.

    The bytes replace the body on the request, with ``Content-Length`` in bytes (azure-core counts
    characters for a str body, and aiohttp then truncates a non-ASCII one). A form keeps its
    ``Content-Type: application/x-www-form-urlencoded``: the legacy request's ``set_formdata_body`` leaves
    the header to the transport, which no longer sees a form once the body is bytes.

    Raises:
        ValueError: the body is multipart, or cannot be hashed without being consumed.
    """
    if isinstance(http_request, RestHttpRequest):
        fields = vars(http_request)
        if fields.get("_files") or fields.get("_multipart_mixed_info_val"):
            raise ValueError(_MULTIPART)
        data = http_request.content
        body_hash, body = hash_body(data)
        if body is not None:
            # No public setter: the backcompat set_bytes_body goes through a slow __getattr__ on every call.
            fields["_data"] = body
            if body:
                http_request.headers["Content-Length"] = str(len(body))
    else:
        if getattr(http_request, "files", None) or getattr(http_request, "multipart_mixed_info", None):
            raise ValueError(_MULTIPART)
        data = getattr(http_request, "data", None)
        body_hash, body = hash_body(data)
        if body is not None:
            http_request.set_bytes_body(body)
    if body is not None and isinstance(data, Mapping) and "Content-Type" not in http_request.headers:
        http_request.headers["Content-Type"] = FORM_CONTENT_TYPE
    return body_hash
