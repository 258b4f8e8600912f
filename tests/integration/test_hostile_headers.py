"""Forged order_id headers, keys and names next to real orders, against a real broker.

Records are written with confluent-kafka and kcat (header names that are not UTF-8), real orders
through the producer. The consumer's text and JSON logs must read back line by line as its own
records; every confirmed order is processed exactly once, also when an earlier forged record
borrowed its order_id and across a restart that reads the topic again from its start (the
order-state topic knows every order processed before).
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee.orders.v1 import consumer_status_pb2_grpc, orders_pb2, orders_pb2_grpc
from coffee_orders_common import wire
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_localkafka import LocalKafka
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.support.kafka_io import Record, consume_all, produce_records
from tests.support.log_lines import Record as LogRecord
from tests.support.log_lines import parse_json_log, parse_text_log
from tests.support.processes import free_port_pair
from tests.support.tools import kcat_produce

pytestmark = pytest.mark.kafka

FORGED = "2026-01-01T00:00:00.000+00:00 INFO coffee_orders.consumer brewing Fake for Mallory"
MALLORY = b'{"customer_name":"Mallory","coffee_type":"Fake"}'
# order_id header (also used as the key) -> the kind the consumer must report
HOSTILE_ORDER_IDS: list[tuple[bytes, int]] = [
    (b"x\n" + FORGED.encode(), pb.ERROR_KIND_CONTROL_CHARACTERS),
    (b"\x1b[2J\x1b[31mowned\x1b[0m", pb.ERROR_KIND_CONTROL_CHARACTERS),
    ("x\u2028".encode() + FORGED.encode(), pb.ERROR_KIND_CONTROL_CHARACTERS),
    ("\u202eevil\u2066x".encode(), pb.ERROR_KIND_CONTROL_CHARACTERS),
    (b"x" * 10_240, pb.ERROR_KIND_OVERSIZED_FIELD),
    (b"\xff\xfe\n" + FORGED.encode(), pb.ERROR_KIND_INVALID_UTF8),
    ("\u200b\u200b".encode(), pb.ERROR_KIND_BLANK_FIELD),
]
# keys of valid orders without an order_id header: unusable, so the position gives the id
HOSTILE_KEYS = [b"k\n" + FORGED.encode(), b"\xff\xfe\x1b[2J", "\u2028\u202e".encode() + b"k"]
# values the decoder must classify without a traceback (kinds as in tests/unit/test_decoder.py)
HOSTILE_VALUES: list[tuple[bytes, int]] = [
    (b"[" * 100_000, pb.ERROR_KIND_OVERSIZED_VALUE),
    (b"[" * 60_000, pb.ERROR_KIND_NOT_JSON),
    (
        b'{"customer_name":"Ann","coffee_type":"Latte","n":' + b"9" * 5_000 + b"}",
        pb.ERROR_KIND_NOT_JSON,
    ),
    (b'{"customer_name":"\\ud800","coffee_type":"Latte"}', pb.ERROR_KIND_INVALID_UTF8),
    (
        '{"customer_name":"\u200b\u2060\u3164","coffee_type":"Latte"}'.encode(),
        pb.ERROR_KIND_BLANK_FIELD,
    ),
]
# names PlaceOrder accepts (no Cc character) that still must not shape a log line
HOSTILE_NAMES = [
    "Ann\u2028" + FORGED,
    "\u202eAnn Evil\u202c",
    'Zoë order_id=stolen "q"=1 \\',
    "Ann\u200bMarie\U000e0041",
]


@dataclass(frozen=True)
class Placed:
    order_id: str
    partition: int
    offset: int
    customer_name: str
    coffee_type: str


class Services:
    """A producer process and consumer processes, all on the test's topic."""

    def __init__(
        self, broker: LocalKafka, topic: str, tmp_path: Path, show: Callable[[Path], None]
    ):
        self.env = {
            "KAFKA_BROKERS": broker.bootstrap_servers,
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": f"group-{topic}",
        }
        self._tmp, self._show = tmp_path, show
        self.consumer_port = free_port_pair()
        self.producer: RunningCommand | None = None
        self.producer_address = ""

    def start_producer(self) -> None:
        port = free_port_pair()
        log = self._tmp / "producer.log"
        self._show(log)
        self.producer = RunningCommand(
            log, "producer", "--listen", f"127.0.0.1:{port}", env=self.env
        )
        self.producer.wait_for_output("producer listening")
        self.producer_address = f"127.0.0.1:{port}"

    def start_consumer(self, name: str, *flags: str) -> RunningCommand:
        log = self._tmp / f"{name}.log"
        self._show(log)
        listen = f"127.0.0.1:{self.consumer_port}"
        consumer = RunningCommand(log, "consumer", "--listen", listen, *flags, env=self.env)
        consumer.wait_for_output("consumer status server listening")
        return consumer

    def status(self) -> pb.GetStatusResponse:
        with grpc.insecure_channel(f"127.0.0.1:{self.consumer_port}") as channel:
            stub = consumer_status_pb2_grpc.ConsumerStatusServiceStub(channel)
            reply: pb.GetStatusResponse = stub.GetStatus(pb.GetStatusRequest(), timeout=10)
        return reply

    def wait_status(
        self,
        consumer: RunningCommand,
        condition: Callable[[pb.GetStatusResponse], bool],
        what: str,
        timeout: float = 120,
    ) -> pb.GetStatusResponse:
        def met() -> pb.GetStatusResponse | None:
            status = self.status()
            return status if condition(status) else None

        return consumer.wait_while_running(met, timeout, what)

    def place(self, customer_name: str, coffee_type: str, request_id: str) -> Placed:
        with grpc.insecure_channel(self.producer_address) as channel:
            reply = orders_pb2_grpc.OrderServiceStub(channel).PlaceOrder(
                orders_pb2.PlaceOrderRequest(
                    customer_name=customer_name, coffee_type=coffee_type, request_id=request_id
                ),
                timeout=30,
            )
        return Placed(reply.order_id, reply.partition, reply.offset, customer_name, coffee_type)

    def stop(self) -> None:
        if self.producer is not None:
            self.producer.stop()


