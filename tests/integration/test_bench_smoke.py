"""The benchmark runs end to end (tiny numbers, seconds): every scenario, the report, the chart."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_smoke_run_writes_every_scenario(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(ROOT / "docs" / "benchmarks.md", docs / "benchmarks.md")
    finished = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--write-docs", "--docs-dir", str(docs),
         "--work-dir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    logs = "".join(
        f"\n--- {log.name}\n{log.read_text(errors='replace')[-2000:]}"
        for log in sorted((tmp_path / "work" / "logs").glob("*.log"))
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr + logs
    results = json.loads((docs / "benchmarks.json").read_text())
    for row in results["place_order"]:
        for key in ("ours", "grpc_limit", "kafka_limit", "go_grpc"):
            assert row[key]["ok"] == row["calls"], (key, row[key])
        # hey sends whole rounds of its callers: what it sent, all confirmed
        assert 0 < row["go_http"]["ok"] == row["go_http"]["sent"] <= row["calls"], row["go_http"]
    stream = results["place_orders"]
    assert stream["ours"]["ok"] == stream["orders"] and stream["kafka_limit"]["ok"] > 0
    assert stream["go_grpc"]["ok"] == stream["orders"], stream["go_grpc"]
    # CPU per order for everyone, the broker's too (a short run may count 0 of the 10 ms ticks)
    cpu_us: dict[str, float] = {}
    for row in [*results["place_order"], stream]:
        for key in ("ours", "grpc_limit", "kafka_limit", "go_http", "go_grpc"):
            if key in row:  # the HTTP peer has no stream
                assert row[key]["cpu_us_per_order"] >= 0, (key, row[key])
                assert row[key]["broker_cpu_us_per_order"] >= 0, (key, row[key])
                if key != "kafka_limit":  # driven by ghz, hey or streamload
                    assert row[key]["load_cpu_us_per_order"] >= 0, (key, row[key])
                cpu_us[key] = cpu_us.get(key, 0) + row[key]["cpu_us_per_order"]
    assert len(cpu_us) == 5 and all(total > 0 for total in cpu_us.values()), cpu_us
    workers = results["workers"]  # the producer with 1 and 2 worker processes
    for key in ("workers_1", "workers_2"):
        assert workers[key]["ok"] == workers["calls"] and workers[key]["cpu_us_per_order"] > 0
        stream_run = workers[f"stream_{key}"]  # PlaceOrders, its streams spread over 8 connections
        assert stream_run["ok"] == stream_run["sent"] > 0 and stream_run["cpu_us_per_order"] > 0
    e2e = results["end_to_end"]["median"]
    assert e2e["ok"] == e2e["sent"] and e2e["lost"] == 0 and e2e["p99_ms"] > 0
    assert results["drain"]["median"]["per_second"] > 0
    assert results["soak"]["lost"] == 0 and len(results["soak"]["samples"]) >= 3
    flood = results["flood"]["median"]
    assert flood["bad"] == 300 and flood["good"] == 30 and flood["per_second"] > 0
    assert {t["target"] for t in results["targets"]} >= {"PlaceOrders confirmed/s"}
    assert (docs / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (docs / "benchmarks.md").read_text()
    assert "### PlaceOrder (ghz)" in text and "### Soak" in text and "benchmarks.png" in text
    assert "### The Go peers at the same load" in text and "### CPU per confirmed order" in text
    assert "### Dead-letter flood" in text and "### Workers" in text
