"""Generate the Python gRPC code under clients/python from protos/.

Usage: python scripts/gen_protos.py [--check]

--check regenerates into a temporary folder and exits 1 if the committed code differs.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "clients" / "python"
PACKAGE_DIR = Path("coffee") / "orders" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_root: Path) -> None:
    protos = sorted(
        str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto")
    )
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    (out_root / PACKAGE_DIR).mkdir(parents=True, exist_ok=True)
    if protoc.main(args) != 0:
        sys.exit("protoc failed")


def generated_files(root: Path) -> set[str]:
    folder = root / PACKAGE_DIR
    return {p.name for p in folder.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    check = parser.parse_args().check
    if not check:
        for name in generated_files(OUT_ROOT) if (OUT_ROOT / PACKAGE_DIR).exists() else set():
            (OUT_ROOT / PACKAGE_DIR / name).unlink()
        generate(OUT_ROOT)
        print(f"generated {sorted(generated_files(OUT_ROOT))} in {OUT_ROOT / PACKAGE_DIR}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh, committed = generated_files(Path(tmp)), generated_files(OUT_ROOT)
        stale = sorted(
            name
            for name in fresh | committed
            if name not in fresh
            or name not in committed
            or not filecmp.cmp(Path(tmp) / PACKAGE_DIR / name, OUT_ROOT / PACKAGE_DIR / name, False)
        )
        shutil.rmtree(tmp, ignore_errors=True)
    if stale:
        print(
            f"generated code is stale: {stale}; run: python scripts/gen_protos.py", file=sys.stderr
        )
        return 1
    print("generated code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
