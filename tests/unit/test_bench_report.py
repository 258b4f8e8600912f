"""The benchmark's pure parts: reading hey's output, CPU per order, reports of older results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import hey, report
from bench.cpu import ratio, share_of_parts, with_per_order

ROOT = Path(__file__).resolve().parents[2]

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


_ADDED_WITH_THE_PEERS = ("go_http", "go_grpc", "go_peers", "hey", "workers")


def _as_before_the_peers(value: Any) -> Any:
    """``value`` without what results files gained with the peers: their rows and versions, the
    CPU figures and the workers scenario."""
    if isinstance(value, dict):
        return {
            key: _as_before_the_peers(item)
            for key, item in value.items()
            if key not in _ADDED_WITH_THE_PEERS and "cpu_us" not in key and key != "cpu_seconds"
        }
    if isinstance(value, list):
        return [_as_before_the_peers(item) for item in value]
    return value


def test_a_results_file_from_before_the_peers_still_makes_a_report(tmp_path: Path) -> None:
    committed = json.loads((ROOT / "docs" / "benchmarks.json").read_text())
    for key in ("place_order", "place_orders"):
        assert key in committed  # the committed results file has both scenarios
    assert "Go peers" in report.markdown(committed)
    results = _as_before_the_peers(committed)
    text = report.markdown(results)
    assert "### PlaceOrders stream" in text
    assert "Go peers" not in text and "CPU per confirmed order" not in text
    report.chart(results, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"


def _issue_16_results() -> dict[str, Any]:
    """A run with the figures issue 16's targets read: PlaceOrder at 64 callers and the stream."""
    return {
        "place_order": [
            {
                "concurrency": 64,
                "ours": {"per_second": 3000.0, "p99_ms": 25.0, "cpu_us_per_order": 260.0},
                "grpc_limit": {"per_second": 4000.0, "cpu_us_per_order": 150.0},
                "kafka_limit": {"per_second": 20_000.0, "cpu_us_per_order": 50.0},
                "go_http": {"per_second": 9000.0, "cpu_us_per_order": 90.0},
                "go_grpc": {"per_second": 30_000.0, "cpu_us_per_order": 40.0},
            }
        ],
        "place_orders": {"ours": {"per_second": 28_000.0}, "kafka_limit": {"per_second": 50_000.0}},
    }


def test_issue_16_targets_are_checked_beside_the_earlier_ones() -> None:
    checks = {t["target"]: t for t in report.targets(_issue_16_results())}
    expected = {  # (measured, met)
        "PlaceOrder CPU/order / (gRPC limit + Kafka limit) at 64 callers": (1.3, True),
        "PlaceOrder / gRPC limit at 64 callers (issue 16)": (0.75, True),
        "PlaceOrder / gRPC limit at 64 callers": (0.75, False),  # the earlier 0.8 stays
        "PlaceOrder p99 ms at 64 callers": (25.0, True),
        "PlaceOrders / Kafka limit": (0.56, True),
        "PlaceOrders / Go HTTP + Sarama PlaceOrder at 64 callers": (28_000 / 9000, True),
        "PlaceOrders / Go gRPC + franz-go PlaceOrder at 64 callers": (28_000 / 30_000, False),
    }
    for name, (measured, met) in expected.items():
        assert checks[name]["measured"] == pytest.approx(measured), name
        assert checks[name]["met"] is met, name
    assert checks["PlaceOrder CPU/order / (gRPC limit + Kafka limit) at 64 callers"]["goal"] == (
        "<= 1.3"
    )
    assert "PlaceOrder confirmed/s at 64 callers" in checks  # the earlier targets are all kept


def test_issue_16_targets_without_their_figures_are_not_met_and_say_so() -> None:
    results = _issue_16_results()
    del results["place_order"][0]["ours"]["cpu_us_per_order"]  # a run from before CPU per order
    for peer in ("go_http", "go_grpc"):
        del results["place_order"][0][peer]  # and before the peers
    results["targets"] = report.targets(results)
    checks = {t["target"]: t for t in results["targets"]}
    share = checks["PlaceOrder CPU/order / (gRPC limit + Kafka limit) at 64 callers"]
    assert share["measured"] is None and share["met"] is False
    assert not any("Go" in name for name in checks)  # no peers measured, no peer targets
    results["machine"] = json.loads((ROOT / "docs" / "benchmarks.json").read_text())["machine"]
    results |= {"seconds": 60.0, "plan": {"runs": 3}}
    for row in results["place_order"]:
        row["ours"] |= {"p50_ms": 5.0, "max_ms": 40.0, "cpu_percent": 90.0, "peak_rss_mb": 70.0,
                        "errors": {}}  # fmt: skip
    del results["place_orders"]  # its table needs more figures than the targets do
    text = report.markdown(results)
    assert (
        "| PlaceOrder CPU/order / (gRPC limit + Kafka limit) at 64 callers | <= 1.3 | "
        "not measured | **no** |" in text
    )


def test_the_workers_table_lists_each_worker_count() -> None:
    figures = {"per_second": 3000.0, "p50_ms": 9.0, "p99_ms": 28.0, "max_ms": 60.0,
               "cpu_percent": 120.0, "cpu_us_per_order": 400.0, "broker_cpu_us_per_order": 80.0,
               "peak_rss_mb": 150.0, "errors": {}}  # fmt: skip
    row = {"concurrency": 64, "calls": 30_000, "workers_2": figures,
           "workers_1": figures | {"per_second": 2500.0}}  # fmt: skip
    assert report.workers_line(row).startswith("PlaceOrder c=64 by workers: 1 worker 2,500/s")
    table = report._workers_lines(row)
    assert table[-2].startswith("| 1 | 2,500 |") and table[-1].startswith("| 2 | 3,000 |")


def test_the_workers_scenario_reports_placeorders_by_worker_count_in_a_table_of_its_own() -> None:
    figures = {"per_second": 3000.0, "p50_ms": 9.0, "p99_ms": 28.0, "max_ms": 60.0,
               "cpu_percent": 120.0, "cpu_us_per_order": 400.0, "broker_cpu_us_per_order": 80.0,
               "peak_rss_mb": 150.0, "errors": {}}  # fmt: skip
    shape = {"streams": 8, "window": 1, "batch": 250, "connections": 8, "in_flight": 2000}
    row = {"concurrency": 64, "calls": 30_000, "workers_1": figures, "workers_2": figures,
           "stream_shape": shape, "stream_orders": 300_000,
           "stream_workers_1": figures | {"per_second": 20_000.0},
           "stream_workers_2": figures | {"per_second": 21_000.0}}  # fmt: skip
    progress = report.workers_line(row).splitlines()
    assert progress[1].startswith("PlaceOrders by workers: 1 worker 20,000/s")
    table = report._workers_lines(row)
    assert any("8 streams on 8 connections" in line for line in table)
    assert table[-2].startswith("| 1 | 20,000 |") and table[-1].startswith("| 2 | 21,000 |")
