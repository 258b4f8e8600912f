"""Hostile input: property-based tests over gRPC requests and Kafka message bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from coffee.orders.v1 import orders_pb2, orders_pb2_grpc
from coffee_orders_common.validation import InvalidOrder, validate_order
from coffee_orders_consumer.decoder import BadMessage, decode
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_devtools.waiting import async_wait_until
from coffee_orders_localkafka import LocalKafka
from confluent_kafka import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.kafka_io import consume_all, produce_all
from tests.support.load import topic_keys
from tests.support.processes import free_port_pair
from tests.support.report import account
from tests.support.services import (
    brewed_order_ids,
    consumer_settings,
    consumer_status,
    running_consumer,
)

ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
names = st.one_of(
    st.text(),  # any unicode
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.text(alphabet=st.characters(categories=["Cc", "Zs", "Cf"]), max_size=20),
    st.text(min_size=90, max_size=5000),  # around and far over the 100-character limit
    st.just(""),
)
FUZZ = settings(max_examples=150, deadline=None)


@contextlib.contextmanager
def hostile_producer(kafka_broker: LocalKafka, log: Path) -> Iterator[tuple[str, str]]:
    """A producer process on a topic of its own: (address, topic)."""
    topic = f"hostile_{free_port_pair()}"
    kafka_broker.ensure_topics([topic], partitions=3)
    port = free_port_pair()
    env = {"KAFKA_BROKERS": kafka_broker.bootstrap_servers, "KAFKA_TOPIC": topic}
    producer = RunningCommand(log, "producer", "--listen", f"127.0.0.1:{port}", env=env)
    try:
        producer.wait_for_output("producer listening")
        yield f"127.0.0.1:{port}", topic
    finally:
        producer.stop()


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.kafka
def test_hostile_names_and_raw_bytes_get_ok_or_invalid_argument_and_publish_only_valid_orders(
    kafka_broker: LocalKafka, tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> None:
    """Hypothesis drives names and raw request bytes at one producer; then its topic is read."""
    seen: Counter[str] = Counter()  # status codes the fuzzing got, for the reliability report
    log = tmp_path / "producer.log"
    show_logs_on_failure(log)
    with hostile_producer(kafka_broker, log) as (address, topic):
        with grpc.insecure_channel(address) as channel:
            stub = orders_pb2_grpc.OrderServiceStub(channel)
            place_raw = channel.unary_unary(
                "/coffee.orders.v1.OrderService/PlaceOrder",
                request_serializer=None,
                response_deserializer=None,
            )

            @FUZZ
            @given(customer=names, coffee=names)
            def names_agree_with_the_rules(customer: str, coffee: str) -> None:
                request = orders_pb2.PlaceOrderRequest(customer_name=customer, coffee_type=coffee)
                code = _code(lambda: stub.PlaceOrder(request, timeout=30))
                seen[code.name] += 1
                assert code in ALLOWED
                try:
                    validate_order(customer, coffee)
                except InvalidOrder:
                    assert code is grpc.StatusCode.INVALID_ARGUMENT
                else:
                    assert code is grpc.StatusCode.OK

            @FUZZ
            @given(payload=st.binary(max_size=4000))
            def raw_bytes_never_get_unknown_or_internal(payload: bytes) -> None:
                code = _code(lambda: place_raw(payload, timeout=30))
                seen[code.name] += 1
                assert code in ALLOWED

            names_agree_with_the_rules()
            raw_bytes_never_get_unknown_or_internal()

        keys = topic_keys(kafka_broker.bootstrap_servers, topic)
        assert len(keys) == seen["OK"] > 0, "every order answered OK is on the topic, once"
        for message in consume_all(kafka_broker.bootstrap_servers, topic, len(keys)):
            body = json.loads(message.value() or b"")
            validate_order(body["customer_name"], body["coffee_type"])
    output = log.read_text(errors="replace")
    assert "Traceback" not in output and "unexpected" not in output
    account(
        "8. hostile gRPC input (hypothesis: names and raw bytes)",
        sum(seen.values()),
        keys,
        keys,
        None,
        {code: n for code, n in seen.items() if code != "OK"},
        answered_ok=seen["OK"],
        note="on_topic = orders answered OK; every published value passes validation",
    )


def _message(value: bytes | None, key: bytes | None = None) -> Message:
    return Message(topic="t", partition=0, offset=1, value=value, key=key)


@given(value=st.one_of(st.none(), st.binary(max_size=2000)), key=st.none() | st.binary())
def test_decoder_takes_any_bytes(value: bytes | None, key: bytes | None) -> None:
    try:
        decoded = decode(_message(value, key))
    except BadMessage as bad:
        assert bad.reason and bad.kind
    else:
        validate_order(decoded.order.customer_name, decoded.order.coffee_type)
        assert decoded.order_id


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


@given(
    body=st.dictionaries(st.sampled_from(["customer_name", "coffee_type", "size", ""]), json_values)
)
def test_decoder_takes_any_json_object(body: dict[str, object]) -> None:
    value = json.dumps(body).encode()
    try:
        decoded = decode(_message(value))
    except BadMessage as bad:
        assert bad.reason
    else:
        assert decoded.order.customer_name == str(body["customer_name"]).strip()


@pytest.mark.kafka
async def test_poison_stream_end_to_end(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Random bytes between valid orders: nothing crashes, every message is accounted for."""
    caplog.set_level(logging.INFO, logger="coffee_orders.consumer")
    rng = random.Random(20261124)
    values = []
    for i in range(300):
        if i % 3 == 0:
            values.append(json.dumps({"customer_name": f"P{i}", "coffee_type": "Latte"}).encode())
        else:
            values.append(rng.randbytes(rng.randint(0, 600)))
    bootstrap = kafka_broker.bootstrap_servers
    settings_ = consumer_settings(bootstrap, f"g-{fresh_topic}", topic=fresh_topic)
    async with running_consumer(settings_) as consumer:
        await asyncio.to_thread(produce_all, bootstrap, fresh_topic, values)

        async def accounted() -> bool:
            status = await consumer_status(consumer)
            done = status.counters.processed + status.counters.dead_lettered
            return done >= len(values) and all(p.lag == 0 for p in status.partitions)

        await async_wait_until(accounted, 60, "every message processed or dead-lettered")
        status = await consumer_status(consumer)
    good = sum(1 for v in values if v.startswith(b'{"customer_name": "P'))
    assert status.counters.processed == good
    assert status.counters.dead_lettered == len(values) - good
    assert status.counters.errors_total == len(values) - good
    assert "the consume loop stopped" not in caplog.text
    brewed = brewed_order_ids(caplog.records)
    account(
        "9. hostile bytes on the topic (200 random payloads among 100 orders)",
        len(values),
        brewed,
        brewed,
        brewed,
        {"bad messages reported": status.counters.errors_total},
        dead_lettered=status.counters.dead_lettered,
    )
