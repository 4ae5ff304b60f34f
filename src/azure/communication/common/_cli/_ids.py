"""``acs-common id parse`` and ``acs-common id wire``: raw ids and the REST wire model."""

from __future__ import annotations

import argparse
import json
from enum import Enum
from typing import Any, Final

from ._common import CLIError, HelpFormatter, UsageError, read_stdin
from ._output import Output

__all__ = ["add_parser", "describe_identifier", "run_parse", "run_wire"]

EPILOG: Final = """\
examples:
  acs-common id parse 8:acs:1b5cc06b-f352-4571-b1e6-d9b259b7c776_00000005-6d8c-4ee5-aaeb-b33a0d00b3c4
  acs-common id parse 4:+14255550123
  acs-common id parse 8:orgid:45ab2481-1c1c-4005-be24-0ffb879b1130 --json
  acs-common id wire '{"communicationUser": {"id": "8:acs:abc_123"}}'
  echo '{"rawId": "28:orgid:app", "kind": "microsoftTeamsApp",' \\
      '"microsoftTeamsApp": {"appId": "app", "cloud": "public"}}' | acs-common id wire -

A raw id that matches no known prefix is an 'unknown' identifier (parsing never fails).
Exit status: 0 on success, 1 for an invalid wire model, 2 for usage errors.
"""


def _plain(value: Any) -> Any:
    # Build text from Enum.value: str() of a str-enum member changed in Python 3.11.
    return value.value if isinstance(value, Enum) else value


def describe_identifier(identifier: Any) -> dict[str, Any]:
    """Return kind, raw id, properties and wire model of an identifier as plain JSON values."""
    from .._wire import serialize_identifier

    return {
        "kind": _plain(identifier.kind),
        "raw_id": identifier.raw_id,
        "properties": {key: _plain(value) for key, value in identifier.properties.items()},
        "wire": serialize_identifier(identifier),
    }


def _render(description: dict[str, Any], out: Output, as_json: bool) -> None:
    if as_json:
        out.json(description)
        return
    out.field("kind", out.style(description["kind"], "bold"), width=11)
    out.field("raw id", description["raw_id"], width=11)
    out.line("  " + out.style("properties:", "dim"))
    if not description["properties"]:
        out.line("    (none)")
    for key, value in description["properties"].items():
        out.line(f"    {key}: {json.dumps(value) if not isinstance(value, str) else value}")
    out.line("  " + out.style("wire model:", "dim"))
    for line in json.dumps(description["wire"], indent=2, ensure_ascii=False).splitlines():
        out.line("    " + line)


def run_parse(args: argparse.Namespace, out: Output) -> int:
    """Run ``id parse RAW_ID``."""
    from .._identifiers import identifier_from_raw_id

    raw_id = read_stdin().strip() if args.raw_id == "-" else args.raw_id
    _render(describe_identifier(identifier_from_raw_id(raw_id)), out, args.json)
    return 0


def _read_json_argument(value: str) -> str:
    if value == "-":
        return read_stdin()
    if value.startswith("@"):
        path = value[1:]
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except OSError as exc:
            raise CLIError(f"cannot read {path!r}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CLIError(f"{path!r} is not UTF-8 text") from None
    return value


def run_wire(args: argparse.Namespace, out: Output) -> int:
    """Run ``id wire JSON``."""
    from .._wire import deserialize_identifier

    text = _read_json_argument(args.model)
    if not text.strip():
        raise UsageError("no wire model given (pass JSON as an argument, @FILE or '-' for stdin)")
    try:
        model = json.loads(text)
    except ValueError as exc:
        raise CLIError(f"the wire model is not valid JSON: {exc}") from None
    if not isinstance(model, dict):
        raise CLIError(f"the wire model must be a JSON object, not {type(model).__name__}")
    try:
        identifier = deserialize_identifier(model)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"invalid wire model: {exc}") from None
    _render(describe_identifier(identifier), out, args.json)
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``id`` with ``parse`` and ``wire``."""
    ids = subparsers.add_parser(
        "id",
        help="parse raw ids and wire models of communication identifiers",
        description="Communication identifiers: raw ids and the REST wire model.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    actions = ids.add_subparsers(dest="id_command", metavar="COMMAND", required=True)
    parse = actions.add_parser(
        "parse",
        help="raw id -> kind, properties and wire model",
        description="Parse a raw id (JS createIdentifierFromRawId) and show its kind, properties and wire model.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parse.add_argument("raw_id", metavar="RAW_ID", help="the raw id, or '-' for stdin")
    parse.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    parse.set_defaults(handler=run_parse)
    wire = actions.add_parser(
        "wire",
        help="wire model JSON -> identifier",
        description="Deserialize a CommunicationIdentifierModel (camelCase JSON) and show the identifier.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    wire.add_argument("model", metavar="JSON", help="the wire model as JSON, @FILE, or '-' for stdin")
    wire.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    wire.set_defaults(handler=run_wire)
