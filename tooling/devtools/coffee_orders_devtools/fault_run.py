"""A fault run in the style of Jepsen: seeded faults against the real system, then a check.

A 3-broker local Kafka (replication 3, min.insync.replicas 2), one ``coffee-orders producer`` and
two ``coffee-orders consumer`` processes of one group (what they processed: the order-state topic).
Callers place orders continuously, each with a unique request_id, retried with the same
request_id on UNAVAILABLE and DEADLINE_EXCEEDED until confirmed or the load stops. Meanwhile
faults drawn from ``random.Random(seed)`` are applied one after another (broker SIGSTOP longer
than the consumers' session timeout, broker SIGKILL and restart, consumer SIGKILL), a third
consumer joins and later leaves (SIGTERM), and a few records that are not JSON are written
straight to the topic. A supervisor restarts every consumer that exits, as Kubernetes would,
and records each exit. Then the load stops, everything is healed, and the run waits (bounded)
for every confirmed order to be processed; the checker reads every consumer incarnation's log
and the topics and says what was lost, repeated and dead-lettered.

Used by tests/integration/test_fault_run.py (a short schedule) and ``python -m bench.fault_run``
(a long one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import grpc
from coffee.orders.v1 import consumer_status_pb2, orders_pb2, orders_pb2_grpc
from coffee_orders_localkafka import LocalKafka
from coffee_orders_localkafka.cluster import LocalKafkaError, free_ports, on_free_ports
from coffee_orders_localkafka.operations import wait_in_sync
from confluent_kafka import Message

from .consumer_status import status as consumer_status
from .freezing import freeze, thaw
from .kafka_io import consume_all, produce_all, watermarks
from .log_lines import Record as LogRecord
from .log_lines import parse_text_line
from .processes import RunningCommand
from .waiting import async_wait_until, wait_until

SEED_ENV = "COFFEE_FAULT_SEED"
TOPIC = "coffee_orders"
DEAD_LETTER_TOPIC = f"{TOPIC}.dlq"
GROUP = "fault-run"
COORDINATOR = "the group coordinator"  # a pause's target, resolved when it is applied
RETRIED_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
SESSION_TIMEOUT_S = 10.0  # the consumers' session.timeout.ms (coffee_orders_common.kafka_config)

BROKER_PAUSE = "broker SIGSTOP"
BROKER_KILL = "broker SIGKILL"
CONSUMER_KILL = "consumer SIGKILL"
CONSUMER_JOIN = "consumer joins"
CONSUMER_LEAVE = "consumer leaves (SIGTERM)"
BAD_RECORD = "bad record"


def seed_from_env(environ: dict[str, str] | None = None) -> int:
    """``COFFEE_FAULT_SEED`` when set, else a new random seed (printed by the summary)."""
    value = (os.environ if environ is None else environ).get(SEED_ENV, "").strip()
    return int(value) if value else random.SystemRandom().randrange(2**31)


@dataclass(frozen=True)
class FaultRunConfig:
    work_dir: Path
    seed: int
    fault_seconds: float = 150.0  # faults start within this long after the load is going
    sigstop: bool = True  # freeze a broker beyond the session timeout (needs rejoining consumers)
    freeze_s: float = 15.0
    broker_down_s: tuple[float, float] = (2.0, 8.0)
    gap_s: tuple[float, float] = (4.0, 12.0)  # between one fault's heal and the next fault
    callers: int = 4
    rate: float = 30.0  # orders a second, over all callers
    bad_records: int = 4
    drain_timeout_s: float = 240.0  # after healing, for every confirmed order to be processed
    on_log: Callable[[Path], None] = field(default=lambda _: None)  # each new log file


@dataclass
class Fault:
    """One planned fault; ``started``/``healed`` are seconds since the schedule began."""

    kind: str
    at: float
    target: str = ""
    hold_s: float = 0.0
    started: float | None = None
    healed: float | None = None
    detail: str = ""

    def describe(self) -> str:
        when = "not applied" if self.started is None else f"{self.started:6.1f} s"
        healed = "" if self.healed is None else f" -> healed {self.healed:6.1f} s"
        target = f" {self.target}" if self.target else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{when}{healed}  {self.kind}{target}{detail}"


def plan_faults(rng: random.Random, config: FaultRunConfig) -> list[Fault]:
    """The schedule: broker and consumer faults one after another (each kind at least once,
    shuffled, then drawn at random), a third consumer joining and leaving across them, and the
    bad records at random moments. Planned times assume instant heals; the run shifts later
    faults when a heal takes longer (a broker's restart)."""
    pool = [BROKER_KILL, CONSUMER_KILL, *([BROKER_PAUSE] if config.sigstop else [])]
    kinds = list(pool)
    rng.shuffle(kinds)
    join_at = rng.uniform(0.1, 0.3) * config.fault_seconds
    leave_at = join_at + rng.uniform(0.3, 0.5) * config.fault_seconds
    faults = [Fault(CONSUMER_JOIN, join_at, "c"), Fault(CONSUMER_LEAVE, leave_at, "c")]
    at = rng.uniform(*config.gap_s)
    while at < config.fault_seconds:
        kind = kinds.pop(0) if kinds else rng.choice(pool)
        if kind == BROKER_PAUSE:  # the first freezes the group's coordinator, whichever it is
            frozen = any(f.kind == BROKER_PAUSE for f in faults)
            node = f"node {rng.randint(1, 3)}"
            target = node if frozen else f"{COORDINATOR}, else {node}"
            fault = Fault(kind, at, target, config.freeze_s)
        elif kind == BROKER_KILL:
            fault = Fault(kind, at, f"node {rng.randint(1, 3)}", rng.uniform(*config.broker_down_s))
        else:
            slots = ["a", "b", *(["c"] if join_at < at < leave_at else [])]
            fault = Fault(kind, at, rng.choice(slots))
        faults.append(fault)
        at += fault.hold_s + rng.uniform(*config.gap_s)
    faults += [
        Fault(BAD_RECORD, rng.uniform(0, config.fault_seconds), str(number))
        for number in range(config.bad_records)
    ]
    return sorted(faults, key=lambda f: f.at)


# ---- consumers under a supervisor ---------------------------------------------------------------


@dataclass
class Incarnation:
    """One process of a consumer slot: its log, how it ended."""

    slot: str
    number: int
    command: RunningCommand
    address: str
    started_wall: float
    ended_wall: float | None = None
    exit_code: int | None = None
    cause: str = ""  # "SIGKILL by the run", "SIGTERM by the run", "exited by itself"

    @property
    def name(self) -> str:
        return f"consumer-{self.slot}{self.number}"

    @property
    def crashed(self) -> bool:
        """Ended without a clean shutdown: killed, or exited non-zero by itself."""
        return self.exit_code is not None and self.exit_code != 0


class Supervisor:
    """Starts consumer slots and restarts any of them whose process exits, as Kubernetes would."""

    def __init__(self, bootstrap: str, work_dir: Path, on_log: Callable[[Path], None]):
        self.bootstrap = bootstrap
        self.work_dir = work_dir
        self.on_log = on_log
        self.active: set[str] = set()
        self.incarnations: list[Incarnation] = []
        self.restarts = 0

    def current(self, slot: str) -> Incarnation | None:
        found = [i for i in self.incarnations if i.slot == slot]
        return found[-1] if found else None

    def start(self, slot: str) -> Incarnation:
        previous = self.current(slot)
        number = 1 if previous is None else previous.number + 1
        port = free_ports(1)[0]
        log = self.work_dir / "logs" / f"consumer-{slot}{number}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.on_log(log)
        env = {
            "KAFKA_BROKERS": self.bootstrap,
            "KAFKA_TOPIC": TOPIC,
            "KAFKA_GROUP_ID": GROUP,
            "COFFEE_LOG_FORMAT": "text",
        }
        command = RunningCommand(log, "consumer", "--listen", f"127.0.0.1:{port}", env=env)
        incarnation = Incarnation(slot, number, command, f"127.0.0.1:{port}", time.time())
        self.incarnations.append(incarnation)
        self.active.add(slot)
        return incarnation

    def _ended(self, incarnation: Incarnation, cause: str) -> None:
        incarnation.cause = incarnation.cause or cause
        try:
            incarnation.exit_code = incarnation.command.stop(timeout=10)  # reaps, closes the log
        except AssertionError:  # still running 10 s after a second SIGTERM: it was SIGKILLed
            incarnation.exit_code = incarnation.command.process.returncode
            incarnation.cause += ", hung: SIGKILLed"
        incarnation.ended_wall = time.time()

    def kill(self, slot: str) -> Incarnation | None:
        """SIGKILL the slot's process; the watch loop restarts it."""
        incarnation = self.current(slot)
        if slot not in self.active or incarnation is None or incarnation.exit_code is not None:
            return None
        incarnation.cause = "SIGKILL by the run"
        incarnation.command.process.send_signal(signal.SIGKILL)
        return incarnation

    async def leave(self, slot: str, timeout_s: float = 60.0) -> Incarnation | None:
        """SIGTERM the slot's process and do not restart it."""
        self.active.discard(slot)
        incarnation = self.current(slot)
        if incarnation is None or incarnation.exit_code is not None:
            return None
        incarnation.cause = "SIGTERM by the run"
        incarnation.command.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(incarnation.command.process.wait, timeout_s)
        self._ended(incarnation, "SIGTERM by the run")
        return incarnation

    def restart_exited(self) -> None:
        for slot in sorted(self.active):
            incarnation = self.current(slot)
            if incarnation is not None and incarnation.command.process.poll() is not None:
                self._ended(incarnation, "exited by itself")
                self.restarts += 1
                self.start(slot)

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.restart_exited()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.leave(slot) for slot in sorted(self.active)))


