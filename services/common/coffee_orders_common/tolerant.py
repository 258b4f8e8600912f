"""Request parsers that turn malformed bytes into None, so that the servicer answers
INVALID_ARGUMENT (grpc's own parser makes it an INTERNAL or UNKNOWN with a traceback)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

M = TypeVar("M", bound=Message)


def tolerant(message_type: type[M]) -> Callable[[bytes], M | None]:
    def parse(data: bytes) -> M | None:
        try:
            return message_type.FromString(data)
        except DecodeError:  # also invalid UTF-8 in a string field
            return None

    return parse


_HANDLERS = {  # (client streams, server streams): the kind of method handler
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_tolerant_service(
    server: grpc.aio.Server, service: ServiceDescriptor, servicer: Any
) -> None:
    """Like a generated add_*Servicer_to_server, with the tolerant parsers: the servicer's
    method of each name of ``service`` gets None for a request that does not parse."""
    handlers = {}
    for method in service.methods:
        kind = _HANDLERS[method.client_streaming, method.server_streaming]
        handlers[method.name] = kind(
            getattr(servicer, method.name),
            request_deserializer=tolerant(GetMessageClass(method.input_type)),
            response_serializer=GetMessageClass(method.output_type).SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
