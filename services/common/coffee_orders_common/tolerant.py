"""Request parsers that turn malformed bytes into None, so that the servicer answers
INVALID_ARGUMENT (grpc's own parser makes it an INTERNAL or UNKNOWN with a traceback)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

M = TypeVar("M", bound=Message)


def tolerant(message_type: type[M]) -> Callable[[bytes], M | None]:
    def parse(data: bytes) -> M | None:
        try:
            return message_type.FromString(data)
        except DecodeError:  # also invalid UTF-8 in a string field
            return None

    return parse