# ---- the load ------------------------------------------------------------------------------------


@dataclass
class Load:
    sent: int = 0  # distinct orders (request_ids) placed
    attempts: int = 0
    confirmed: dict[str, tuple[int, int]] = field(default_factory=dict)  # order_id -> (p, offset)
    unconfirmed: int = 0  # still retried when the load stopped
    errors: Counter[str] = field(default_factory=Counter)  # every failed attempt, by code
    failed: Counter[str] = field(default_factory=Counter)  # orders given up on other codes


async def place_orders(
    address: str, config: FaultRunConfig, stop: asyncio.Event, load: Load
) -> None:
    """``config.callers`` callers at ``config.rate`` orders/s in all, each retrying an order with
    its request_id on UNAVAILABLE and DEADLINE_EXCEEDED until confirmed or ``stop`` is set."""
    options = [("grpc.enable_retries", 0)]  # the retries are ours, counted
    interval = config.callers / config.rate

    async def pause(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(seconds, 0))

    async with grpc.aio.insecure_channel(address, options=options) as channel:
        stub = orders_pb2_grpc.OrderServiceStub(channel)

        async def caller(number: int) -> None:
            placed = 0
            while not stop.is_set():
                placed += 1
                load.sent += 1
                next_at = time.monotonic() + interval
                request = orders_pb2.PlaceOrderRequest(
                    customer_name=f"Caller {number}",
                    coffee_type="Latte",
                    request_id=f"fault-{config.seed}-{number}-{placed}",
                )
                while True:
                    load.attempts += 1
                    try:
                        reply = await stub.PlaceOrder(request, timeout=10)
                    except grpc.aio.AioRpcError as error:
                        code = error.code().name
                        load.errors[code] += 1
                        if code not in RETRIED_CODES:
                            load.failed[code] += 1
                            break
                        if stop.is_set():
                            load.unconfirmed += 1
                            break
                        await pause(0.5)
                    else:
                        load.confirmed[reply.order_id] = (reply.partition, reply.offset)
                        break
                await pause(next_at - time.monotonic())

        await asyncio.gather(*(caller(n) for n in range(config.callers)))


