"""A real fault fires its alert in a real Prometheus loaded with deploy/prometheus/alerts.yml:
a consumer whose dead-letter topic does not exist skips a bad record without a copy, and
CoffeeOrdersDeadLetterFailed fires on the first one (the error kinds are exported at 0 from the
start, so increase() sees it)."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_localkafka import LocalKafka

from tests.support.kafka_io import produce_all
from tests.support.processes import free_port_pair
from tests.support.prometheus import PrometheusApi, start_prometheus

pytestmark = pytest.mark.kafka
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
FAILED = 'coffee_orders_consumer_errors_total{kind="DEAD_LETTER_FAILED"}'


@pytest.mark.timeout(600)
def test_a_bad_record_without_a_dead_letter_copy_fires_dead_letter_failed(
    kafka_broker: LocalKafka, tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> None:
    topic = f"orders_{uuid.uuid4().hex[:12]}"
    kafka_broker.ensure_topics([topic], partitions=1)  # and no <topic>.dlq
    status_port, metrics_port = free_port_pair(), free_port_pair()
    prometheus_port = free_port_pair()
    (tmp_path / "prometheus").mkdir()
    for log in ("consumer.log", "prometheus/prometheus.log"):
        show_logs_on_failure(tmp_path / log)
    consumer = RunningCommand(
        tmp_path / "consumer.log",
        *("consumer", "--listen", f"127.0.0.1:{status_port}"),
        *("--metrics-listen", f"127.0.0.1:{metrics_port}"),
        env={
            "KAFKA_BROKERS": kafka_broker.bootstrap_servers,
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": f"g-{topic}",
        },
    )
    prometheus: RunningCommand | None = None
    try:
        consumer.wait_for_output("partitions assigned", timeout=120)
        prometheus = start_prometheus(
            tmp_path / "prometheus",
            prometheus_port,
            {"coffee-orders-consumer": [f"127.0.0.1:{metrics_port}"]},
            [RULES],
        )
        api = PrometheusApi(prometheus_port)
        prometheus.wait_while_running(api.ready, 120, "Prometheus ready")
        # Scraped at 0 before the fault: the rule sees the counter go up, not appear.
        prometheus.wait_while_running(
            lambda: [s for s in api.query(FAILED) if s["value"][1] == "0"], 120, "a 0 sample"
        )
        assert not [alert for alert in api.alerts() if alert["state"] == "firing"]
        produce_all(kafka_broker.bootstrap_servers, topic, [b"not an order"])
        consumer.wait_for_output("cannot copy to", timeout=60)

        def firing() -> list[str] | None:
            names = [a["labels"]["alertname"] for a in api.alerts() if a["state"] == "firing"]
            return names or None

        fired = prometheus.wait_while_running(firing, 120, "CoffeeOrdersDeadLetterFailed firing")
        assert fired == ["CoffeeOrdersDeadLetterFailed"]
    finally:
        if prometheus is not None:
            prometheus.stop(signal.SIGTERM)
        consumer.stop(signal.SIGTERM)
