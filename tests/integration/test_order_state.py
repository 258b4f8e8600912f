"""The order state in Kafka: no order processed twice on any number of machines, and callers can
follow their order to the end, from any instance, after any restart.

Every case runs two or more consumer processes, each with a HOME of its own (a machine with an
empty disk), and more than one producer instance (a new request_id ledger each). An order is
"processed" when a consumer logs its "brewing" line; the order-state topic must hold exactly one
PROCESSED event per order. Figures are in docs/reliability.md ("Order state in Kafka").
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from coffee.orders.v1 import order_tracking_pb2 as tracking_pb
from coffee.orders.v1 import order_tracking_pb2_grpc, orders_pb2, orders_pb2_grpc
from coffee_orders_common.order_state import State
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_devtools.waiting import async_wait_until
from coffee_orders_localkafka import LocalKafka
from confluent_kafka.admin import AdminClient, NewPartitions

from tests.support.kafka_io import committed_order_states
from tests.support.processes import brewed_in_output, free_port_pair
from tests.support.services import consumer_status, producer_settings, running_producer

pytestmark = pytest.mark.kafka
BOUND_S = 150  # "hung", with room for a loaded 2-core machine
PROCESSED = tracking_pb.ORDER_STATE_PROCESSED


class Consumers:
    """Consumer processes of one group, each with a HOME of its own."""

    def __init__(
        self, bootstrap: str, topic: str, tmp_path: Path, show_logs: Callable[[Path], None]
    ):
        self.bootstrap, self.topic, self.tmp_path, self.show_logs = (
            bootstrap,
            topic,
            tmp_path,
            show_logs,
        )
        self.commands: list[RunningCommand] = []
        self.addresses: list[str] = []

    def start(self) -> tuple[RunningCommand, str]:
        number = len(self.commands)
        home = self.tmp_path / f"machine-{number}"
        home.mkdir()
        address = f"127.0.0.1:{free_port_pair()}"
        log = self.tmp_path / f"consumer-{number}.log"
        self.show_logs(log)
        command = RunningCommand(
            log,
            "consumer",
            "--listen",
            address,
            env={
                "HOME": str(home),
                "XDG_STATE_HOME": str(home / "state"),
                "KAFKA_BROKERS": self.bootstrap,
                "KAFKA_TOPIC": self.topic,
                "KAFKA_GROUP_ID": f"g-{self.topic}",
                "COFFEE_GRACE_PERIOD": "5",
            },
        )
        self.commands.append(command)
        self.addresses.append(address)
        command.wait_for_output("consumer status server listening", timeout=BOUND_S)
        return command, address

    def brewed(self) -> Counter[str]:
        return Counter(brewed_in_output(*self.commands))

    async def skipped(self, *addresses: str) -> int:
        total = 0
        for address in addresses:
            total += (await consumer_status(address)).counters.duplicates_skipped
        return total

    async def all_hold_partitions(self, *addresses: str) -> bool:
        for address in addresses:
            if not (await consumer_status(address)).partitions:
                return False
        return True

    def stop_all(self) -> None:
        for command in self.commands:
            if command.process.poll() is None:
                command.stop()


@pytest.fixture
def consumers(
    kafka_broker: LocalKafka, tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> Iterator[Callable[[str], Consumers]]:
    made: list[Consumers] = []

    def make(topic: str) -> Consumers:
        made.append(
            Consumers(kafka_broker.bootstrap_servers, topic, tmp_path, show_logs_on_failure)
        )
        return made[-1]

    yield make
    for group in made:
        group.stop_all()


@asynccontextmanager
async def producer(bootstrap: str, topic: str) -> AsyncIterator[str]:
    """A new producer instance (a request_id ledger of its own), in-process."""
    async with running_producer(producer_settings(bootstrap, topic=topic)) as address:
        yield address


async def place(
    address: str, request_ids: list[str], wait_for: int = orders_pb2.WAIT_FOR_CONFIRMED
) -> list[orders_pb2.PlaceOrderResponse]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = orders_pb2_grpc.OrderServiceStub(channel)
        calls = [
            stub.PlaceOrder(
                orders_pb2.PlaceOrderRequest(
                    customer_name=f"Customer {rid}",
                    coffee_type="Latte",
                    request_id=rid,
                    wait_for=wait_for,  # type: ignore[arg-type]
                ),
                timeout=BOUND_S,
            )
            for rid in request_ids
        ]
        return list(await asyncio.gather(*calls))


async def get_orders(address: str, order_ids: list[str]) -> dict[str, tracking_pb.OrderStatus]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = order_tracking_pb2_grpc.OrderTrackingServiceStub(channel)
        replies = await asyncio.gather(
            *(stub.GetOrder(tracking_pb.GetOrderRequest(order_id=o), timeout=30) for o in order_ids)
        )
        return {o: reply.order for o, reply in zip(order_ids, replies, strict=True)}


async def watch_to_the_end(address: str, order_id: str) -> list[tracking_pb.OrderStatus]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = order_tracking_pb2_grpc.OrderTrackingServiceStub(channel)
        call = stub.WatchOrder(tracking_pb.WatchOrderRequest(order_id=order_id), timeout=30)
        return [reply.order async for reply in call]


def one_processed_event_each(bootstrap: str, topic: str, order_ids: list[str]) -> Counter[str]:
    events = committed_order_states(bootstrap, f"{topic}.order-state")
    return Counter(e.order_id for e in events if e.state is State.PROCESSED)


async def test_a_retry_through_another_producer_after_a_failover_is_skipped_and_tracked_alike(
    kafka_broker: LocalKafka, fresh_topic: str, consumers: Callable[[str], Consumers]
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    group = consumers(fresh_topic)
    first, first_address = group.start()
    second, second_address = group.start()
    request_ids = [f"failover-{i}" for i in range(40)]
    await async_wait_until(
        lambda: group.all_hold_partitions(first_address, second_address),
        BOUND_S,
        "both members hold partitions",
    )

    # Placed through producer 1, answered once processed: each says by whom.
    async with producer(bootstrap, fresh_topic) as one:
        placed = await place(one, request_ids, orders_pb2.WAIT_FOR_PROCESSED)
    order_ids = [p.order_id for p in placed]
    assert all(p.processing.state == PROCESSED for p in placed)
    by_first = sum(f"/{first.pid} " in p.processing.processed_by for p in placed)
    assert 0 < by_first < len(placed), [p.processing.processed_by for p in placed]

    # The first member goes away; every caller retries through another producer instance.
    assert first.stop(signal.SIGTERM) == 0
    async with producer(bootstrap, fresh_topic) as two:
        copies = await place(two, request_ids)
        assert [c.order_id for c in copies] == order_ids, "same request_id, same order_id"
        assert all(c.offset > p.offset for c, p in zip(copies, placed, strict=True))
        await async_wait_until(
            lambda: _at_least(group.skipped(second_address), len(order_ids)),
            BOUND_S,
            "every copy skipped by the remaining member",
        )
        from_producer = await get_orders(two, order_ids)
    from_consumer = await get_orders(second_address, order_ids)
    assert group.brewed() == Counter(order_ids), "each order processed once"
    for p in placed:  # the same answer from every instance: the first processing
        assert from_producer[p.order_id] == from_consumer[p.order_id] == p.processing

    # Every process restarts (new machines, empty disks): the answers stay, copies are skipped.
    assert second.stop(signal.SIGTERM) == 0
    third, third_address = group.start()
    async with producer(bootstrap, fresh_topic) as three:
        after_restart = await get_orders(three, order_ids)
        assert all(after_restart[p.order_id] == p.processing for p in placed)
        again = await place(three, request_ids[:10], orders_pb2.WAIT_FOR_PROCESSED)
        assert [a.processing for a in again] == [p.processing for p in placed[:10]]
        await place(three, request_ids[10:])
    await async_wait_until(
        lambda: _at_least(group.skipped(third_address), len(order_ids)),
        BOUND_S,
        "every copy skipped after the restart",
    )
    watched = await watch_to_the_end(third_address, order_ids[0])
    assert [w.state for w in watched] == [PROCESSED]
    assert group.brewed() == Counter(order_ids)
    events = one_processed_event_each(bootstrap, fresh_topic, order_ids)
    assert events == Counter(order_ids), "one PROCESSED event per order"
    print(
        "figures: "
        + json.dumps(
            {
                "orders": len(order_ids),
                "confirmed": len(placed) + len(copies) + len(request_ids),
                "processed": sum(group.brewed().values()),
                "processed_twice": sum(n - 1 for n in group.brewed().values()),
                "copies_skipped": len(order_ids) * 2,
                "processed_events": sum(events.values()),
            }
        )
    )
    third.stop()


async def test_copies_after_partitions_were_added_under_load_are_skipped(
    kafka_broker: LocalKafka, consumers: Callable[[str], Consumers]
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = f"grow_{fresh_suffix()}"
    kafka_broker.ensure_topics([topic, f"{topic}.dlq"], partitions=2)
    group = consumers(topic)
    addresses = [group.start()[1], group.start()[1]]
    request_ids = [f"grow-{i}" for i in range(60)]
    async with producer(bootstrap, topic) as one:
        placed = await place(one, request_ids, orders_pb2.WAIT_FOR_PROCESSED)

        # Under load: new orders keep coming while the topic grows from 2 to 3 partitions.
        load = asyncio.create_task(place(one, [f"load-{i}" for i in range(300)]))
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_partitions([NewPartitions(topic, 3)])[topic].result(30)
        loaded = await load

    async with producer(bootstrap, topic) as two:  # knows the 3 partitions from its start
        copies = await place(two, request_ids)
    moved = sum(c.partition != p.partition for c, p in zip(copies, placed, strict=True))
    assert moved > 0, "some copies land on another partition than their first"
    await async_wait_until(
        lambda: _at_least(group.skipped(*addresses), len(request_ids)),
        BOUND_S,
        "every copy skipped, the moved ones too",
    )
    expected = Counter(p.order_id for p in placed) + Counter(o.order_id for o in loaded)
    await async_wait_until(lambda: _brewed_all(group, expected), BOUND_S, "every order processed")
    assert group.brewed() == expected, "each order processed once"
    events = one_processed_event_each(bootstrap, topic, list(expected))
    assert events == expected
    print(
        "figures: "
        + json.dumps(
            {
                "orders": len(expected),
                "copies": len(copies),
                "copies_on_another_partition": moved,
                "processed": sum(group.brewed().values()),
                "processed_twice": sum(n - 1 for n in group.brewed().values()),
                "processed_events": sum(events.values()),
            }
        )
    )


def fresh_suffix() -> str:
    return uuid.uuid4().hex[:12]


async def _at_least(count: Awaitable[int], wanted: int) -> bool:
    return await count >= wanted


async def _brewed_all(group: Consumers, expected: Counter[str]) -> bool:
    await asyncio.sleep(0)
    return set(group.brewed()) >= set(expected)