# ---- the run -------------------------------------------------------------------------------------


@dataclass
class BadRecord:
    number: int
    value: bytes
    partition: int | None = None  # None: Kafka never acknowledged it
    offset: int | None = None


@dataclass
class Processing:
    order_id: str
    wall: float
    incarnation: Incarnation


@dataclass
class FaultRunResult:
    seed: int
    faults: list[Fault]
    load: Load
    on_topic: int
    processed: int
    lost: list[str]
    duplicates: Counter[str]  # order_ids processed again, by explanation
    bad_written: int
    dead_lettered: int  # bad records with a copy on the dead-letter topic
    dead_letter_copies: int
    bad_missing: list[int]  # bad records written and never dead-lettered
    bad_repeated: Counter[str]  # extra dead-letter copies, by explanation
    unexpected_dead_letters: int  # copies of records that were not our bad records
    exits: list[Incarnation]
    drain_s: float | None  # heal to every confirmed order processed; None: not within the bound
    seconds: float
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """What breaks the rules: every fault applied, nothing confirmed lost, every bad record
        dead-lettered once (again only after a crash), nothing else dead-lettered."""
        found = [
            f"fault not applied: {fault.describe()}"
            for fault in self.faults
            if fault.detail.startswith("could not be applied")
        ]
        if self.lost:
            found.append(f"{len(self.lost)} confirmed orders lost, e.g. {self.lost[:5]}")
        if self.bad_missing:
            found.append(f"bad records never dead-lettered: {self.bad_missing}")
        if self.bad_repeated["unexplained"]:
            found.append(f"{self.bad_repeated['unexplained']} dead-letter copies not after a crash")
        if self.unexpected_dead_letters:
            found.append(f"{self.unexpected_dead_letters} records dead-lettered that were not bad")
        return found

    def summary(self) -> str:
        load = self.load
        exits = Counter(i.exit_code for i in self.exits)
        lines = [
            f"fault run: seed {self.seed} (replay: {SEED_ENV}={self.seed}), {self.seconds:.0f} s",
            "faults (seconds since the schedule began):",
            *(f"  {fault.describe()}" for fault in self.faults),
            f"orders: sent {load.sent}, attempts {load.attempts}, confirmed {len(load.confirmed)}, "
            f"unconfirmed at the end {load.unconfirmed}, failed {dict(load.failed)}",
            f"  failed attempts by code: {dict(sorted(load.errors.items()))}",
            f"  confirmed on the topic {self.on_topic}, processed {self.processed}, "
            f"lost {len(self.lost)}",
            f"  processed more than once: {sum(self.duplicates.values())} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.duplicates.items())) or 'none'})",
            f"  drained: {'not within the bound' if self.drain_s is None else f'{self.drain_s} s'}"
            " after healing",
            f"bad records: written {self.bad_written}, dead-lettered {self.dead_lettered}, "
            f"copies {self.dead_letter_copies}, never dead-lettered {len(self.bad_missing)}, "
            f"extra copies {dict(self.bad_repeated) or 'none'}, "
            f"other dead letters {self.unexpected_dead_letters}",
            f"consumer exits by code: {dict(sorted(exits.items(), key=str))}",
            *(
                f"  {i.name}: {i.exit_code} ({i.cause})"
                for i in self.exits
                if i.cause != "SIGTERM by the run" or i.exit_code != 0
            ),
            *(f"note: {note}" for note in self.notes),
            "verdict: " + ("; ".join(self.problems()) or "OK"),
        ]
        return "\n".join(lines)


