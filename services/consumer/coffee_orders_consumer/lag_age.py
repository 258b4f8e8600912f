"""Lag in seconds: how long the oldest record this instance has not processed has waited.

Per partition, the record that waits longest is the one at the next offset to process. Its age
is known without any extra fetch:

- exactly, from the record's own timestamp, once the consume loop has it in hand (``reading``);
- otherwise from below: it was written after the record before it (``processed`` keeps that
  one's timestamp) and after the last moment the partition was seen caught up (``watermark``
  with the high watermark at the next offset), whichever is later. Its age is then at most
  ``now`` minus that time: exact to the watermark refresh (a second) for a consumer that was
  caught up, and to the gap between two records for one working through a backlog;
- with neither (a backlog found on a partition just assigned, before its first record is
  read), from the moment the backlog was first seen: a lower bound until the record is read.

The age is computed when asked (``seconds``, at each scrape), so it keeps growing while the
consume loop is stuck. 0 when nothing waits, -1 when the offsets are not known yet.
Timestamps in the future (a producer's clock ahead) count as now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message


@dataclass
class LagAge:
    """What is known of when the oldest unprocessed record of one partition was written."""

    next_offset: int = -1  # the next offset to process, as the consume loop last said
    written_at: float | None = None  # when the record at next_offset was written (or estimate)
    exact: bool = False  # written_at is the record's own timestamp
    not_before: float | None = None  # the record at next_offset was written after this

    def reading(self, offset: int, timestamp_s: float | None, now: float) -> None:
        """The consume loop has the record at ``offset`` in hand, not processed yet."""
        self._move_to(offset)
        if timestamp_s is not None:
            self.written_at, self.exact = min(timestamp_s, now), True

    def processed(self, next_offset: int, last_timestamp_s: float | None, now: float) -> None:
        """Everything below ``next_offset`` is processed; the last record was written at
        ``last_timestamp_s``."""
        self._move_to(next_offset)
        self.written_at, self.exact = None, False
        if last_timestamp_s is not None:
            self._written_after(min(last_timestamp_s, now))

    def watermark(self, next_offset: int, high_watermark: int, now: float) -> None:
        """The partition's high watermark as seen at ``now`` (``next_offset``: the loop's, or
        the committed offset or low watermark when it has not said yet)."""
        if next_offset < 0 or high_watermark < 0:
            return
        if high_watermark <= next_offset:  # caught up: the next record is not written yet
            self.written_at, self.exact = None, False
            self._written_after(now)
        elif self.written_at is None:
            self.written_at = self.not_before if self.not_before is not None else now

    def seconds(self, next_offset: int, high_watermark: int, now: float) -> float:
        """Age of the oldest unprocessed record at ``now``: 0 when none waits, -1 unknown."""
        if next_offset < 0 or high_watermark < 0:
            return -1.0
        if high_watermark <= next_offset:
            return 0.0
        written_at = self.written_at if self.written_at is not None else self.not_before
        return max(now - written_at, 0.0) if written_at is not None else 0.0

    def _move_to(self, offset: int) -> None:
        if offset < self.next_offset:  # read again from further back: nothing known holds
            self.not_before = None
        if offset != self.next_offset:
            self.written_at, self.exact = None, False
        self.next_offset = offset

    def _written_after(self, moment: float) -> None:
        if self.not_before is None or moment > self.not_before:
            self.not_before = moment


def timestamp_s(message: Message) -> float | None:
    """The record's timestamp (create or log-append time) in seconds, None when it has none."""
    kind, millis = message.timestamp()
    return None if kind == TIMESTAMP_NOT_AVAILABLE or millis < 0 else millis / 1000.0


Records = dict[int, tuple[int, float | None]]  # partition -> (offset, timestamp in s)


def first_records(messages: Iterable[Message]) -> Records:
    """Per partition, the offset and timestamp of the first record of ``messages`` (the oldest
    not processed while they are handled); error events are left out."""
    first: Records = {}
    for message in messages:
        partition = message.partition() or 0
        if partition not in first and message.error() is None:
            first[partition] = (message.offset() or 0, timestamp_s(message))
    return first


def after_last_records(messages: Iterable[Message]) -> Records:
    """Per partition, the offset after the last record of ``messages`` and that record's
    timestamp; error events are left out."""
    return {
        message.partition() or 0: ((message.offset() or 0) + 1, timestamp_s(message))
        for message in messages
        if message.error() is None
    }
