"""Drive PlaceOrders with bench/streamload, a small Go load generator built on first use."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.ghz import ROOT, LoadResult

SOURCE = ROOT / "bench" / "streamload"
BINARY = ROOT / ".tools" / "bin" / "streamload"


@dataclass(frozen=True)
class StreamShape:
    """How the load keeps orders in flight: streams x window (batches) x batch (orders); the
    streams are spread over ``connections`` (one reaches a single worker of ``--workers N``)."""

    streams: int = 4
    window: int = 2
    batch: int = 250
    connections: int = 1

    @property
    def in_flight(self) -> int:
        return self.streams * self.window * self.batch


def build() -> Path:
    """``go build`` (cached by Go) into .tools/bin; the module uses clients/go's generated code."""
    subprocess.run(["go", "build", "-o", str(BINARY), "."], cwd=SOURCE, check=True, timeout=600)
    return BINARY


def place_orders_load(target: str, shape: StreamShape, total: int) -> LoadResult:
    command = [
        str(BINARY),
        f"-target={target}",
        f"-streams={shape.streams}",
        f"-window={shape.window}",
        f"-batch={shape.batch}",
        f"-orders={total}",
        f"-connections={shape.connections}",
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if finished.returncode != 0 or not finished.stdout.strip():
        raise RuntimeError(f"streamload failed: {finished.stderr.strip()}")
    report = json.loads(finished.stdout)
    if report.get("first_error"):
        raise RuntimeError(f"streamload: {report['first_error']}")
    return LoadResult(
        sent=report["sent"],
        ok=report["confirmed"],
        errors={"failed": report["failed"]} if report["failed"] else {},
        seconds=report["seconds"],
        per_second=report["per_second"],
        p50_ms=report["p50_ms"],
        p99_ms=report["p99_ms"],
        max_ms=report["max_ms"],
    )