class FaultRun:
    def __init__(self, config: FaultRunConfig):
        self.config = config
        self.rng = random.Random(config.seed)
        self.faults = plan_faults(self.rng, config)
        self.cluster: LocalKafka = on_free_ports(config.work_dir / "kafka", nodes=3, topic=TOPIC)
        self.supervisor = Supervisor(self.cluster.bootstrap_servers, config.work_dir, config.on_log)
        self.load = Load()
        self.bad: list[BadRecord] = []
        self.paused: set[int] = set()
        self.began = 0.0

    def _now(self) -> float:
        return round(time.monotonic() - self.began, 1)

    # ---- faults ----

    def _node_pid(self, node_id: int) -> int | None:
        return next((s.pid for s in self.cluster.status() if s.node_id == node_id), None)

    async def _apply(self, fault: Fault, brokers: asyncio.Lock) -> None:
        await asyncio.sleep(max(0.0, self.began + fault.at - time.monotonic()))
        try:
            await self._inject(fault, brokers)
        except Exception as error:  # the run goes on; the summary says what could not be done
            fault.detail = f"could not be applied: {error!r}"

    async def _inject(self, fault: Fault, brokers: asyncio.Lock) -> None:
        if fault.kind in (BROKER_PAUSE, BROKER_KILL):
            # One broker impaired at a time, until it is back in sync: min.insync.replicas is 2.
            async with brokers:
                await self._broker_fault(fault)
            return
        fault.started = self._now()
        if fault.kind == CONSUMER_KILL:
            killed = self.supervisor.kill(fault.target)
            fault.detail = f"pid {killed.command.pid}" if killed else "was not running"
        elif fault.kind == CONSUMER_JOIN:
            fault.detail = self.supervisor.start(fault.target).name
        elif fault.kind == CONSUMER_LEAVE:
            left = await self.supervisor.leave(fault.target)
            fault.detail = "was not running" if left is None else f"exit {left.exit_code}"
        elif fault.kind == BAD_RECORD:
            bad = await asyncio.to_thread(self._write_bad_record, int(fault.target))
            written = bad.partition is not None
            fault.detail = f"partition {bad.partition} offset {bad.offset}" if written else ""
        fault.healed = self._now()

    async def _broker_fault(self, fault: Fault) -> None:
        node_id = int(fault.target.split()[-1])
        if fault.target.startswith(COORDINATOR):
            try:
                node_id = await asyncio.to_thread(self._coordinator)
            except AssertionError as unknown:  # the planned node instead
                fault.target = f"node {node_id} (the group coordinator unknown: {unknown})"
            else:
                fault.target = f"node {node_id} (the group coordinator)"
        pid = self._node_pid(node_id)
        fault.started = self._now()
        if pid is None:
            fault.detail = "the broker was not running"
            return
        if fault.kind == BROKER_PAUSE:
            self.paused.add(pid)
            await asyncio.to_thread(freeze, pid)
            await asyncio.sleep(fault.hold_s)
            await asyncio.to_thread(thaw, pid)
            self.paused.discard(pid)
        else:
            await asyncio.to_thread(self.cluster.kill_node, node_id)
            await asyncio.sleep(fault.hold_s)
            try:
                await asyncio.to_thread(self.cluster.start_node, node_id)
            except LocalKafkaError as error:  # healing starts it again
                fault.detail = f"restart failed: {error}"
                return
        fault.detail = f"held {fault.hold_s:.1f} s"
        # Healed once back in every in-sync replica set: a restarted node still catching up
        # while the next broker fault begins would leave partitions below min.insync.replicas,
        # two brokers impaired at once, which the schedule does not mean to test.
        try:
            await asyncio.to_thread(wait_in_sync, self.cluster)
        except LocalKafkaError as error:
            fault.detail += f"; not back in sync: {error}"
            return
        fault.healed = self._now()

    def _coordinator(self) -> int:
        """The node coordinating the consumers' group now: the leader of the group's partition
        of ``__consumer_offsets`` (asked for 20 s at most: right after a broker's restart the
        leadership may be moving). From metadata, not DescribeConsumerGroups, whose failures
        can abort the asking process (confluentinc/librdkafka#4605)."""
        failures: list[str] = []

        def ask() -> int | None:
            try:
                topics = self.cluster.admin().list_topics("__consumer_offsets", timeout=5).topics
                partitions = topics["__consumer_offsets"].partitions
                leader = int(partitions[group_offsets_partition(GROUP, len(partitions))].leader)
            except Exception as error:  # KafkaException, no such partition yet, ...
                failures.append(f"{type(error).__name__}: {error}")
                return None
            return leader if leader >= 0 else None

        try:
            return wait_until(ask, 20, "the group coordinator", interval=1.0)
        except AssertionError as unknown:
            raise AssertionError(f"{unknown} (last: {failures[-1:]})") from None

    def _write_bad_record(self, number: int) -> BadRecord:
        value = f"not an order: fault run {self.config.seed} bad record {number}".encode()
        record = BadRecord(number, value)
        self.bad.append(record)
        # acks=all waits for a frozen broker still in the ISR (up to the 15 s freeze and its
        # catch-up after): librdkafka may keep trying for nearly the 60 s produce_all waits.
        patience = {"message.timeout.ms": "55000"}
        try:
            acknowledged = produce_all(self.cluster.bootstrap_servers, TOPIC, [value], **patience)
        except AssertionError:  # not settled in 60 s
            acknowledged = []
        for message in acknowledged:  # none when Kafka refused it: never written
            record.partition, record.offset = message.partition(), message.offset()
        return record

    # ---- healing and waiting ----

    def _heal(self) -> None:
        for pid in list(self.paused):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.paused.clear()
        for status in self.cluster.status():
            if status.pid is None:
                self.cluster.start_node(status.node_id)
        self.cluster.wait_ready()

    def processings(self) -> list[Processing]:
        """Every "brewing" line of every consumer incarnation's log."""
        found = []
        for incarnation in self.supervisor.incarnations:
            for record in _records(incarnation.command.log_path):
                if record.message.startswith("brewing "):
                    order_id = str(record.fields["order_id"])
                    found.append(Processing(order_id, _wall(record.time), incarnation))
        return found

    async def _drain(self, healed_at: float) -> float | None:
        deadline = healed_at + self.config.drain_timeout_s
        while time.monotonic() < deadline:
            processed = {p.order_id for p in await asyncio.to_thread(self.processings)}
            if set(self.load.confirmed) <= processed:
                return round(time.monotonic() - healed_at, 1)
            await asyncio.sleep(1.0)
        return None

    # ---- the whole run ----

    async def run(self) -> FaultRunResult:
        started = time.monotonic()
        for path in self.cluster.log_paths():
            self.config.on_log(path)
        try:
            await asyncio.to_thread(self.cluster.up)
            drain_s, notes = await self._schedule()
            return await asyncio.to_thread(self.check, drain_s, notes, time.monotonic() - started)
        finally:
            await asyncio.to_thread(self.cluster.down)

    async def _schedule(self) -> tuple[float | None, list[str]]:
        """Services, load and faults; heal; wait for the confirmed orders; stop the services."""
        producer, address = self._start_producer()
        stop_watch, stop_load = asyncio.Event(), asyncio.Event()
        try:
            await asyncio.to_thread(producer.wait_for_output, "producer listening", 120)
            first = [self.supervisor.start(slot) for slot in ("a", "b")]
            for incarnation in first:
                await asyncio.to_thread(
                    incarnation.command.wait_for_output, "partitions assigned", 120
                )
            watch = asyncio.create_task(self.supervisor.watch(stop_watch))
            load = asyncio.create_task(place_orders(address, self.config, stop_load, self.load))

            async def warm() -> bool:
                return len(self.load.confirmed) >= 20

            await async_wait_until(warm, 120, "20 orders confirmed before the faults")
            self.began = time.monotonic()
            brokers = asyncio.Lock()
            await asyncio.gather(*(self._apply(fault, brokers) for fault in self.faults))
            stop_load.set()
            await load
            await asyncio.to_thread(self._heal)
            drain_s = await self._drain(time.monotonic())
            notes = [] if drain_s is not None else await self._diagnose()
            stop_watch.set()
            await watch
            return drain_s, notes
        finally:
            stop_load.set()
            stop_watch.set()
            await asyncio.to_thread(self._heal_quietly)
            await self.supervisor.stop_all()
            with contextlib.suppress(AssertionError):
                producer.stop(signal.SIGTERM)

    def _heal_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self._heal()

    def _start_producer(self) -> tuple[RunningCommand, str]:
        address = f"127.0.0.1:{free_ports(1)[0]}"
        log = self.config.work_dir / "logs" / "producer.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.config.on_log(log)
        env = {"KAFKA_BROKERS": self.cluster.bootstrap_servers, "KAFKA_TOPIC": TOPIC}
        return RunningCommand(log, "producer", "--listen", address, env=env), address

    async def _diagnose(self) -> list[str]:
        """Why the drain did not finish: what each running consumer says about itself."""
        notes = []
        for slot in sorted(self.supervisor.active):
            incarnation = self.supervisor.current(slot)
            if incarnation is None:
                continue
            try:
                status = await asyncio.to_thread(consumer_status, incarnation.address)
            except grpc.RpcError as error:
                notes.append(f"{incarnation.name}: GetStatus failed: {error.code().name}")
                continue
            state = consumer_status_pb2.ConsumerState.Name(status.state)
            owned = sorted(p.partition for p in status.partitions)
            notes.append(f"{incarnation.name}: {state}, partitions {owned or 'none'}")
        return notes

    # ---- the checker ----

    def check(self, drain_s: float | None, notes: list[str], seconds: float) -> FaultRunResult:
        bootstrap = self.cluster.bootstrap_servers
        confirmed = set(self.load.confirmed)
        keys = {(m.key() or b"").decode() for m in _read_topic(bootstrap, TOPIC)}
        processings = sorted(self.processings(), key=lambda p: p.wall)
        processed = {p.order_id for p in processings}
        lost = sorted(confirmed - keys) + sorted((confirmed & keys) - processed)
        duplicates: Counter[str] = Counter()
        by_order: dict[str, list[Processing]] = defaultdict(list)
        for processing in processings:
            by_order[processing.order_id].append(processing)
        for runs in by_order.values():
            for index in range(1, len(runs)):
                duplicates[self._explain(runs[:index], runs[index].wall)] += 1
        copies = Counter[tuple[int, int]]()
        unexpected = 0
        for message in _read_topic(bootstrap, DEAD_LETTER_TOPIC):
            headers = {k: _text(v) for k, v in dict(message.headers() or []).items()}
            origin = (headers.get("x-original-partition"), headers.get("x-original-offset"))
            if headers.get("x-original-topic") == TOPIC and all(origin):
                place = (int(origin[0] or 0), int(origin[1] or 0))
                if any((b.partition, b.offset) == place for b in self.bad):
                    copies[place] += 1
                    continue
            unexpected += 1
        written = [b for b in self.bad if b.partition is not None]
        reports = self._bad_reports()
        repeated: Counter[str] = Counter()
        for bad in written:
            place = (bad.partition or 0, bad.offset or 0)
            runs = reports.get(place, [])
            for index in range(1, copies[place]):
                explained = index < len(runs) and self._explain(runs[:index], runs[index].wall)
                repeated[explained or "unexplained"] += 1
        return FaultRunResult(
            seed=self.config.seed,
            faults=self.faults,
            load=self.load,
            on_topic=len(confirmed & keys),
            processed=len(confirmed & processed),
            lost=lost,
            duplicates=duplicates,
            bad_written=len(written),
            dead_lettered=sum(1 for b in written if copies[(b.partition or 0, b.offset or 0)]),
            dead_letter_copies=sum(copies.values()),
            bad_missing=[
                b.number for b in written if not copies[(b.partition or 0, b.offset or 0)]
            ],
            bad_repeated=repeated,
            unexpected_dead_letters=unexpected,
            exits=[i for i in self.supervisor.incarnations if i.exit_code is not None],
            drain_s=drain_s,
            seconds=round(seconds, 1),
            notes=notes
            + [
                f"bad record {b.number} was never acknowledged by Kafka"
                for b in self.bad
                if b.partition is None
            ],
        )

    def _bad_reports(self) -> dict[tuple[int, int], list[Processing]]:
        """Per (partition, offset) on the topic, the consumers that reported it as bad."""
        found: dict[tuple[int, int], list[Processing]] = defaultdict(list)
        for incarnation in self.supervisor.incarnations:
            for record in _records(incarnation.command.log_path):
                if (
                    record.message.startswith("bad message ")
                    and record.fields.get("topic") == TOPIC
                ):
                    place = (int(record.fields["partition"]), int(record.fields["offset"]))
                    found[place].append(Processing("", _wall(record.time), incarnation))
        for runs in found.values():
            runs.sort(key=lambda p: p.wall)
        return found

    @staticmethod
    def _explain(earlier: Iterable[Processing], wall: float) -> str:
        """Why a record was handled again at ``wall``: the instance that handled it before had
        crashed by then, or had lost its partitions (a session expired), or its order-state
        transaction was aborted (a rebalance fenced it, Kafka failed it), or none of these."""
        earlier = list(earlier)
        if any(
            p.incarnation.crashed and (p.incarnation.ended_wall or wall) <= wall + 1
            for p in earlier
        ):
            return "repeated after a crash"
        if any(_logged_between(p.incarnation, p.wall, wall, _LOST) for p in earlier):
            return "repeated after lost partitions"
        if any(_logged_between(p.incarnation, p.wall, wall, _ABORTED) for p in earlier):
            return "repeated after an aborted transaction"
        return "unexplained"


