"""Drive the Go HTTP peer's ``POST /order`` with hey (an independent Go load generator).

hey gives each of its ``-c`` workers ``n / c`` requests (the remainder is never sent) and one
keep-alive connection each, so its callers match ghz's; ghz shares up to 8 HTTP/2 connections
among them, HTTP/1.1 cannot. Only answers with status 200 count as confirmed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from bench.ghz import ORDER_JSON, ROOT, LoadResult

HEY_VERSION = "v0.1.5"
_STATUS = re.compile(r"^\s+\[(\d{3})\]\s+(\d+) responses$")
_ERROR = re.compile(r"^\s+\[(\d+)\]\s+(.+)$")
_PERCENTILE = re.compile(r"^\s+(\d+)%+ in ([\d.]+) secs$")
_SUMMARY = re.compile(r"^\s+(Total|Slowest):\s+([\d.]+) secs$")


def hey_path() -> str:
    for candidate in (ROOT / ".tools" / "bin" / "hey", shutil.which("hey")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise SystemExit(
        f"hey not found: run `make bench-tools` or `go install github.com/rakyll/hey@{HEY_VERSION}`"
    )


def requests_sent(concurrency: int, total: int) -> int:
    """What hey sends for ``-n total -c concurrency``: whole rounds of ``concurrency``."""
    return max(total // concurrency, 1) * concurrency


def post_order_load(url: str, concurrency: int, total: int) -> LoadResult:
    """About ``total`` ``POST /order`` requests from ``concurrency`` callers (see requests_sent)."""
    sent = requests_sent(concurrency, total)
    command = [
        hey_path(),
        "-n", str(sent),
        "-c", str(concurrency),
        "-m", "POST",
        "-T", "application/json",
        "-d", ORDER_JSON,
        "-t", "20",
        url,
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if finished.returncode != 0 or "Summary:" not in finished.stdout:
        raise RuntimeError(f"hey failed: {finished.stderr.strip() or finished.stdout.strip()}")
    return parse(finished.stdout, sent)


def parse(output: str, sent: int) -> LoadResult:
    """hey's summary text: total and slowest time, latency percentiles, status codes, errors."""
    summary: dict[str, float] = {}
    percentiles: dict[int, float] = {}
    codes: dict[str, int] = {}
    section = ""
    for line in output.splitlines():
        if line and not line[0].isspace():
            section = line.rstrip(":")
        elif section == "Summary" and (match := _SUMMARY.match(line)):
            summary[match[1]] = float(match[2])
        elif section == "Latency distribution" and (match := _PERCENTILE.match(line)):
            percentiles[int(match[1])] = float(match[2]) * 1000
        elif section == "Status code distribution" and (match := _STATUS.match(line)):
            codes[f"HTTP {match[1]}"] = int(match[2])
        elif section == "Error distribution" and (match := _ERROR.match(line)):
            codes[match[2][:120]] = codes.get(match[2][:120], 0) + int(match[1])
    ok = codes.pop("HTTP 200", 0)
    seconds = summary.get("Total", 0.0)
    slowest = summary.get("Slowest", 0.0) * 1000
    return LoadResult(
        sent=sent,
        ok=ok,
        errors=codes,
        seconds=seconds,
        per_second=ok / seconds if seconds else 0.0,
        p50_ms=percentiles.get(50, 0.0),
        # hey leaves out a percentile its sample is too small to reach (99 % of fewer than 100
        # requests): by nearest rank that is the slowest request
        p99_ms=percentiles.get(99, slowest),
        max_ms=slowest,
    )
