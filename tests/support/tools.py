"""The command-line tools tests use as independent witnesses: kcat and grpcurl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

_PROJECT_TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "bin"


def tool(name: str) -> str:
    """Path of a tool on PATH or in .tools/bin; fail clearly (make tools installs them)."""
    found = shutil.which(name) or shutil.which(name, path=str(_PROJECT_TOOLS))
    if found is None:
        raise AssertionError(f"{name} is not installed; run `make tools`")
    return found


def run_tool(name: str, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool(name), *arguments], capture_output=True, text=True, timeout=timeout, check=False
    )


def kcat_read(bootstrap: str, topic: str, partition: int, offset: int) -> str:
    """One message as ``key|headers|value`` read by kcat, not by our code."""
    result = run_tool(
        "kcat",
        "-C",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-p",
        str(partition),
        "-o",
        str(offset),
        "-c",
        "1",
        "-e",
        "-q",
        "-f",
        "%k|%h|%s",
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def kcat_produce(bootstrap: str, topic: str, value: bytes, *options: str | bytes) -> None:
    """One record written by kcat, not by our code: ``value`` with kcat's ``options`` (``-p 0``
    for a partition, ``-H name=value`` for a header, any bytes)."""
    produced = subprocess.run(
        [tool("kcat"), "-P", "-b", bootstrap, "-t", topic, *options],
        input=value + b"\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert produced.returncode == 0, produced.stderr
