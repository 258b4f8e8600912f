"""``coffee-orders dev``: everything in one terminal, stopped cleanly by SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from coffee_orders_client import CoffeeOrdersClient
from coffee_orders_devtools.processes import RunningCommand

from tests.support.kafka_io import consume_all
from tests.support.processes import free_port_pair

pytestmark = pytest.mark.kafka


def test_dev_runs_broker_and_services_and_stops_them_on_sigterm(
    tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> None:
    port = free_port_pair()
    producer_port = free_port_pair()
    consumer_port = free_port_pair()
    data_dir = tmp_path / "dev-kafka"
    show_logs_on_failure(data_dir / "node-1" / "server.log")
    show_logs_on_failure(tmp_path / "dev.log")
    dev = RunningCommand(
        tmp_path / "dev.log",
        *("dev", "--port", str(port), "--data-dir", str(data_dir)),
        env={
            "COFFEE_PRODUCER_LISTEN": f"127.0.0.1:{producer_port}",
            "COFFEE_CONSUMER_LISTEN": f"127.0.0.1:{consumer_port}",
        },
    )
    try:
        dev.wait_for_output(r"dev\s+\| Kafka ready at 127\.0\.0\.1:\d+", timeout=120)
        dev.wait_for_output(r"producer \| .* producer listening", timeout=60)
        with CoffeeOrdersClient(f"127.0.0.1:{producer_port}") as client:
            placed = client.place_order("John Doe", "Latte", timeout=30)
        (message,) = consume_all(f"127.0.0.1:{port}", "coffee_orders", 1)
        assert message.value() == b'{"customer_name":"John Doe","coffee_type":"Latte"}'
        assert message.key() == placed.order_id.encode()
        dev.wait_for_output(
            rf"consumer \| .* brewing Latte for John Doe order_id={placed.order_id}"
        )
        status = RunningCommand.run_cli("status", "--target", f"127.0.0.1:{consumer_port}")
        assert "processed:      1" in status.stdout, status.stdout + status.stderr
        pid = int((data_dir / "node-1" / "kafka.pid").read_text())
    finally:
        code = dev.stop(signal.SIGTERM)
    assert code == 0, dev.output()
    assert "producer stopped undelivered=0" in dev.output()
    assert "consumer stopped processed=1" in dev.output()
    assert "stopped Kafka (1 process(es))" in dev.output()
    assert not Path(f"/proc/{pid}").exists()
