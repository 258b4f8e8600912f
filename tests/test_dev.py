"""``coffee-orders dev``: everything in one terminal, stopped cleanly by SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.kafka_io import consume_all, produce_all
from tests.support.processes import RunningCommand, free_port_pair

pytestmark = pytest.mark.kafka


def test_dev_runs_a_usable_broker_and_stops_on_sigterm(
    tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> None:
    port = free_port_pair()
    data_dir = tmp_path / "dev-kafka"
    show_logs_on_failure(data_dir / "node-1" / "server.log")
    show_logs_on_failure(tmp_path / "dev.log")
    dev = RunningCommand(
        tmp_path / "dev.log",
        "dev",
        "--only-kafka",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    )
    try:
        dev.wait_for_output(r"dev\s+\| Kafka ready at 127\.0\.0\.1:\d+", timeout=120)
        bootstrap = f"127.0.0.1:{port}"
        sent = produce_all(bootstrap, "coffee_orders", [b'{"customer_name":"A","coffee_type":"B"}'])
        assert len(sent) == 1
        assert len(consume_all(bootstrap, "coffee_orders", 1)) == 1
        pid = int((data_dir / "node-1" / "kafka.pid").read_text())
    finally:
        code = dev.stop(signal.SIGTERM)
    assert code == 0, dev.output()
    assert "stopped Kafka (1 process(es))" in dev.output()
    assert not Path(f"/proc/{pid}").exists()