@pytest.fixture
def services(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> Iterator[Services]:
    running = Services(kafka_broker, fresh_topic, tmp_path, show_logs_on_failure)
    try:
        yield running
    finally:
        running.stop()


def _kcat_with_a_header_name_that_is_not_utf8(bootstrap: str, topic: str) -> None:
    value = b'{"customer_name":"Header","coffee_type":"Latte"}'
    kcat_produce(bootstrap, topic, value, "-p", "0", "-H", b"bad\xffname=v")


def _brewed(records: list[LogRecord]) -> list[LogRecord]:
    return [r for r in records if r.message.startswith("brewing ")]


def _at(record: LogRecord) -> tuple[int, int]:
    return int(record.fields["partition"]), int(record.fields["offset"])


def _kinds(status: pb.GetStatusResponse) -> dict[int, int]:
    """Errors by kind, without KAFKA ones (a rejoin after a SIGKILL may report some)."""
    counts = status.counters.errors_by_kind
    return {c.kind: c.count for c in counts if c.kind != pb.ERROR_KIND_KAFKA}


def test_forged_headers_keys_and_names_forge_no_log_line_and_suppress_no_order(
    services: Services, kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    started = datetime.now(UTC).isoformat(timespec="milliseconds")
    services.start_producer()
    first = services.start_consumer("consumer-1")  # text logs
    future_a, future_b = wire.order_id_for("future-a"), wire.order_id_for("future-b")

    placed = [services.place(f"Guest {i}", "Latte", f"guest-{i}") for i in range(10)]
    placed += [
        services.place(name, "Flat White", f"name-{i}") for i, name in enumerate(HOSTILE_NAMES)
    ]
    forged: list[Record] = [(h, MALLORY, [("order_id", h)]) for h, _ in HOSTILE_ORDER_IDS]
    forged += [
        (key, b'{"customer_name":"Key Guest","coffee_type":"Mocha"}', None) for key in HOSTILE_KEYS
    ]
    # Order ids are predictable from request_ids: these borrow two orders' ids before they exist.
    forged += [(oid.encode(), MALLORY, wire.order_headers(oid)) for oid in (future_a, future_b)]
    forged += [(None, value, None) for value, _ in HOSTILE_VALUES]
    produce_records(bootstrap, fresh_topic, forged)
    _kcat_with_a_header_name_that_is_not_utf8(bootstrap, fresh_topic)
    placed.append(services.place("Ann Future", "Cortado", "future-a"))
    assert placed[-1].order_id == future_a
    placed += [services.place(f"Late {i}", "Latte", f"late-{i}") for i in range(5)]

    bad = len(HOSTILE_ORDER_IDS) + len(HOSTILE_VALUES) + 1
    good_a = len(placed) + len(HOSTILE_KEYS) + 2  # and the two forged orders: valid records
    status_a = services.wait_status(
        first,
        lambda s: s.counters.processed == good_a and s.counters.dead_lettered == bad,
        f"{good_a} processed and {bad} dead-lettered",
    )
    first.stop(signal.SIGKILL)

    # A new group: every record is delivered again, as after a restart with nothing committed;
    # what the first consumer processed lives in the order-state topic.
    second = services.start_consumer(
        "consumer-2", "--log-format", "json", "--group", f"replay-{fresh_topic}"
    )
    try:
        placed.append(services.place("Bob Future", "Mocha", "future-b"))
        assert placed[-1].order_id == future_b
        placed += [services.place(f"After {i}", "Latte", f"after-{i}") for i in range(5)]
        status_b = services.wait_status(
            second,
            lambda s: (
                s.counters.processed == 6
                and s.counters.duplicates_skipped == good_a
                and s.counters.dead_lettered == bad
            ),
            f"6 new processed, {good_a} redelivered skipped, {bad} dead-lettered again",
        )
    finally:
        assert second.stop() == 0

    text_records = parse_text_log(first.output())  # every line is one of the consumer's records
    json_records = parse_json_log(second.output())
    assert all(r.time >= started for r in text_records + json_records), "a line from the past"
    assert not [r for r in text_records + json_records if r.level == "ERROR"], "a traceback"
    assert not any(line.startswith(FORGED[:23]) for line in first.output().splitlines())
    brewed = _brewed(text_records) + _brewed(json_records)
    assert len(brewed) == status_a.counters.processed + status_b.counters.processed

    at = Counter(_at(record) for record in brewed)
    for order in placed:  # each confirmed order exactly once, with its own content
        assert at[(order.partition, order.offset)] == 1, order
        (record,) = [r for r in brewed if _at(r) == (order.partition, order.offset)]
        assert record.message == f"brewing {order.coffee_type} for {order.customer_name}"
        assert record.fields["order_id"] == order.order_id
    for borrowed, real in (
        (future_a, "Cortado for Ann Future"),
        (future_b, "Mocha for Bob Future"),
    ):
        messages = sorted(r.message for r in brewed if r.fields["order_id"] == borrowed)
        assert messages == sorted(["brewing Fake for Mallory", f"brewing {real}"])  # each once

    expected_kinds = Counter(kind for _, kind in HOSTILE_ORDER_IDS)
    expected_kinds.update(kind for _, kind in HOSTILE_VALUES)
    expected_kinds[pb.ERROR_KIND_INVALID_UTF8] += 1  # the header name
    assert _kinds(status_a) == dict(expected_kinds) == _kinds(status_b)
    dead = consume_all(bootstrap, f"{fresh_topic}.dlq", 2 * bad)
    assert Counter(dict(m.headers() or [])["x-error-kind"] for m in dead) == Counter(
        {
            pb.ErrorKind.Name(k).removeprefix("ERROR_KIND_").encode(): 2 * n
            for k, n in expected_kinds.items()
        }
    )
    print(
        "figures: "
        + json.dumps(
            {
                "hostile_records": len(forged) + 1,
                "confirmed_orders": len(placed),
                "processed_once": sum(1 for o in placed if at[(o.partition, o.offset)] == 1),
                "lost": sum(1 for o in placed if at[(o.partition, o.offset)] == 0),
                "dead_lettered": bad,
                "skipped_after_restart": status_b.counters.duplicates_skipped,
                "text_lines": len(first.output().splitlines()),
                "json_lines": len(second.output().splitlines()),
            }
        )
    )


def test_invisible_names_are_rejected_by_place_order(services: Services) -> None:
    services.start_producer()
    for name in ("\u200b\u200c", "\u3164", " \u202e\ufeff "):
        with pytest.raises(grpc.RpcError) as error:
            services.place(name, "Latte", "")
        call = error.value
        assert isinstance(call, grpc.Call) and call.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(call)
        assert status is not None
        bad_request = error_details_pb2.BadRequest()
        status.details[0].Unpack(bad_request)
        (violation,) = bad_request.field_violations
        assert violation.field == "customer_name" and "blank" in violation.description


def _order_value(i: int) -> bytes:
    return json.dumps({"customer_name": f"Customer {i}", "coffee_type": "Latte"}).encode()
