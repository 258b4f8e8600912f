"""Records of every size, key and header shape: the consumer and its dead-letter path.

Each test puts valid orders around hostile records on a real broker, runs the consumer as a real
process (so its RSS and its lines are read), and checks that every order is processed exactly
once, every bad record is accounted for exactly once (counted by kind, then dead-lettered whole,
as an excerpt, or recorded as DEAD_LETTER_FAILED), what the dead-letter topic holds, and that
the daemon is still RUNNING and SERVING with its memory back under a bound.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_common import wire
from coffee_orders_common.grpc_server import LIVENESS_SERVICE
from coffee_orders_common.validation import Order
from coffee_orders_consumer.dead_letter import (
    EXCERPT_HEADER,
    EXCERPT_VALUE_BYTES,
    UNREADABLE_HEADERS_HEADER,
)
from coffee_orders_consumer.topic_limits import (
    KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    Headers,
    consumer_fetch_config,
    dead_letter_producer_config,
    record_batch_bytes,
)
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_devtools.waiting import async_wait_until
from coffee_orders_localkafka import LocalKafka
from coffee_orders_localkafka.cluster import free_ports
from coffee_orders_localkafka.operations import wait_in_sync
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from grpc_health.v1 import health_pb2

from tests.support.bad_messages import BAD_MESSAGES
from tests.support.kafka_io import (
    Record,
    consume_all,
    produce_records,
    set_topic_config,
    watermarks,
)
from tests.support.processes import brewed_in_output
from tests.support.services import consumer_status, errors_by_kind, health_status
from tests.support.tools import kcat_produce

pytestmark = pytest.mark.kafka

BIG_PRODUCER = {"message.max.bytes": "20000000"}  # the tests' producer: let the broker judge
DECODER_KINDS = {k for _, _, k in BAD_MESSAGES} | {pb.ERROR_KIND_OVERSIZED_VALUE}
UNREADABLE_HEADER_VALUES = (b"not an order", b'{"customer_name":"Ann","coffee_type":"Latte"}')
RSS_BOUND_MB = 400  # after the records are handled; the big ones pass through ~25 MB at a time


def _order(prefix: str, i: int) -> tuple[str, Record]:
    order_id = f"{prefix}-{i}-{uuid.uuid4().hex[:8]}"
    value = wire.encode_order(Order(f"Guest {prefix} {i}", "Latte"))
    return order_id, (order_id.encode(), value, wire.order_headers(order_id))


@dataclass
class Traffic:
    """Records to produce in order: orders (their ids kept) around the bad ones."""

    prefix: str
    records: list[Record] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)
    bad: int = 0
    sent: int = 0

    def orders(self, count: int) -> None:
        for _ in range(count):
            order_id, record = _order(self.prefix, len(self.order_ids))
            self.order_ids.append(order_id)
            self.records.append(record)

    def hostile(self, key: bytes | None, value: bytes | None, headers: Headers | None) -> None:
        self.records.append((key, value, headers))
        self.bad += 1

    def bad_among_orders(self, count: int, orders_before_each: int = 2) -> None:
        """``count`` records that are not orders, keyed ``<prefix>-<n>``, orders before each."""
        for _ in range(count):
            self.orders(orders_before_each)
            self.hostile(f"{self.prefix}-{self.bad}".encode(), b"not an order", None)

    async def produce(self, bootstrap: str, topic: str, **extra: str) -> None:
        """Produce the records not produced yet, in order, with acks=all."""
        records, self.sent = self.records[self.sent :], len(self.records)
        await asyncio.to_thread(produce_records, bootstrap, topic, records, **extra)


def _new_topics(
    bootstrap: str,
    partitions: int = 3,
    limit: int | None = None,
    dead_letter_limit: int | None = None,
    with_dead_letter_topic: bool = True,
) -> str:
    """A new source topic and its ``.dlq``, with these max.message.bytes (else the default)."""
    topic = f"hostile_{uuid.uuid4().hex[:10]}"
    wanted = {topic: limit}
    if with_dead_letter_topic:
        wanted[f"{topic}.dlq"] = dead_letter_limit
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [
        NewTopic(name, partitions, 1, config={"max.message.bytes": str(size)} if size else {})
        for name, size in wanted.items()
    ]
    for future in admin.create_topics(topics, request_timeout=30).values():
        future.result(timeout=30)
    return topic


def _largest_value(limit: int, key: bytes | None, headers: Headers | None = None) -> int:
    """The largest value whose record (with that key and headers) the topic still takes."""
    size = limit - record_batch_bytes(key, b"", headers or [])
    while record_batch_bytes(key, b"x" * size, headers or []) > limit:
        size -= 1
    return size


def _headers_up_to(limit: int, key: bytes, value: bytes, headers: Headers) -> Headers:
    """``headers`` and one more header that brings the record to exactly ``limit`` bytes."""
    size = limit - record_batch_bytes(key, value, [*headers, ("pad", b"")])
    while record_batch_bytes(key, value, [*headers, ("pad", b"p" * size)]) > limit:
        size -= 1
    return [*headers, ("pad", b"p" * size)]


def _memory_mb(pid: int, field: str = "VmRSS") -> float:
    """VmRSS (now) or VmHWM (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


def _copies(bootstrap: str, dead_letter_topic: str, expected: int) -> list[Message]:
    """Everything on the dead-letter topic, which must hold exactly ``expected`` records."""
    on_topic = sum(high - low for low, high in watermarks(bootstrap, dead_letter_topic))
    assert on_topic == expected, f"{dead_letter_topic} holds {on_topic}, expected {expected}"
    copies = consume_all(bootstrap, dead_letter_topic, expected, timeout=120)
    assert len(copies) == expected
    excerpts = sum(1 for copy in copies if EXCERPT_HEADER in _headers(copy))
    print(f"figures: {dead_letter_topic}: {expected} copies, {excerpts} of them excerpts")
    return copies


def _headers(message: Message) -> dict[str, bytes]:
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return {
        name: value.encode() if isinstance(value, str) else value or b"" for name, value in pairs
    }


@dataclass
class ConsumerProcess:
    command: RunningCommand
    address: str
    topic: str

    async def settled(self, traffic: Traffic, failed: int = 0) -> pb.GetStatusResponse:
        """Wait until every order is processed and every bad record's copy settled; check it."""

        async def accounted() -> pb.GetStatusResponse | None:
            status = await consumer_status(self.address)
            kinds = errors_by_kind(status)
            copies = status.counters.dead_lettered + kinds.get(pb.ERROR_KIND_DEAD_LETTER_FAILED, 0)
            done = status.counters.processed >= len(traffic.order_ids) and copies >= traffic.bad
            caught_up = bool(status.partitions) and all(p.lag == 0 for p in status.partitions)
            return status if done and caught_up else None

        started = time.monotonic()
        status = await async_wait_until(accounted, 150, "every record accounted for, lag 0")
        seconds = time.monotonic() - started
        kinds = errors_by_kind(status)
        brewed = Counter(brewed_in_output(self.command))
        assert brewed == Counter(traffic.order_ids), "each order processed exactly once"
        assert status.counters.processed == len(traffic.order_ids)
        assert sum(n for k, n in kinds.items() if k in DECODER_KINDS | {0}) == traffic.bad
        assert kinds.get(pb.ERROR_KIND_DEAD_LETTER_FAILED, 0) == failed
        assert status.counters.dead_lettered == traffic.bad - failed
        assert status.state == pb.CONSUMER_STATE_RUNNING
        assert await health_status(self.address) == health_pb2.HealthCheckResponse.SERVING
        assert "the consume loop stopped" not in self.command.output()
        print(
            f"figures: {traffic.prefix}: {len(traffic.order_ids)} orders confirmed, "
            f"{status.counters.processed} processed once each, {traffic.bad} bad: "
            f"{status.counters.dead_lettered} dead-lettered, {failed} DEAD_LETTER_FAILED; "
            f"settled {seconds:.1f} s after the wait began; RSS {self.rss_mb():.0f} MB "
            f"(peak {self.rss_mb('VmHWM'):.0f} MB)"
        )
        return status

    def rss_mb(self, field: str = "VmRSS") -> float:
        return _memory_mb(self.command.process.pid, field)


@pytest.fixture
def start_consumer(
    tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> Iterator[Callable[..., ConsumerProcess]]:
    """Start ``coffee-orders consumer`` on a topic; stopped (SIGTERM, exit 0) after the test."""
    started: list[RunningCommand] = []

    def start(bootstrap: str, topic: str, dead_letter_topic: str, **env: str) -> ConsumerProcess:
        port = free_ports(1)[0]
        log = tmp_path / f"consumer-{len(started)}.log"
        show_logs_on_failure(log)
        environment = {
            "KAFKA_BROKERS": bootstrap,
            "KAFKA_TOPIC": topic,
            "KAFKA_DLQ_TOPIC": dead_letter_topic,
            "KAFKA_GROUP_ID": f"group-{topic}",
            **env,
        }
        command = RunningCommand(log, "consumer", "--listen", f"127.0.0.1:{port}", env=environment)
        started.append(command)
        command.wait_for_output("consumer status server listening", timeout=60)
        return ConsumerProcess(command, f"127.0.0.1:{port}", topic)

    yield start
    for command in started:
        assert command.stop() == 0, command.output()[-3000:]


# ---- sizes the clients are given ---------------------------------------------------------------


def test_fetch_and_dead_letter_sizes_follow_the_topics() -> None:
    big = 200_000_000
    fetch = consumer_fetch_config(big, {})
    assert int(fetch["fetch.max.bytes"]) >= big
    assert int(fetch["receive.message.max.bytes"]) >= int(fetch["fetch.max.bytes"]) + 512
    default = consumer_fetch_config(KAFKA_DEFAULT_MAX_MESSAGE_BYTES, {})
    assert int(default["receive.message.max.bytes"]) >= 100_000_000  # never below librdkafka's
    chosen = consumer_fetch_config(big, {"fetch.max.bytes": "1000000"})  # the operator's wins
    assert "fetch.max.bytes" not in chosen and int(chosen["receive.message.max.bytes"]) > big
    producer = dead_letter_producer_config(100_000, {})
    assert int(producer["message.max.bytes"]) >= 100_000
    assert int(producer["batch.size"]) < 100_000
    assert dead_letter_producer_config(100, {})["batch.size"] == "1"
    assert "batch.size" not in dead_letter_producer_config(100_000, {"batch.size": "5000"})


# ---- the topic's own limit ----------------------------------------------------------------------


async def test_records_at_the_topic_limit_and_one_byte_over(
    kafka_broker: LocalKafka, start_consumer: Callable[..., ConsumerProcess]
) -> None:
    """Kafka's default limit on both topics: a record at the limit fits the source, but its copy
    with the error headers does not fit the dead-letter topic: an excerpt is written."""
    bootstrap = kafka_broker.bootstrap_servers
    topic = _new_topics(bootstrap)
    limit = KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    key = b"at-the-limit"
    largest = _largest_value(limit, key)
    traffic = Traffic("limit")
    for size in (largest, largest - 1):
        traffic.orders(5)
        traffic.hostile(key, b"x" * size, None)
    traffic.orders(5)
    await traffic.produce(bootstrap, topic, **BIG_PRODUCER)
    assert record_batch_bytes(key, b"x" * largest, []) == limit  # the estimate is Kafka's own

    # One byte over: the broker refuses it; nothing reaches the topic or the consumer.
    refused: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": bootstrap, **BIG_PRODUCER})
    producer.produce(topic, b"x" * (largest + 1), key, on_delivery=lambda e, _: refused.append(e))
    assert await asyncio.to_thread(producer.flush, 60) == 0
    assert refused[0] is not None and refused[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    on_topic = sum(high - low for low, high in watermarks(bootstrap, topic))
    assert on_topic == len(traffic.records)

    consumer = start_consumer(bootstrap, topic, f"{topic}.dlq")
    await consumer.settled(traffic)
    copies = _copies(bootstrap, f"{topic}.dlq", traffic.bad)
    for copy in copies:
        headers = _headers(copy)
        assert b"larger than" in headers[EXCERPT_HEADER]
        assert copy.value() == b"x" * EXCERPT_VALUE_BYTES
        assert int(headers["x-original-value-bytes"]) in (largest, largest - 1)
        assert copy.key() == key and headers["x-original-topic"] == topic.encode()
        assert headers["x-error-kind"] in (b"NOT_JSON", b"OVERSIZED_VALUE")
    assert consumer.rss_mb() < RSS_BOUND_MB
    assert "dead-lettered an excerpt" in consumer.command.output()


async def test_large_records_on_a_raised_topic_are_copied_whole(
    kafka_broker: LocalKafka, start_consumer: Callable[..., ConsumerProcess]
) -> None:
    """A topic raised to 11 MB: a 5 MB record, ten 1 MB records in a row, a 10 MB record (ten
    times Kafka's default limit); the dead-letter topic takes them whole."""
    bootstrap = kafka_broker.bootstrap_servers
    limit = 11_000_000
    topic = _new_topics(bootstrap, limit=limit, dead_letter_limit=limit + 64 * 1024)
    traffic = Traffic("raised")
    sizes = [5_000_000, *[1_000_000] * 10, 10_000_000]
    values = {}
    for i, size in enumerate(sizes):
        traffic.orders(2)
        value = bytes([65 + i % 26]) * size
        values[f"big-{i}".encode()] = hashlib.sha256(value).digest()
        traffic.hostile(f"big-{i}".encode(), value, [("trace", f"t-{i}".encode())])
    traffic.orders(2)
    await traffic.produce(bootstrap, topic, **BIG_PRODUCER)

    consumer = start_consumer(bootstrap, topic, f"{topic}.dlq")
    await consumer.settled(traffic)
    for copy in _copies(bootstrap, f"{topic}.dlq", traffic.bad):
        headers = _headers(copy)
        assert EXCERPT_HEADER not in headers
        assert hashlib.sha256(copy.value() or b"").digest() == values[copy.key() or b""]
        assert headers["trace"].startswith(b"t-")  # the original headers are kept
    assert consumer.rss_mb() < RSS_BOUND_MB
    assert f"topic_max_message_bytes={limit}" in consumer.command.output()


# ---- a dead-letter topic that cannot take the copies ---------------------------------------------


async def test_dead_letter_topic_smaller_than_the_source_gets_excerpts(
    kafka_broker: LocalKafka, start_consumer: Callable[..., ConsumerProcess]
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = _new_topics(bootstrap, dead_letter_limit=100_000)
    traffic = Traffic("small-dlq")
    traffic.orders(3)
    traffic.hostile(b"fits", b"f" * 50_000, None)  # whole
    traffic.orders(3)
    traffic.hostile(b"long-value", b"v" * 300_000, None)  # excerpt of the value
    traffic.hostile(b"k" * 500_000, b"long key", None)  # excerpt without the key
    many = [(f"h{i}", b"h" * 1000) for i in range(300)]
    traffic.hostile(b"many-headers", b"many headers", list(many))  # excerpt without headers
    for i in range(300):  # small copies: batched, each batch within the topic's limit
        traffic.hostile(f"small-{i}".encode(), b"s" * 900, None)
        if i % 30 == 0:
            traffic.orders(1)
    await traffic.produce(bootstrap, topic, **BIG_PRODUCER)

    consumer = start_consumer(bootstrap, topic, f"{topic}.dlq")
    await consumer.settled(traffic)
    copies = {copy.key(): copy for copy in _copies(bootstrap, f"{topic}.dlq", traffic.bad)}
    assert EXCERPT_HEADER not in _headers(copies[b"fits"])
    assert copies[b"fits"].value() == b"f" * 50_000
    long_value = _headers(copies[b"long-value"])
    assert copies[b"long-value"].value() == b"v" * EXCERPT_VALUE_BYTES
    assert long_value["x-original-value-bytes"] == b"300000"
    assert b"max.message.bytes (100000)" in long_value[EXCERPT_HEADER]
    keyless = [c for c in copies.values() if _headers(c).get("x-original-key-bytes") == b"500000"]
    assert len(keyless) == 1 and keyless[0].key() is None
    assert keyless[0].value() == b"long key"
    headers = _headers(copies[b"many-headers"])
    assert EXCERPT_HEADER in headers and "h0" not in headers
    assert int(headers["x-original-headers-bytes"]) > 300_000
    assert sum(1 for key in copies if key and key.startswith(b"small-")) == 300
    assert consumer.rss_mb() < RSS_BOUND_MB


async def test_dead_letter_topic_refusing_every_copy_is_recorded_and_skipped(
    kafka_broker: LocalKafka, start_consumer: Callable[..., ConsumerProcess]
) -> None:
    """The dead-letter topic's limit drops below any copy after the consumer read it: the broker
    refuses the whole copy, then the excerpt; each is DEAD_LETTER_FAILED, once, and skipped."""
    bootstrap = kafka_broker.bootstrap_servers
    topic = _new_topics(bootstrap)
    consumer = start_consumer(bootstrap, topic, f"{topic}.dlq")
    set_topic_config(bootstrap, f"{topic}.dlq", "max.message.bytes", "120")
    traffic = Traffic("refused")
    for i, (_, value, _) in enumerate(BAD_MESSAGES * 2):
        traffic.orders(1)
        traffic.hostile(f"bad-{i}".encode(), value, None)
    traffic.orders(1)
    await traffic.produce(bootstrap, topic)

    status = await consumer.settled(traffic, failed=traffic.bad)
    failures = [e for e in status.recent_errors if e.kind == pb.ERROR_KIND_DEAD_LETTER_FAILED]
    assert failures and all("MSG_SIZE_TOO_LARGE" in e.message for e in failures)
    assert all("an excerpt was refused too" in e.message for e in failures)
    assert sum(high - low for low, high in watermarks(bootstrap, f"{topic}.dlq")) == 0


async def test_missing_dead_letter_topic_is_recorded_and_skipped(
    kafka_broker: LocalKafka, start_consumer: Callable[..., ConsumerProcess]
) -> None:
    """No dead-letter topic (and no auto-creation): the first copy times out, the metadata says
    why, and later copies fail at once while the topic stays missing; nothing stops."""
    bootstrap = kafka_broker.bootstrap_servers
    topic = _new_topics(bootstrap, with_dead_letter_topic=False)
    consumer = start_consumer(bootstrap, topic, f"{topic}.missing")
    assert "cannot read max.message.bytes of topic" in consumer.command.output()
    traffic = Traffic("missing")
    traffic.orders(2)
    traffic.hostile(b"first", b"not an order", None)
    traffic.orders(2)
    await traffic.produce(bootstrap, topic)
    await consumer.settled(traffic, failed=1)
    for i in range(50):
        traffic.hostile(f"later-{i}".encode(), b"still not an order", None)
        traffic.orders(1)
    await traffic.produce(bootstrap, topic)
    status = await consumer.settled(traffic, failed=traffic.bad)
    failed = [e for e in status.recent_errors if e.kind == pb.ERROR_KIND_DEAD_LETTER_FAILED]
    assert failed and all("does not exist" in e.message for e in failed)


# ---- keys and headers ---------------------------------------------------------------------------


async def test_huge_keys_and_headers_and_unreadable_header_names(
    kafka_broker: LocalKafka, start_consumer: Callable[..., ConsumerProcess]
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = _new_topics(bootstrap, partitions=1)
    limit = KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    traffic = Traffic("keys")
    traffic.orders(3)
    traffic.hostile(b"K" * 1_000_000, b"a huge key", None)  # the copy still fits: whole
    traffic.orders(3)
    traffic.hostile(b"L" * _largest_value(limit, b"x"), b"x", None)  # at the limit: excerpt
    traffic.orders(3)
    many: Headers = [(f"header-{i}", b"v" * 500) for i in range(2000)]
    # Headers up to the limit: the record fits, its copy with the error headers does not.
    traffic.hostile(b"headers", b"headers", _headers_up_to(limit, b"headers", b"headers", many))
    traffic.hostile(b"one-big-header", b"one", _headers_up_to(limit, b"one-big-header", b"one", []))
    traffic.orders(3)
    await traffic.produce(bootstrap, topic, **BIG_PRODUCER)
    # A header name that is not UTF-8: confluent-kafka cannot even list the headers, on a record
    # that is not an order and on one that would be.
    for value in UNREADABLE_HEADER_VALUES:
        await asyncio.to_thread(kcat_produce, bootstrap, topic, value, b"-H", b"bad\xffname=value")
        traffic.bad += 1

    consumer = start_consumer(bootstrap, topic, f"{topic}.dlq")
    await consumer.settled(traffic)
    copies = _copies(bootstrap, f"{topic}.dlq", traffic.bad)
    by_value = {copy.value(): copy for copy in copies}
    assert by_value[b"a huge key"].key() == b"K" * 1_000_000
    assert EXCERPT_HEADER not in _headers(by_value[b"a huge key"])
    at_limit = _headers(by_value[b"x"])
    assert EXCERPT_HEADER in at_limit and by_value[b"x"].key() is None
    assert at_limit["x-original-key-bytes"] == str(_largest_value(limit, b"x")).encode()
    for value in (b"headers", b"one"):
        copy = _headers(by_value[value])
        assert EXCERPT_HEADER in copy and int(copy["x-original-headers-bytes"]) > 1_000_000
    for value in UNREADABLE_HEADER_VALUES:
        unreadable = _headers(by_value[value])
        assert EXCERPT_HEADER not in unreadable
        assert not any(name.startswith("bad") for name in unreadable)
        # Said by the copy, or by the kind where the decoder reads the headers first.
        kind = unreadable["x-error-kind"]
        assert UNREADABLE_HEADERS_HEADER in unreadable or kind == b"INVALID_UTF8"
    assert consumer.rss_mb() < RSS_BOUND_MB


# ---- a flood ------------------------------------------------------------------------------------


async def test_flood_of_bad_records_among_orders(
    kafka_broker: LocalKafka, start_consumer: Callable[..., ConsumerProcess]
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = _new_topics(bootstrap)
    traffic = Traffic("flood")
    kinds: Counter[int] = Counter()
    for i in range(5000):
        _, value, kind = BAD_MESSAGES[i % len(BAD_MESSAGES)]
        traffic.hostile(f"bad-{i}".encode(), value, None)
        kinds[kind] += 1
        if i % 10 == 9:
            traffic.orders(1)
    await traffic.produce(bootstrap, topic)

    consumer = start_consumer(bootstrap, topic, f"{topic}.dlq")
    status = await consumer.settled(traffic)
    counted = errors_by_kind(status)
    assert {kind: counted[kind] for kind in kinds} == dict(kinds)
    copies = _copies(bootstrap, f"{topic}.dlq", traffic.bad)
    assert len({copy.key() for copy in copies}) == traffic.bad  # each exactly once
    by_kind = Counter(_headers(copy)["x-error-kind"] for copy in copies)
    assert by_kind == Counter(
        {pb.ErrorKind.Name(k).removeprefix("ERROR_KIND_").encode(): n for k, n in kinds.items()}
    )
    assert consumer.rss_mb() < RSS_BOUND_MB


# ---- the dead-letter topic unreachable (retriable) --------------------------------------------


def _create_placed_topics(bootstrap: str, placement: dict[str, list[list[int]]]) -> None:
    """Topics whose partitions live on the given nodes only (min.insync.replicas 1)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [
        NewTopic(name, len(nodes), replica_assignment=nodes, config={"min.insync.replicas": "1"})
        for name, nodes in placement.items()
    ]
    for future in admin.create_topics(topics, request_timeout=30).values():
        future.result(timeout=30)


async def _kill_node_3_once_joined(cluster: LocalKafka, consumer: ConsumerProcess) -> None:
    """Kill node 3 once the cluster is whole again and ``consumer`` has its partitions. What
    these tests check is the copies' wait; a group joining through a coordinator that was just
    killed (seconds after its restart) once kept a consumer unassigned past every bound."""
    await asyncio.to_thread(wait_in_sync, cluster)

    async def assigned() -> bool:
        return bool((await consumer_status(consumer.address)).partitions)

    await async_wait_until(assigned, 90, "the consumer's partitions assigned")
    cluster.kill_node(3)


async def _copies_stuck(cluster: LocalKafka, consumer: ConsumerProcess, traffic: Traffic) -> None:
    """Kill node 3 (the dead-letter topic's), produce, wait until the consumer retries."""
    await _kill_node_3_once_joined(cluster, consumer)
    await traffic.produce(cluster.bootstrap_servers, consumer.topic)

    async def retrying() -> bool:
        status = await consumer_status(consumer.address)
        waiting = any("not confirmed" in e.message for e in status.recent_errors)
        return waiting and status.state == pb.CONSUMER_STATE_DEGRADED

    await async_wait_until(retrying, 60, "copies waiting for node 3")


@pytest.mark.cluster
@pytest.mark.timeout(600)
async def test_dead_letter_leader_down_waits_gives_up_and_stopping_keeps_the_offsets(
    kafka_cluster_factory: Callable[..., LocalKafka],
    start_consumer: Callable[..., ConsumerProcess],
) -> None:
    """The dead-letter topic lives on node 3 alone, the sources on nodes 1 and 2: node 3 down
    is Kafka unreachable for the copies only (retriable errors)."""
    cluster = kafka_cluster_factory(nodes=3)
    bootstrap = cluster.bootstrap_servers
    sources = [f"hostile_{uuid.uuid4().hex[:10]}" for _ in range(3)]
    dead_letters = f"{sources[0]}.dlq"
    _create_placed_topics(
        bootstrap,
        {dead_letters: [[3]], **{topic: [[1, 2], [2, 1], [1, 2]] for topic in sources}},
    )
    quick = {"KAFKA_DELIVERY_TIMEOUT_MS": "3000", "KAFKA_DLQ_TOPIC": dead_letters}

    # 1. Down for a while within the retry budget: the copies wait, then land; none is lost.
    # The wait outlasts the watchdog's stall bound (the least it may be: delivery timeout + 10 s)
    # without tripping it: each retry round is progress (liveness stays SERVING, no exit 70).
    stall_s = 13.0
    patient = start_consumer(
        bootstrap,
        sources[0],
        dead_letters,
        COFFEE_CONSUMER_DEAD_LETTER_RETRY="120",
        COFFEE_WORKER_STALL_TIMEOUT=str(stall_s),
        **quick,
    )
    first = Traffic("patient")
    first.bad_among_orders(20)
    first.orders(2)
    await _copies_stuck(cluster, patient, first)
    stuck_at = time.monotonic()
    while time.monotonic() - stuck_at < 2 * stall_s:  # prove a negative: no failure meanwhile
        assert patient.command.process.poll() is None, patient.command.output()[-2000:]
        serving = health_pb2.HealthCheckResponse.SERVING
        assert await health_status(patient.address, LIVENESS_SERVICE) == serving
        await asyncio.sleep(1)
    await asyncio.to_thread(cluster.start_node, 3)
    await patient.settled(first)
    assert sum(high - low for low, high in watermarks(bootstrap, dead_letters)) == first.bad

    # 2. Down for longer than the budget: recorded as DEAD_LETTER_FAILED and skipped; later
    # copies get one attempt each; once node 3 is back, copies land again.
    hasty = start_consumer(
        bootstrap, sources[1], dead_letters, COFFEE_CONSUMER_DEAD_LETTER_RETRY="4", **quick
    )
    await _kill_node_3_once_joined(cluster, hasty)
    second = Traffic("hasty")
    second.bad_among_orders(20)
    await second.produce(bootstrap, sources[1])
    await hasty.settled(second, failed=second.bad)
    second.hostile(b"hasty-while-given-up", b"not an order", None)
    second.orders(2)
    await second.produce(bootstrap, sources[1])
    await hasty.settled(second, failed=second.bad)
    await asyncio.to_thread(cluster.start_node, 3)
    second.hostile(b"hasty-after", b"not an order", None)
    second.orders(2)
    await second.produce(bootstrap, sources[1])
    await hasty.settled(second, failed=second.bad - 1)

    # 3. Stopped while copies wait: it exits in time, their offsets are not committed, and the
    # next consumer of the group dead-letters them (and skips the orders already processed).
    stopping = start_consumer(bootstrap, sources[2], dead_letters, **quick)
    third = Traffic("stopping")
    third.bad_among_orders(5)
    third.orders(2)
    await _copies_stuck(cluster, stopping, third)
    assert await asyncio.to_thread(stopping.command.stop) == 0
    await asyncio.to_thread(cluster.start_node, 3)
    again = start_consumer(bootstrap, sources[2], dead_letters, **quick)
    status = await async_wait_until(
        lambda: _dead_lettered_at_least(again, third.bad), 90, "the copies written after all"
    )
    brewed = Counter(brewed_in_output(stopping.command, again.command))
    assert brewed == Counter(third.order_ids), "each order processed exactly once"
    assert errors_by_kind(status).get(pb.ERROR_KIND_DEAD_LETTER_FAILED, 0) == 0
    on_topic = sum(high - low for low, high in watermarks(bootstrap, dead_letters))
    copies = consume_all(bootstrap, dead_letters, on_topic, timeout=120)
    keys = Counter(copy.key() for copy in copies)
    assert {key for key in keys if (key or b"").startswith(b"stopping-")} == {
        f"stopping-{i}".encode() for i in range(5)
    }  # at least once each: a copy in flight at the stop may land as well
    assert keys[b"hasty-after"] == 1 and not any(
        (key or b"").startswith(b"hasty-") for key in keys if key != b"hasty-after"
    )
    print(f"figures: dead-letter topic {on_topic} records, copies per key {sorted(keys.values())}")


async def _dead_lettered_at_least(
    consumer: ConsumerProcess, count: int
) -> pb.GetStatusResponse | None:
    status = await consumer_status(consumer.address)
    caught_up = bool(status.partitions) and all(p.lag == 0 for p in status.partitions)
    return status if status.counters.dead_lettered >= count and caught_up else None
