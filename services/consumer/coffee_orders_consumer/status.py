"""What the daemon knows about itself, written by the consume thread, read by the gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from coffee.orders.v1 import consumer_status_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from .error_watch import ErrorWatch
from .lag_age import LagAge, Records
from .membership import GroupView, Verdict
from .metrics import ConsumerMetrics

PAYLOAD_EXCERPT_BYTES = 256
_FINAL_STATES = (pb.CONSUMER_STATE_STOPPING, pb.CONSUMER_STATE_FAILED)
# DEGRADED becomes RUNNING again once the member is in its group and no error came this long.
_QUIET_FOR_RUNNING_S = 30.0


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


@dataclass
class _Partition:
    committed: int = -1
    low_watermark: int = -1
    high_watermark: int = -1
    position: int = -1  # the next offset the consumer will read
    age: LagAge = field(default_factory=LagAge)  # lag in seconds

    @property
    def next_to_process(self) -> int:
        """The next offset to process: the furthest of what the loop, the client's position and
        the commits say; the low watermark before any of them is known (-1 unknown)."""
        known = max(self.age.next_offset, self.position, self.committed)
        return known if known >= 0 else self.low_watermark

    def lag_seconds(self, now: float) -> float:
        return self.age.seconds(self.next_to_process, self.high_watermark, now)

    @property
    def lag(self) -> int:
        """Messages not yet committed; with no commit yet, everything from the low watermark."""
        if self.high_watermark < 0:
            return -1
        start = self.committed if self.committed >= 0 else self.low_watermark
        return max(self.high_watermark - start, 0) if start >= 0 else -1


class ConsumerStatus:
    def __init__(
        self,
        group_id: str,
        topic: str,
        dead_letter_topic: str,
        recent_errors: int,
        metrics: ConsumerMetrics,
    ):
        self._lock = threading.Lock()
        self.metrics = metrics
        self.group_id = group_id
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic
        self.state: pb.ConsumerState = pb.CONSUMER_STATE_STARTING
        self.failure_reason = ""
        self.processed = 0
        self.duplicates_skipped = 0
        self.dead_lettered = 0
        self.errors_by_kind: Counter[pb.ErrorKind] = Counter()
        self._recent: deque[pb.ConsumerError] = deque(maxlen=recent_errors)
        self._partitions: dict[int, _Partition] = {}
        self._subscribers: list[ErrorWatch] = []
        self.start_time = time.time()
        self.last_order_time: float | None = None
        self._membership = pb.Membership(
            state=pb.MEMBERSHIP_STATE_JOINING,
            reason="joining the consumer group",
            since=_timestamp(time.time()),
            group_members=-1,
            topic_partitions=-1,
        )
        self._existing: set[int] | None = None  # the topic's partitions, as last described
        self._last_error_time = 0.0
        metrics.membership.labels(pb.MembershipState.Name(self._membership.state)).set(1)
        metrics.read_lag_seconds_from(topic, self.lag_seconds)

    # ---- written by the consume thread -------------------------------------------------------

    def set_state(self, state: pb.ConsumerState) -> None:
        with self._lock:
            if self.state not in _FINAL_STATES:
                self.state = state

    def kafka_back(self) -> None:
        """Kafka answers again: DEGRADED becomes RUNNING (STARTING and STOPPING stay)."""
        with self._lock:
            if self.state == pb.CONSUMER_STATE_DEGRADED:
                self.state = pb.CONSUMER_STATE_RUNNING

    def orders_processed(self, count: int) -> None:
        """``count`` more orders were processed (once per batch, not per order)."""
        self.metrics.processed.inc(count)
        with self._lock:
            self.processed += count
            self.last_order_time = time.time()

    def duplicate_skipped(self) -> None:
        self.metrics.duplicates.inc()
        with self._lock:
            self.duplicates_skipped += 1

    def dead_letter_sent(self, excerpt: bool = False) -> None:
        """One more bad message copied to the DLQ (``excerpt``: as an excerpt, not whole)."""
        if excerpt:
            self.metrics.dead_letter_excerpts.inc()
        self.metrics.dead_lettered.inc()
        with self._lock:
            self.dead_lettered += 1

    def error(
        self,
        kind: pb.ErrorKind,
        message: str,
        topic: str = "",
        partition: int = -1,
        offset: int = -1,
        payload: bytes | None = None,
    ) -> None:
        entry = pb.ConsumerError(
            time=_timestamp(time.time()),
            kind=kind,
            topic=topic,
            partition=partition,
            offset=offset,
            message=message,
            payload_excerpt=(payload or b"")[:PAYLOAD_EXCERPT_BYTES],
        )
        self.metrics.errors.labels(pb.ErrorKind.Name(kind).removeprefix("ERROR_KIND_")).inc()
        with self._lock:
            self._last_error_time = time.time()
            self.errors_by_kind[kind] += 1
            self._recent.append(entry)
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.offer(entry)

    def assigned(self, partitions: dict[int, int]) -> None:
        """Partitions gained, with their committed offsets (-1 when none)."""
        self.metrics.rebalances.labels("assigned").inc()
        with self._lock:
            for partition, committed in partitions.items():
                self._partitions[partition] = _Partition(committed=committed)

    def revoked(self, partitions: list[int]) -> None:
        self.metrics.rebalances.labels("revoked").inc()
        with self._lock:
            for partition in partitions:
                self._partitions.pop(partition, None)
                with contextlib.suppress(KeyError):  # never exported
                    self.metrics.lag.remove(self.topic, str(partition))

    def committed(self, partition: int, offset: int) -> None:
        with self._lock:
            if partition in self._partitions and offset >= 0:
                self._partitions[partition].committed = offset
                self._export_lag(partition)

    def watermarks(self, partition: int, low: int, high: int) -> None:
        with self._lock:
            if partition in self._partitions and high >= 0:
                part = self._partitions[partition]
                part.low_watermark = low
                part.high_watermark = high
                self._export_lag(partition)
                now, next_offset = time.time(), part.next_to_process
                if next_offset > part.age.next_offset:  # skipped past (a control record)
                    part.age.processed(next_offset, None, now)
                part.age.watermark(next_offset, high, now)

    def records_read(self, first: Records) -> None:
        """Per partition, the offset and timestamp of the first record of a batch about to be
        handled: the oldest not processed (lag in seconds, ``lag_age``)."""
        now = time.time()
        with self._lock:
            for partition, (offset, written) in first.items():
                part = self._partitions.get(partition)
                if part is not None:
                    part.age.reading(offset, written, now)
                    part.high_watermark = max(part.high_watermark, offset + 1)  # it is there

    def records_processed(self, last: Records) -> None:
        """Per partition, the offset after the last record processed, and its timestamp."""
        now = time.time()
        with self._lock:
            for partition, (next_offset, written) in last.items():
                if partition in self._partitions:
                    self._partitions[partition].age.processed(next_offset, written, now)

    def lag_seconds(self) -> dict[int, float]:
        """Per assigned partition that exists, the age of its oldest unprocessed record now
        (partitions whose offsets are not known yet are left out)."""
        now = time.time()
        with self._lock:
            ages = {
                number: part.lag_seconds(now)
                for number, part in self._partitions.items()
                if self._existing is None or number in self._existing
            }
        return {number: age for number, age in ages.items() if age >= 0}

    def _export_lag(self, partition: int) -> None:
        lag = self._partitions[partition].lag
        if lag >= 0 and (self._existing is None or partition in self._existing):
            self.metrics.lag.labels(self.topic, str(partition)).set(lag)

    def assigned_partitions(self) -> list[int]:
        with self._lock:
            return sorted(self._partitions)

    def next_offsets(self, positions: dict[int, int]) -> dict[int, int]:
        """The next offset to read per partition: the client's position, else the committed
        offset, else the low watermark (-1 when none is known); records the positions."""
        offsets: dict[int, int] = {}
        with self._lock:
            for number, position in positions.items():
                part = self._partitions.get(number)
                if part is None:
                    offsets[number] = position if position >= 0 else -1
                    continue
                if position >= 0:
                    part.position = position
                known = [part.position, part.committed, part.low_watermark]
                offsets[number] = next((o for o in known if o >= 0), -1)
        return offsets

    def membership(
        self, verdict: Verdict, since_monotonic: float, member_id: str, view: GroupView | None
    ) -> None:
        """Where the instance stands in its group (``membership.MembershipJudge``)."""
        since = time.time() - (time.monotonic() - since_monotonic)
        with self._lock:
            old = self._membership.state
            membership = self._membership
            membership.state = verdict.state
            membership.reason = verdict.reason
            membership.since.CopyFrom(_timestamp(since))
            membership.member_id = member_id
            if view is not None and not view.cluster_error:
                membership.topic_partitions = view.partitions
                if not view.group_error:
                    membership.group_members = len(view.members)
                self._existing = set(view.led)
                for number, high in view.high_watermarks.items():
                    part = self._partitions.get(number)
                    if part is not None and high > part.high_watermark:
                        part.high_watermark = high
                        self._export_lag(number)
                for number in set(self._partitions) - self._existing:
                    with contextlib.suppress(KeyError):  # a vanished partition has no lag
                        self.metrics.lag.remove(self.topic, str(number))
            if verdict.trouble and self.state == pb.CONSUMER_STATE_RUNNING:
                self.state = pb.CONSUMER_STATE_DEGRADED
            elif (
                verdict.state in (pb.MEMBERSHIP_STATE_ASSIGNED, pb.MEMBERSHIP_STATE_IDLE)
                and self.state == pb.CONSUMER_STATE_DEGRADED
                and view is not None
                and not view.cluster_error
                and time.monotonic() - view.taken_at < _QUIET_FOR_RUNNING_S
                and time.time() - self._last_error_time > _QUIET_FOR_RUNNING_S
            ):
                self.state = pb.CONSUMER_STATE_RUNNING  # an idle member handles no message
        if old != verdict.state:
            self.metrics.membership.labels(pb.MembershipState.Name(old)).set(0)
            self.metrics.membership.labels(pb.MembershipState.Name(verdict.state)).set(1)

    def rejoined(self, state: pb.MembershipState) -> None:
        """The consume loop closed and recreated its Kafka consumer because of ``state``."""
        self.metrics.rejoins.labels(pb.MembershipState.Name(state)).inc()
        with self._lock:
            self._membership.rejoins += 1

    # ---- read by the gRPC server -------------------------------------------------------------

    def snapshot(self) -> pb.GetStatusResponse:
        now = time.time()
        with self._lock:
            partitions = []
            for number, part in sorted(self._partitions.items()):
                if self._existing is not None and number not in self._existing:
                    continue  # the topic has no such partition (any more)
                partitions.append(
                    pb.PartitionStatus(
                        partition=number,
                        committed_offset=part.committed,
                        high_watermark=part.high_watermark,
                        lag=part.lag,
                        position=part.position,
                        lag_seconds=round(part.lag_seconds(now), 3),
                    )
                )
            response = pb.GetStatusResponse(
                state=self.state,
                group_id=self.group_id,
                topic=self.topic,
                dead_letter_topic=self.dead_letter_topic,
                counters=pb.Counters(
                    processed=self.processed,
                    duplicates_skipped=self.duplicates_skipped,
                    dead_lettered=self.dead_lettered,
                    errors_total=sum(self.errors_by_kind.values()),
                    errors_by_kind=[
                        pb.ErrorCount(kind=kind, count=count)
                        for kind, count in sorted(self.errors_by_kind.items())
                    ],
                ),
                partitions=partitions,
                recent_errors=list(self._recent),
                start_time=_timestamp(self.start_time),
                failure_reason=self.failure_reason,
                membership=self._membership,
            )
            if self.last_order_time is not None:
                response.last_order_time.CopyFrom(_timestamp(self.last_order_time))
        return response

    def subscribe(self, capacity: int) -> ErrorWatch:
        """Every error from now on, for one WatchErrors stream (at most ``capacity`` waiting)."""
        subscriber = ErrorWatch(asyncio.get_running_loop(), capacity)
        with self._lock:
            self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: ErrorWatch) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    def failed(self, reason: str) -> None:
        """A worker died or stalled: FAILED for good, with the reason (also as an error)."""
        self.error(pb.ERROR_KIND_WORKER_FAILED, reason)
        with self._lock:
            self.state = pb.CONSUMER_STATE_FAILED
            self.failure_reason = reason

    def stopping(self) -> None:
        """STOPPING for good (FAILED stays), and end every WatchErrors stream."""
        with self._lock:
            if self.state != pb.CONSUMER_STATE_FAILED:
                self.state = pb.CONSUMER_STATE_STOPPING
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.close()
