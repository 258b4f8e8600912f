"""Plain confluent-kafka helpers: what is really on a topic (tests and the fault run)."""

from __future__ import annotations

import time
import uuid

from coffee_orders_common.order_state import StateEvent, parse_event
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

Record = tuple[bytes | None, bytes | None, list[tuple[str, str | bytes | None]] | None]


def produce_all(bootstrap: str, topic: str, values: list[bytes], **extra: str) -> list[Message]:
    """Produce values with acks=all and return the messages Kafka acknowledged."""
    return produce_records(bootstrap, topic, [(None, value, None) for value in values], **extra)


def produce_records(
    bootstrap: str, topic: str, records: list[Record], **extra: str
) -> list[Message]:
    """Produce (key, value, headers) records in order with acks=all; return what was acked."""
    acknowledged: list[Message] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 30000,
            **extra,
        }
    )

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            acknowledged.append(msg)

    for key, value, headers in records:
        producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} messages were still undelivered after 60 s"
    return acknowledged


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[Message]:
    """Read the topic from the start with a fresh group until ``expected`` messages arrived."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                messages.append(msg)
    finally:
        consumer.close()
    return messages


def watermarks(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    """(low, high) offsets of every partition of ``topic``, in partition order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for p in sorted(partitions)
        ]
    finally:
        consumer.close()


def committed_order_states(bootstrap: str, topic: str, timeout: float = 60.0) -> list[StateEvent]:
    """Every committed event of the order-state ``topic``, once every transaction open on it
    now has ended (a killed writer's is aborted by the broker after its timeout)."""
    config = {"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4()}"}
    consumer = Consumer(
        {**config, "isolation.level": "read_committed", "enable.auto.commit": False}
    )
    log_ends = Consumer({**config, "isolation.level": "read_uncommitted"})
    deadline = time.monotonic() + timeout
    try:
        numbers = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        partitions = [TopicPartition(topic, number) for number in numbers]
        written = [
            log_ends.get_watermark_offsets(tp, timeout=10, cached=False) for tp in partitions
        ]
        while True:
            stable = [
                consumer.get_watermark_offsets(tp, timeout=10, cached=False) for tp in partitions
            ]
            if all(s[1] >= w[1] for s, w in zip(stable, written, strict=True)):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"a transaction on {topic} stayed open for {timeout:g} s")
            time.sleep(0.2)
        ends = {
            tp.partition: (end if end > low else -1)
            for tp, (low, end) in zip(partitions, stable, strict=True)
        }
        consumer.assign([TopicPartition(topic, n, OFFSET_BEGINNING) for n in numbers])
        events: list[StateEvent] = []
        while time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.2):
                if message.error() is None:
                    events.append(parse_event(message.value()))
            positions = consumer.position(partitions)
            if all(tp.offset >= ends[tp.partition] for tp in positions):
                return events
        raise TimeoutError(f"{topic} was not read to its end within {timeout:g} s")
    finally:
        consumer.close()
        log_ends.close()


def wait_group_offsets_stable(bootstrap: str, group: str, timeout: float = 60.0) -> None:
    """Until the group's committed offsets are stable: no transaction that sent offsets for it
    is still waiting for its markers (the broker answers UNSTABLE_OFFSET_COMMIT meanwhile).

    A test that kills its only broker in that window meets a Kafka limit, not the service's:
    the restarted broker may skip the markers (docs/reliability.md, Known limits, "A
    transaction the restarted broker leaves open"). Tests of an idle outage wait for this.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        request = [ConsumerGroupTopicPartitions(group)]
        future = admin.list_consumer_group_offsets(request, require_stable=True)[group]
        try:
            answer = future.result(timeout=15)
        except (KafkaException, TimeoutError) as exc:  # librdkafka may retry UNSTABLE itself
            last = repr(exc)
        else:
            unstable = [tp for tp in answer.topic_partitions or [] if tp.error is not None]
            if not unstable:
                return
            last = str(unstable[0].error)
        time.sleep(0.2)
    raise AssertionError(f"offsets of group {group} not stable after {timeout:g} s: {last}")
