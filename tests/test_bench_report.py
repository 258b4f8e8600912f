"""The benchmark's pure parts: reading hey's output, CPU per order, reports of older results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import hey, report
from bench.cpu import ratio, share_of_parts, with_per_order

ROOT = Path(__file__).resolve().parents[1]

# hey v0.1.5's summary, as printed (histogram and details shortened): 20 answers with status 400
# and 3 requests whose connection was refused; its sample was too small for a 99 % line.
HEY_OUTPUT = """
Summary:
  Total:\t0.0298 secs
  Slowest:\t0.0102 secs
  Fastest:\t0.0005 secs
  Average:\t0.0023 secs
  Requests/sec:\t672.0341

Response time histogram:
  0.001 [1]\t|■■■

Latency distribution:
  10%% in 0.0005 secs
  50%% in 0.0012 secs
  95%% in 0.0102 secs
  0%% in 0.0000 secs

Details (average, fastest, slowest):
  DNS+dialup:\t0.0010 secs, 0.0000 secs, 0.0072 secs

Status code distribution:
  [200]\t7 responses
  [400]\t20 responses

Error distribution:
  [3]\tPost "http://127.0.0.1:18432/order": dial tcp 127.0.0.1:18432: connect: connection refused
"""


def test_hey_counts_only_status_200_as_confirmed_and_keeps_the_rest_as_errors() -> None:
    result = hey.parse(HEY_OUTPUT, sent=30)
    assert (result.sent, result.ok) == (30, 7)
    assert result.errors == {
        "HTTP 400": 20,
        'Post "http://127.0.0.1:18432/order": dial tcp 127.0.0.1:18432: connect: '
        "connection refused": 3,
    }
    assert result.seconds == 0.0298 and result.per_second == 7 / 0.0298
    assert result.p50_ms == pytest.approx(1.2) and result.max_ms == pytest.approx(10.2)
    assert result.p99_ms == result.max_ms  # no 99 % line: by nearest rank, the slowest request


def test_hey_sends_whole_rounds_of_its_callers() -> None:
    assert hey.requests_sent(64, 30_000) == 29_952
    assert hey.requests_sent(16, 400) == 400
    assert hey.requests_sent(256, 100) == 256  # hey refuses fewer requests than callers


def test_cpu_per_order_and_the_ratios() -> None:
    figures = with_per_order(
        {"ok": 4000, "cpu_seconds": 0.2, "broker_cpu_seconds": 0.1, "load_cpu_seconds": 0.4}
    )
    assert figures["cpu_us_per_order"] == 50.0 and figures["broker_cpu_us_per_order"] == 25.0
    assert figures["load_cpu_us_per_order"] == 100.0
    assert "cpu_us_per_order" not in with_per_order({"ok": 0, "cpu_seconds": 0.2})
    row = {
        "ours": {"cpu_us_per_order": 300.0, "per_second": 3000.0},
        "grpc_limit": {"cpu_us_per_order": 100.0},
        "kafka_limit": {"cpu_us_per_order": 50.0},
        "go_grpc": {"cpu_us_per_order": 60.0, "per_second": 12000.0},
    }
    assert share_of_parts(row) == 2.0
    assert ratio(row, "go_grpc") == 5.0 and ratio(row, "go_grpc", "per_second") == 0.25
    assert ratio(row, "go_http") is None
    assert share_of_parts({"ours": {"cpu_us_per_order": 1.0}}) is None


def test_a_results_file_from_before_the_peers_still_makes_a_report(tmp_path: Path) -> None:
    results = json.loads((ROOT / "docs" / "benchmarks.json").read_text())
    for key in ("place_order", "place_orders"):
        assert key in results  # the committed results file has both scenarios
    text = report.markdown(results)
    assert "### PlaceOrders stream" in text
    assert "Go peers" not in text and "CPU per confirmed order" not in text
    report.chart(results, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
