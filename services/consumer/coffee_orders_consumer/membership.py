"""Judge this instance's standing in its consumer group against the group, not the thread.

A consume thread that polls happily while the coordinator has forgotten it (its session timed
out during a broker freeze and the rejoin never happened), or whose partition is stuck at one
offset, is alive and useless. So the consumer asks the cluster, from a child process
(``GroupProbe``: see there why a process), every ``PROBE_INTERVAL_S``: who the group's members
are and what each holds (the coordinator's DescribeGroups), how many partitions the topic has,
whether each has a leader and the topic's id (metadata), and each partition's high watermark
(ListOffsets). ``MembershipJudge`` puts
that beside what the instance itself holds and how far it has read, and says where it stands
(``MembershipState``):

- ASSIGNED: it holds partitions and every one with lag advances;
- IDLE: it is a member of a stable group that has more members than partitions, and every
  partition is held by someone else: legitimate, it stays live;
- JOINING: no partitions yet, for less than ``timeout_s``;
- OUT_OF_GROUP: it should hold partitions and does not (not a member by the coordinator's
  account, the group rebalancing, partitions unassigned, the coordinator not answering while
  the brokers do), or it holds partitions the coordinator says it is not a member for;
- STALLED: a partition with a leader has lag and its position has not advanced.

Trouble that lasts ``timeout_s`` asks for a rejoin (the consume loop closes and recreates its
Kafka consumer; committed offsets make that lossless); trouble that lasts another ``timeout_s``
after a rejoin, with no progress between, asks to fail (liveness NOT_SERVING, exit non-zero, so
that a supervisor restarts the process). While the cluster does not answer at all nothing is
judged: that is a Kafka outage, which readiness reports, not a reason to restart.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_common.liveness import Heartbeat
from confluent_kafka import ConsumerGroupState, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

log = logging.getLogger("coffee_orders.consumer")
PROBE_INTERVAL_S = 3.0
_PROBE_TIMEOUT_S = 5.0
# A view older than this is not trusted (the probe is late: the cluster is slow to answer).
_FRESH_FOR_S = 3 * PROBE_INTERVAL_S + 2 * _PROBE_TIMEOUT_S
_RESTART_AFTER_S = 1.0  # a probe process that ended is replaced after this pause,
_MAX_RESTART_AFTER_S = 30.0  # doubled up to this while none gets as far as a description


@dataclass(frozen=True)
class GroupView:
    """The group and its topic as the cluster last described them."""

    taken_at: float  # time.monotonic() when the description was complete
    group_state: str = ""  # ConsumerGroupState's name ("STABLE", ...); "" when not described
    members: dict[str, frozenset[int]] = field(default_factory=dict)  # id -> partitions held
    led: dict[int, bool] = field(default_factory=dict)  # partition -> has a leader
    high_watermarks: dict[int, int] = field(default_factory=dict)
    cluster_error: str = ""  # the metadata could not be read: the cluster does not answer
    group_error: str = ""  # the metadata was read but the coordinator did not describe the group
    topic_id: str = ""  # the topic's id (a deleted and recreated topic has a new one); "" unknown

    @property
    def partitions(self) -> int:
        return len(self.led)


class GroupProbe:
    """Keeps ``view`` fresh: a child process describes the group and the topic every
    ``PROBE_INTERVAL_S``; a thread of the service reads what it sends.

    A child process, because librdkafka can abort the process that asks a coordinator-bound
    admin question (DescribeConsumerGroups) while a connection drops (``rd_kafka_enq_once_del_
    source_return: Assertion eonce->refcnt > 0``, confluentinc/librdkafka#4605, seen here when a
    broker was frozen): the child dies instead of the consumer, and a new one is started. The
    thread beats its heartbeat every second; the watchdog watches it.
    """

    def __init__(self, admin_config: dict[str, Any], group_id: str, topic: str):
        self._arguments = (admin_config, group_id, topic)
        self._stop = threading.Event()
        self.view: GroupView | None = None
        self.heartbeat = Heartbeat()
        self.thread = threading.Thread(target=self._run, name="group-probe", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        pause = _RESTART_AFTER_S
        try:
            while not self._stop.is_set():
                described = self._serve_one_child()
                pause = _RESTART_AFTER_S if described else min(pause * 2, _MAX_RESTART_AFTER_S)
                self._stop.wait(pause)
        except Exception as exc:  # the watchdog logs it and fails the service
            self.heartbeat.ended(exc)

    def _serve_one_child(self) -> bool:
        """Run one child until it ends (or the probe stops); True if it sent a description."""
        context = multiprocessing.get_context("spawn")  # never fork a process with threads
        receiving, sending = context.Pipe(duplex=False)
        child = context.Process(
            target=_describe_forever,
            args=(sending, *self._arguments),
            name="coffee-orders-group-probe",
            daemon=True,
        )
        child.start()
        sending.close()
        described = False
        try:
            while not self._stop.is_set():
                self.heartbeat.beat()
                if receiving.poll(1.0):
                    view: GroupView = receiving.recv()
                    self.view = dataclasses.replace(view, taken_at=time.monotonic())
                    described = True
                elif not child.is_alive():
                    break
        except (EOFError, OSError):
            pass  # the child is gone
        finally:
            receiving.close()
            if child.is_alive():
                child.terminate()
            child.join(5)
        if not self._stop.is_set():
            log.warning(
                "the group probe process ended; starting a new one",
                extra={"fields": {"exit_code": child.exitcode}},
            )
        return described


def _describe_forever(
    sending: multiprocessing.connection.Connection,
    admin_config: dict[str, Any],
    group_id: str,
    topic: str,
) -> None:
    """The child process: describe, send, wait; until the service closes its end."""
    # librdkafka would print its lines (CONFWARN, connection failures) to stderr in a format
    # of its own, into the service's log: the child has no log of its own, they are dropped.
    quiet = logging.getLogger("coffee_orders.group_probe.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    describer = GroupDescriber(admin_config, group_id, topic, quiet)
    try:
        while True:
            sending.send(describer.describe())
            time.sleep(PROBE_INTERVAL_S)
    except (BrokenPipeError, EOFError, OSError, KeyboardInterrupt):
        return


class GroupDescriber:
    """One description of the group and its topic; each call bounded by ``_PROBE_TIMEOUT_S``."""

    def __init__(
        self,
        admin_config: dict[str, Any],
        group_id: str,
        topic: str,
        librdkafka_log: logging.Logger | None = None,
    ):
        """``librdkafka_log``: where the client's own lines go (the service's log by default)."""
        logger = librdkafka_log or logging.getLogger("librdkafka")
        config: dict[str, Any] = {**admin_config, "logger": logger}
        self._admin = AdminClient(config)
        self._group_id = group_id
        self._topic = topic

    def describe(self) -> GroupView:
        try:
            metadata = self._admin.list_topics(self._topic, timeout=_PROBE_TIMEOUT_S)
        except KafkaException as exc:
            return GroupView(time.monotonic(), cluster_error=str(exc.args[0]))
        topic = metadata.topics.get(self._topic)
        led = {}
        if topic is not None and topic.error is None:
            led = {number: part.leader >= 0 for number, part in topic.partitions.items()}
        high = self._high_watermarks(sorted(led))
        topic_id = self.topic_id() if led else ""
        try:
            future = self._admin.describe_consumer_groups(
                [self._group_id], request_timeout=_PROBE_TIMEOUT_S
            )[self._group_id]
            group = future.result(timeout=_PROBE_TIMEOUT_S + 1)
        except Exception as exc:  # KafkaException, or the future's own timeout
            return GroupView(
                time.monotonic(),
                led=led,
                high_watermarks=high,
                group_error=str(exc),
                topic_id=topic_id,
            )
        members = {
            member.member_id: frozenset(
                tp.partition
                for tp in (member.assignment.topic_partitions if member.assignment else [])
                if tp.topic == self._topic
            )
            for member in group.members
        }
        state = group.state.name if isinstance(group.state, ConsumerGroupState) else ""
        return GroupView(time.monotonic(), state, members, led, high, topic_id=topic_id)

    def topic_id(self) -> str:
        """The topic's id; "" when it cannot be read now."""
        try:
            futures = self._admin.describe_topics(
                TopicCollection([self._topic]), request_timeout=_PROBE_TIMEOUT_S
            )
            return str(futures[self._topic].result(timeout=_PROBE_TIMEOUT_S + 1).topic_id)
        except Exception:  # not known this time: the last one stands
            return ""

    def _high_watermarks(self, partitions: list[int]) -> dict[int, int]:
        if not partitions:
            return {}
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        request = {TopicPartition(self._topic, p): latest for p in partitions}
        high: dict[int, int] = {}
        try:
            futures = self._admin.list_offsets(request, request_timeout=_PROBE_TIMEOUT_S)
        except Exception:  # an older broker or a refusal: lag stays the client's own figure
            return high
        for tp, future in futures.items():
            try:
                high[tp.partition] = future.result(timeout=_PROBE_TIMEOUT_S + 1).offset
            except Exception:
                continue
        return high


