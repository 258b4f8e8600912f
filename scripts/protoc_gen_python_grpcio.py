"""A protoc plugin for buf: Python messages, type stubs and gRPC stubs from grpcio-tools.

buf runs plugins, not compilers, and its remote Python plugins are out of reach here; grpcio-tools
ships protoc and the gRPC Python generator only as a library. This plugin bridges the two: it takes
buf's CodeGeneratorRequest, hands the already-compiled descriptors to grpcio-tools' protoc
(``--descriptor_set_in``, so nothing is parsed twice) and answers with the files it wrote, plus
an ``__init__.py`` per package. The output is byte for byte what ``python -m grpc_tools.protoc
--python_out --pyi_out --grpc_python_out`` gives from the .proto sources with the pinned
grpcio-tools of the dev extra. One difference has to be undone for that: buf's compiler records
every field's default ``json_name``, protoc only explicit ones. It matters beyond bytes: the
descriptors are what server reflection serves, and grpcurl prints a field by its ``json_name``
when the descriptor has one (``orderId``), by its proto name otherwise (``order_id``).

buf.gen.yaml runs it as ``local: [.venv/bin/python, scripts/protoc_gen_python_grpcio.py]``.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc

PACKAGE_DOCSTRING = '"""Generated gRPC code for the coffee orders contract."""\n'


def _default_json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _drop_default_json_names(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
    for message in messages:
        for field in message.field:
            if field.json_name == _default_json_name(field.name):
                field.ClearField("json_name")
        _drop_default_json_names(message.nested_type)


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    response = plugin_pb2.CodeGeneratorResponse()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for file in request.proto_file:
            _drop_default_json_names(file.message_type)
        descriptors = work / "descriptors.binpb"
        descriptors.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = work / "out"
        out.mkdir()
        args = [
            "grpc_tools.protoc",
            f"--descriptor_set_in={descriptors}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *request.file_to_generate,
        ]
        if protoc.main(args) != 0:
            response.error = "grpc_tools.protoc failed; see its output above"
            return response
        generated = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
        for path in generated:
            response.file.add(name=str(path), content=(out / path).read_text())
    for package in sorted({parent for path in generated for parent in path.parents} - {Path(".")}):
        response.file.add(name=str(package / "__init__.py"), content=PACKAGE_DOCSTRING)
    return response


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
