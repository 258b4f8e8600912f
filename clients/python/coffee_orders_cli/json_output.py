"""The one JSON shape every ``--json`` of the CLI prints: what ``grpcurl -emit-defaults`` prints.

That is protobuf's JSON mapping with the proto field names (``order_id``: the contract's
descriptors, served by reflection, carry no json_name, and grpcurl then prints the field's own
name), every field including those at
their default (``"offset": "0"``, ``"partition": 0``), 64-bit integers as strings, enums by name,
timestamps in RFC 3339 with ``Z``, whole doubles without a fraction (``0``, not ``0.0``), keys in
field-number order, and ``null`` for a message field that is not set. Python's ``json_format``
leaves such a field out (Go's ``protojson``, which grpcurl uses, writes ``null``) and puts
default-valued fields last, so both are put right here.
tests/integration/test_cli_output.py compares the two byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

_WELL_KNOWN = "google.protobuf."  # Timestamp, Duration, ...: a JSON scalar, not an object
_FLOATING = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


def message_dict(message: Message) -> dict[str, Any]:
    """The message as a JSON-ready dict, field for field what grpcurl -emit-defaults shows."""
    mapped = json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )
    return _as_grpcurl(message, mapped)


def message_json(message: Message, *, one_line: bool = False) -> str:
    """``message_dict`` as text: indented by two like grpcurl, or one line (JSON Lines)."""
    return json.dumps(message_dict(message), indent=None if one_line else 2, ensure_ascii=False)


def _as_grpcurl(message: Message, mapped: dict[str, Any]) -> dict[str, Any]:
    ordered: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        nested, key = field.message_type, field.name
        if key not in mapped:
            # Unset message fields outside a oneof: protojson writes null, json_format nothing.
            if nested is not None and not field.is_repeated and field.containing_oneof is None:
                ordered[key] = None
            continue
        value = mapped[key]
        if nested is not None and not nested.full_name.startswith(_WELL_KNOWN):
            if nested.GetOptions().map_entry:
                pass  # map values keep json_format's shape (none of our messages has a map)
            elif field.is_repeated:
                items = getattr(message, field.name)
                value = [_as_grpcurl(item, part) for item, part in zip(items, value, strict=True)]
            else:
                value = _as_grpcurl(getattr(message, field.name), value)
        if field.type in _FLOATING and not field.is_repeated:
            value = _as_go_number(value)
        ordered[key] = value
    for key, value in mapped.items():  # anything the descriptor walk did not name (extensions)
        ordered.setdefault(key, value)
    return ordered


def _as_go_number(value: Any) -> Any:
    """A whole double as Go's protojson writes it (``600``; Python writes ``600.0``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return int(value)
    return value