@dataclass(frozen=True)
class Verdict:
    state: pb.MembershipState
    reason: str

    @property
    def trouble(self) -> bool:
        return self.state in (
            pb.MEMBERSHIP_STATE_OUT_OF_GROUP,
            pb.MEMBERSHIP_STATE_STALLED,
        )


class Action(Enum):
    NONE = "none"
    REJOIN = "rejoin"  # close and recreate the Kafka consumer
    FAIL = "fail"  # a rejoin did not help: liveness NOT_SERVING, exit non-zero


@dataclass
class _Progress:
    position: int
    since: float


class MembershipJudge:
    """Where the instance stands (``verdict``) and what to do about it (``check``'s Action).

    Called on the consume thread about once a second; pure bookkeeping, no Kafka calls.
    """

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic):
        self.timeout_s = timeout_s
        self._clock = clock
        self._started = clock()
        self._progress: dict[int, _Progress] = {}
        self._trouble_since: float | None = None
        self._rejoined = False  # rejoined, and no progress since
        self.verdict = Verdict(pb.MEMBERSHIP_STATE_JOINING, "joining the consumer group")
        self.since = clock()

    def rejoined(self) -> None:
        """The consume loop recreated its consumer: a new bound starts."""
        self._started = self._clock()
        self._progress.clear()
        self._trouble_since = None
        self._rejoined = True

    def check(
        self,
        view: GroupView | None,
        member_id: str,
        held: set[int],
        next_offsets: dict[int, int],
    ) -> Action:
        """``held``: partitions the consumer holds; ``next_offsets``: the next offset it will
        read from each (-1 when unknown)."""
        now = self._clock()
        fresh = view if view is not None and now - view.taken_at <= _FRESH_FOR_S else None
        verdict = self._judge(fresh, now, member_id, held, next_offsets)
        if verdict is None:  # the cluster does not answer: an outage, not ours to judge
            self._trouble_since = None
            return Action.NONE
        if verdict.state != self.verdict.state:
            self.since = now
        self.verdict = verdict
        if not verdict.trouble:
            self._trouble_since = None
            if verdict.state != pb.MEMBERSHIP_STATE_JOINING:
                self._rejoined = False
            return Action.NONE
        if self._trouble_since is None:
            # A stalled partition has been stuck for timeout_s already when it is called so.
            stalled = verdict.state == pb.MEMBERSHIP_STATE_STALLED
            self._trouble_since = now - self.timeout_s if stalled else now
        if now - self._trouble_since < self.timeout_s:
            return Action.NONE
        return Action.FAIL if self._rejoined else Action.REJOIN

    def _judge(
        self,
        view: GroupView | None,
        now: float,
        member_id: str,
        held: set[int],
        next_offsets: dict[int, int],
    ) -> Verdict | None:
        if held:
            stalled = self._stalled(view, now, held, next_offsets)
            if stalled is not None:
                return stalled
        if view is None or view.cluster_error:
            return None if not held else Verdict(pb.MEMBERSHIP_STATE_ASSIGNED, _held(held))
        if not view.led and not held:  # readiness says so; a restart would not help
            reason = "the topic does not exist (or has no partitions): nothing to hold"
            return Verdict(pb.MEMBERSHIP_STATE_JOINING, reason)
        if view.group_error:
            if held:
                return Verdict(pb.MEMBERSHIP_STATE_ASSIGNED, _held(held))
            reason = (
                f"the group coordinator does not answer while the brokers do: {view.group_error}"
            )
            return Verdict(pb.MEMBERSHIP_STATE_OUT_OF_GROUP, reason)
        stable = view.group_state == "STABLE"
        known = bool(member_id) and member_id in view.members
        if held:
            if stable and not known:
                reason = (
                    f"holds partitions {sorted(held)} but the coordinator does not list this "
                    f"instance (member id {member_id or 'none'}) among the group's "
                    f"{len(view.members)} members"
                )
                return Verdict(pb.MEMBERSHIP_STATE_OUT_OF_GROUP, reason)
            return Verdict(pb.MEMBERSHIP_STATE_ASSIGNED, _held(held))
        if stable and known:
            given = view.members[member_id]
            taken = frozenset().union(*view.members.values())
            if not given and set(view.led) <= taken:
                reason = (
                    f"idle: the group has {len(view.members)} members for "
                    f"{view.partitions} partitions, each held by another member"
                )
                return Verdict(pb.MEMBERSHIP_STATE_IDLE, reason)
            if given:
                reason = f"the coordinator gave partitions {sorted(given)} this instance lacks"
            else:
                reason = f"partitions {sorted(set(view.led) - taken)} are held by no member"
        elif not known:
            reason = (
                f"not a member of the group by the coordinator's account (member id "
                f"{member_id or 'none'}; group {view.group_state or 'unknown'} with "
                f"{len(view.members)} members)"
            )
        else:
            reason = f"the group is {view.group_state or 'in an unknown state'}, no partitions yet"
        if now - self._started < self.timeout_s and self._trouble_since is None:
            return Verdict(pb.MEMBERSHIP_STATE_JOINING, f"joining: {reason}")
        return Verdict(pb.MEMBERSHIP_STATE_OUT_OF_GROUP, reason)

    def _stalled(
        self, view: GroupView | None, now: float, held: set[int], next_offsets: dict[int, int]
    ) -> Verdict | None:
        for number in list(self._progress):
            if number not in held:
                del self._progress[number]
        worst: tuple[float, int, int] | None = None
        for number in sorted(held):
            position = next_offsets.get(number, -1)
            progress = self._progress.get(number)
            if progress is None or progress.position != position:
                self._progress[number] = progress = _Progress(position, now)
            high = view.high_watermarks.get(number, -1) if view is not None else -1
            led = view is not None and view.led.get(number, False) and not view.cluster_error
            if not led or position < 0 or high <= position:
                progress.since = now  # nothing to read, or nobody to read it from: not stalled
                continue
            stuck_for = now - progress.since
            if stuck_for >= self.timeout_s and (worst is None or stuck_for > worst[0]):
                worst = (stuck_for, number, high - position)
        if worst is None:
            return None
        stuck_for, number, lag = worst
        reason = (
            f"partition {number} has {lag} records to read and its position "
            f"({self._progress[number].position}) has not advanced for {stuck_for:.0f} s"
        )
        return Verdict(pb.MEMBERSHIP_STATE_STALLED, reason)


def _held(held: set[int]) -> str:
    return f"holds partitions {sorted(held)}"