_LOST = "partitions lost"
_ABORTED = "the order-state transaction was aborted"


def _logged_between(incarnation: Incarnation, start: float, end: float, line: str) -> bool:
    """Whether the incarnation logged a line starting with ``line`` between the two times."""
    return any(
        record.message.startswith(line) and start <= _wall(record.time) <= end
        for record in _records(incarnation.command.log_path)
    )


def _records(path: Path) -> Iterator[LogRecord]:
    """The log's records; a line torn by a SIGKILL, or one that is not ours, is passed over."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("    "):
            continue
        with contextlib.suppress(AssertionError):
            yield parse_text_line(line)


def _text(value: str | bytes | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value or ""


def _wall(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _read_topic(bootstrap: str, topic: str) -> list[Message]:
    total = sum(high - low for low, high in watermarks(bootstrap, topic))
    messages = consume_all(bootstrap, topic, total, timeout=120)
    if len(messages) != total:
        raise AssertionError(f"read {len(messages)} of {total} messages from {topic}")
    return messages


async def fault_run(config: FaultRunConfig) -> FaultRunResult:
    """Run the whole schedule and the check; print the summary; return the result."""
    result = await FaultRun(config).run()
    print(result.summary(), flush=True)
    return result


def group_offsets_partition(group: str, partitions: int) -> int:
    """The partition of ``__consumer_offsets`` (of ``partitions``) that holds ``group``: Kafka's
    ``abs(group.hashCode()) % partitions``, with Java's String.hashCode."""
    code = 0
    for unit in group.encode("utf-16-be").hex(" ", 2).split():
        code = (31 * code + int(unit, 16)) & 0xFFFFFFFF
    signed = code - (1 << 32) if code >= 1 << 31 else code
    return abs(signed) % partitions
