"""Drive PlaceOrder with ghz (an independent Go load generator) and read its JSON report."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GHZ_VERSION = "v0.121.0"
ORDER_JSON = '{"customer_name": "John Doe", "coffee_type": "Latte"}'


@dataclass(frozen=True)
class LoadResult:
    """One load run: confirmed calls per second and latency in milliseconds."""

    sent: int
    ok: int
    errors: dict[str, int]
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float


def ghz_path() -> str:
    for candidate in (ROOT / ".tools" / "bin" / "ghz", shutil.which("ghz")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise SystemExit(
        "ghz not found: run `make bench-tools` or "
        f"`go install github.com/bojand/ghz/cmd/ghz@{GHZ_VERSION}`"
    )


def place_order_load(target: str, concurrency: int, total: int) -> LoadResult:
    """``total`` PlaceOrder calls from ``concurrency`` callers; OK answers count as confirmed."""
    command = [
        ghz_path(),
        "--insecure",
        "--proto", str(ROOT / "protos" / "coffee" / "orders" / "v1" / "orders.proto"),
        "--import-paths", str(ROOT / "protos"),
        "--call", "coffee.orders.v1.OrderService.PlaceOrder",
        "--data", ORDER_JSON,
        "--concurrency", str(concurrency),
        "--connections", str(min(concurrency, 8)),
        "--total", str(total),
        "--timeout", "20s",
        "--format", "json",
        target,
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if not finished.stdout.strip():
        raise RuntimeError(f"ghz failed: {finished.stderr.strip()}")
    return _parse(json.loads(finished.stdout))


def _parse(report: dict[str, object]) -> LoadResult:
    codes: dict[str, int] = dict(report.get("statusCodeDistribution") or {})  # type: ignore[call-overload]
    ok = codes.pop("OK", 0)
    seconds = float(report["total"]) / 1e9  # type: ignore[arg-type]
    percentiles = {
        int(item["percentage"]): float(item["latency"]) / 1e6
        for item in report.get("latencyDistribution") or []  # type: ignore[attr-defined]
    }
    return LoadResult(
        sent=int(report["count"]),  # type: ignore[call-overload]
        ok=ok,
        errors=codes,
        seconds=seconds,
        per_second=ok / seconds if seconds else 0.0,
        p50_ms=percentiles.get(50, 0.0),
        p99_ms=percentiles.get(99, 0.0),
        max_ms=float(report["slowest"]) / 1e6,  # type: ignore[arg-type]
    )
