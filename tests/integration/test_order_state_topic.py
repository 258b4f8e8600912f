"""The order-state topic at the consumer's start, against real brokers: created compacted when
missing, by exactly one of several consumers starting at once on a 3-node cluster (the others
wait for the brokers to learn of it, never exit), and one without compaction refused with one
line and exit code 2, losing nothing: the same consumer processes the orders once the topic is
fixed as docs/troubleshooting.md says."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from coffee_orders_common.exit_codes import EXIT_BAD_SETTINGS
from coffee_orders_common.order_state_topic import ensure_order_state_topic
from coffee_orders_devtools.kafka_io import produce_all
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_devtools.waiting import wait_until
from coffee_orders_localkafka import LocalKafka
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from tests.support.kafka_io import set_topic_config
from tests.support.processes import free_port_pair

pytestmark = pytest.mark.kafka

WINDOW_S = 7200.0
# Each round starts this many at once, a third bootstrapped on each node. Before the fix each of
# three runs of this test failed ("Unknown topic or partition", which made a consumer exit 2).
STARTS_A_ROUND = 9
ROUNDS = 40


def _configs(admin: AdminClient, topic: str) -> dict[str, str]:
    """The topic's configuration, once the broker asked knows the topic (they learn of a new
    one each in its own time: the very race the consumer now waits out)."""

    def described() -> dict[str, str] | None:
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        try:
            entries = admin.describe_configs([resource], request_timeout=30)[resource].result(35)
        except KafkaException:
            return None
        return {name: entry.value for name, entry in entries.items()}

    return wait_until(described, 60, f"the configuration of {topic}")


def _consumer(
    log: Path, env: dict[str, str], show_logs_on_failure: Callable[[Path], None]
) -> RunningCommand:
    """``coffee-orders consumer`` on a free port, its log shown if the test fails."""
    show_logs_on_failure(log)
    return RunningCommand(log, "consumer", "--listen", f"127.0.0.1:{free_port_pair()}", env=env)


def test_consumers_starting_at_once_create_the_topic_once_and_none_fails(
    kafka_cluster_factory: Callable[..., LocalKafka],
) -> None:
    cluster = kafka_cluster_factory(nodes=3)
    admin = cluster.admin()
    for round_number in range(ROUNDS):
        name = f"orders-{round_number}.order-state"
        outcomes: list[bool | str] = []

        def start(port: int, name: str = name, outcomes: list[bool | str] = outcomes) -> None:
            try:
                config = {"bootstrap.servers": f"127.0.0.1:{port}"}
                outcomes.append(ensure_order_state_topic(config, name, WINDOW_S))
            except Exception as exc:  # what each start did is the result
                outcomes.append(f"{type(exc).__name__}: {exc}")

        threads = [
            threading.Thread(target=start, args=(node.broker_port,))
            for node in cluster.nodes
            for _ in range(STARTS_A_ROUND // len(cluster.nodes))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a start hung"
        failures = [outcome for outcome in outcomes if not isinstance(outcome, bool)]
        assert failures == [], (round_number, failures)
        assert outcomes.count(True) == 1, (round_number, outcomes)  # created once
        configs = _configs(admin, name)
        assert configs["cleanup.policy"] == "compact,delete"
        assert configs["retention.ms"] == str(int(WINDOW_S * 1000))
        assert configs["segment.ms"] == str(int(WINDOW_S * 1000))
        assert len(admin.list_topics(name, timeout=30).topics[name].partitions) == 1


async def test_a_broker_that_creates_topics_on_demand_gets_a_compacted_one_from_the_consumer(
    kafka_cluster_factory: Callable[..., LocalKafka],
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> None:
    """Kafka's default ``auto.create.topics.enable=true``: asking for the missing topic's
    metadata made the broker create it uncompacted, and every consumer start exited 2."""
    cluster = kafka_cluster_factory(broker_properties={"auto.create.topics.enable": "true"})
    topic = "coffee_orders"  # the cluster's own, made by `up`; its order-state topic is not
    state_topic = f"{topic}.order-state"
    assert state_topic not in cluster.admin().list_topics(timeout=30).topics
    order = b'{"customer_name": "Ann", "coffee_type": "Mocha"}'
    bootstrap = cluster.bootstrap_servers
    assert len(await asyncio.to_thread(produce_all, bootstrap, topic, [order])) == 1
    env = {"KAFKA_BROKERS": bootstrap, "KAFKA_TOPIC": topic, "KAFKA_GROUP_ID": "g-auto"}
    consumer = _consumer(tmp_path / "consumer.log", env, show_logs_on_failure)
    try:
        await asyncio.to_thread(consumer.wait_for_output, "brewing Mocha for Ann", 120)
    finally:
        stopped = consumer.stop()
    assert stopped == 0
    assert "created the order-state topic" in consumer.output()
    assert _configs(cluster.admin(), state_topic)["cleanup.policy"] == "compact,delete"


async def test_an_uncompacted_topic_stops_the_consumer_with_exit_2_and_loses_nothing(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    state_topic = f"{fresh_topic}.order-state"
    admin = kafka_broker.admin()
    created = admin.create_topics(
        [NewTopic(state_topic, 1, 1, config={"cleanup.policy": "delete"})], request_timeout=30
    )
    created[state_topic].result(35)
    order = b'{"customer_name": "Vi", "coffee_type": "Tea"}'
    assert len(await asyncio.to_thread(produce_all, bootstrap, fresh_topic, [order])) == 1
    env = {
        "KAFKA_BROKERS": bootstrap,
        "KAFKA_TOPIC": fresh_topic,
        "KAFKA_GROUP_ID": f"g-{fresh_topic}",
    }
    refused = _consumer(tmp_path / "refused.log", env, show_logs_on_failure)
    try:
        await asyncio.to_thread(
            wait_until, lambda: refused.process.poll() is not None, 120, "the consumer to exit"
        )
    finally:
        refused.stop(signal.SIGKILL)
    assert refused.process.returncode == EXIT_BAD_SETTINGS
    errors = [line for line in refused.output().splitlines() if " ERROR " in line]
    assert len(errors) == 1, refused.output()
    assert (
        f"the order-state topic {state_topic} is not compacted (its cleanup.policy is 'delete')"
        in errors[0]
    )
    assert "Traceback" not in refused.output()

    # The fix docs/troubleshooting.md gives; the same consumer then processes the order.
    set_topic_config(bootstrap, state_topic, "cleanup.policy", "compact,delete")
    fixed = _consumer(tmp_path / "fixed.log", env, show_logs_on_failure)
    try:
        await asyncio.to_thread(fixed.wait_for_output, "brewing Tea for Vi", 120)
    finally:
        stopped = fixed.stop()
    assert stopped == 0
