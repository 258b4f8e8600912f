"""The consume loop: a thread that polls Kafka, processes orders, and stores offsets after.

At-least-once processing, a state recorded once: an offset is committed only once its order
has been processed (logged) or its bad message's dead-letter copy settled (written, or recorded
as DEAD_LETTER_FAILED). Messages are handled in batches of what has already arrived (up to
``batch_max``): the order-state view is caught up first (``order_states``), the batch's log lines
are written, the dead-letter copies, produced as the bad messages came, are settled together;
then the batch's order-state events and its offsets are committed in one Kafka transaction. An
aborted transaction (a rebalance, a Kafka error) rewinds the batch; its records, read again by
this instance, are recorded without being processed twice. Only a crash, or a partition that
moved to another member meanwhile, has a batch's lines written again; its state is recorded
once. With the order state off, offsets are stored instead and librdkafka commits them every
second, on rebalance and on close.

Progress is judged against the group as well as the thread (``membership``): once a second the
loop puts what it holds and how far it has read beside the group's own description, rejoins
(closes and recreates its Kafka consumer) when it has been out of the group or stalled for
``group_timeout_s``, and ends with ``MembershipLost`` (the watchdog then fails the service: exit
70) when that did not help within another ``group_timeout_s``. A fatal librdkafka error (a
static member fenced by another with the same ``group.instance.id``) ends it at once. Records
the client cannot fetch are skipped after a few attempts (``unfetchable``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_common import kafka_spans, tracing
from coffee_orders_common.kafka_errors import (
    FatalKafkaError,
    RepeatedErrorFilter,
    describe,
    error_of,
    is_fatal,
)
from coffee_orders_common.liveness import Heartbeat
from coffee_orders_common.logs import batched_logs
from coffee_orders_common.order_state import State
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from .dead_letter import DeadLetters, Outcome, Settled
from .decoder import BadMessage, decode
from .lag_age import after_last_records, first_records
from .membership import Action, GroupProbe, MembershipJudge
from .order_states import OrderStates
from .status import ConsumerStatus
from .unfetchable import UnfetchableRecords, is_record_error

log = logging.getLogger("coffee_orders.consumer")
_WATERMARK_REFRESH_S = 1.0
_QUIET_ERRORS = {KafkaError._PARTITION_EOF, KafkaError._NO_OFFSET}
_NOT_READY_LOG_S = 30.0  # "the order state is not caught up" once this often, not per batch
_OLD_CONSUMER_CLOSE_S = 10.0  # a rejoin waits this long for the abandoned consumer to close


class MembershipLost(Exception):
    """The instance stayed out of its group (or stalled) after a rejoin: a restart may help."""


class Handled(Enum):
    PROCESSED = "processed"  # the order was logged: its offset may be stored
    SKIPPED = "skipped"  # nothing to do (a duplicate, or handled before an abort): offset storable
    REJECTED = "rejected"  # bad: stored once its dead-letter copy is settled
    EVENT = "event"  # a Kafka error event, no offset to store


class ConsumeLoop:
    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        status: ConsumerStatus,
        states: OrderStates | None,
        dead_letters: DeadLetters,
        probe: GroupProbe,
        group_timeout_s: float,
        batch_max: int,
        topic_id: str = "",
    ):
        """``states``: the order-state topic's view and transactions (None: offsets are stored
        and auto-committed, with no duplicate check); ``topic_id``: the topic's id at start
        ("" unknown: the probe's first one is taken)."""
        self._config = {**config, "logger": logging.getLogger("librdkafka")}
        # Each Kafka consumer is a generation: a rejoin abandons the old one (still closing,
        # maybe for good) and its callbacks, which would otherwise act on the new one's state.
        self._generation = 0
        self._topic = topic
        self._batch_max = batch_max
        self._status = status
        self._states = states
        self._not_ready_logged = 0.0
        self._dead_letters = dead_letters
        self._probe = probe
        self._judge = MembershipJudge(group_timeout_s)
        self._unfetchable = UnfetchableRecords()
        self._fatal: KafkaError | None = None
        self._last_client_error = ""  # what the Kafka client last complained of, for reasons
        self._topic_id = topic_id  # a new one means the topic was deleted and created again
        self._consumer = self._new_consumer()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="consume-loop", daemon=True)
        # Beaten once per poll (at least every 0.5 s) and per dead-letter attempt; the watchdog
        # fails the service when it is silent too long or the thread has ended.
        self.heartbeat = Heartbeat()
        self._newly_assigned: list[TopicPartition] = []
        self._client_errors = RepeatedErrorFilter()
        self._revoked_meanwhile: set[int] = set()
        self._traced = False  # whether spans are recorded: asked once per batch, not per order

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Finish the current message, commit, leave the group; False if it took too long."""
        self._stop.set()
        self.thread.join(timeout_s)
        return not self.thread.is_alive()

    # ---- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self._states is not None:
                self._start_transactions(self._states)
            refreshed = 0.0
            while not self._stop.is_set():
                self.heartbeat.beat()
                first = self._consumer.poll(0.5)
                self._raise_if_fatal()
                if self._newly_assigned:
                    self._load_committed()
                if first is not None:
                    self._handle_batch(self._rest_of_batch(first))
                    self._raise_if_fatal()
                if time.monotonic() - refreshed > _WATERMARK_REFRESH_S:
                    self._refresh_watermarks()
                    self._judge_membership()
                    refreshed = time.monotonic()
        except Exception as exc:  # the watchdog logs it, fails the service and exits non-zero
            self.heartbeat.ended(exc)
        finally:
            self._close()

    def _start_transactions(self, states: OrderStates) -> None:
        """Register the transactional id with Kafka, trying until it answers (or a stop)."""
        while not self._stop.is_set():
            self.heartbeat.beat()
            try:
                states.transactions.start()
                return
            except KafkaException as exc:
                error = error_of(exc)
                if error is not None and is_fatal(error):
                    raise
                text = f"cannot start the order-state transactions: {error}"
                log.warning(text)
                self._status.error(pb.ERROR_KIND_KAFKA, text, topic=states.transactions.topic)
                self._stop.wait(1.0)

    def _new_consumer(self) -> Consumer:
        """A Kafka consumer of the current generation, subscribed; its callbacks do nothing
        once a rejoin has moved on to the next one."""
        generation = self._generation

        def of_this_generation(callback: Callable[..., None]) -> Callable[..., None]:
            def call(*args: Any) -> None:
                if generation == self._generation:
                    callback(*args)

            return call

        consumer = Consumer(
            {
                **self._config,
                "on_commit": of_this_generation(self._on_commit),
                "error_cb": of_this_generation(self._on_client_error),
            }
        )
        consumer.subscribe(  # callbacks run inside poll, on the consume thread
            [self._topic],
            on_assign=of_this_generation(self._on_assign),
            on_revoke=of_this_generation(self._on_revoke),
            on_lost=of_this_generation(self._on_lost),
        )
        return consumer

    def _close(self) -> None:
        _close_consumer(self._consumer, "")
        self._probe.stop()
        if self._states is not None:
            self._states.transactions.close()
        self._dead_letters.close()

    def _raise_if_fatal(self) -> None:
        if self._fatal is not None:
            raise FatalKafkaError(
                f"{describe(self._fatal)} (a fatal Kafka error: this Kafka client cannot "
                "recover; a static member is fenced when another consumer joins with its "
                "group.instance.id)"
            )

    # ---- membership ----------------------------------------------------------------------

    def _judge_membership(self) -> None:
        """Judge where the instance stands in its group; rejoin or fail when it must."""
        try:
            held = {tp.partition for tp in self._consumer.assignment() if tp.topic == self._topic}
            member_id = self._consumer.memberid() or ""
            positions = self._consumer.position(
                [TopicPartition(self._topic, number) for number in sorted(held)]
            )
        except (KafkaException, RuntimeError) as exc:
            log.info("membership not judged", extra={"fields": {"error": str(exc)}})
            return
        next_offsets = self._status.next_offsets(
            {tp.partition: tp.offset for tp in positions if tp.error is None}
        )
        view = self._probe.view
        if view is not None and view.topic_id:
            if self._topic_id and view.topic_id != self._topic_id:
                try:
                    self._read_recreated_topic(held & set(view.led), self._topic_id, view.topic_id)
                except KafkaException as exc:  # tried again in a second
                    log.warning(
                        "rereading the recreated topic failed",
                        extra={"fields": {"error": str(exc)}},
                    )
                    return
            self._topic_id = view.topic_id
        action = self._judge.check(view, member_id, held, next_offsets)
        verdict = self._judge.verdict
        self._status.membership(verdict, self._judge.since, member_id, view)
        if action is Action.REJOIN:
            self._rejoin(verdict.reason)
        elif action is Action.FAIL:
            self._status.error(pb.ERROR_KIND_GROUP_MEMBERSHIP, verdict.reason, topic=self._topic)
            raise MembershipLost(
                f"{verdict.reason}, still after rejoining "
                f"(group_timeout_s is {self._judge.timeout_s:g}){self._client_said()}"
            )

    def _read_recreated_topic(self, held: set[int], old_id: str, new_id: str) -> None:
        """The topic was deleted and created again: read what this instance holds of the new
        one from its start. The positions (and stored offsets) still point into the old one,
        and where they are inside the new one's range, the records below them were never read.
        """
        text = (
            f"the topic {self._topic} was deleted and created again (id {old_id} -> {new_id}): "
            f"reading partitions {sorted(held)} of the new topic from their start"
        )
        log.warning(text)
        self._status.error(pb.ERROR_KIND_KAFKA, text, topic=self._topic)
        starts = []
        for number in sorted(held):
            tp = TopicPartition(self._topic, number)
            low, _ = self._consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            starts.append(TopicPartition(self._topic, number, max(low, 0)))
        self._unfetchable.forget(sorted(held))
        if self._states is not None:
            self._states.forget(sorted(held))
        for start in starts:
            self._consumer.seek(start)
            self._status.committed(start.partition, start.offset)
        if starts:
            self._consumer.store_offsets(offsets=starts)  # else auto-commit sends the old ones
            self._consumer.commit(offsets=starts, asynchronous=False)

    def _client_said(self) -> str:
        said = self._last_client_error
        return f"; the Kafka client last reported {said}" if said else ""

    def _rejoin(self, reason: str) -> None:
        """Close the Kafka consumer and start a new one: a fresh member, committed offsets."""
        timeout = self._judge.timeout_s
        text = (
            f"{reason} for {timeout:g} s or more{self._client_said()}; "
            "rejoining with a new Kafka consumer"
        )
        log.warning(text, extra={"fields": {"group_timeout_s": timeout}})
        self._status.error(pb.ERROR_KIND_GROUP_MEMBERSHIP, text, topic=self._topic)
        self._status.rejoined(self._judge.verdict.state)
        old, self._generation = self._consumer, self._generation + 1
        # close() commits the stored offsets and leaves the group, but a client stuck on its
        # coordinator can block in it for good: it is given a bound, then left behind.
        closing = threading.Thread(
            target=_close_consumer, args=(old, "the old Kafka consumer: "), name="old-consumer"
        )
        closing.daemon = True
        closing.start()
        deadline = time.monotonic() + _OLD_CONSUMER_CLOSE_S
        while closing.is_alive() and time.monotonic() < deadline:
            self.heartbeat.beat()
            closing.join(0.5)
        if closing.is_alive():
            log.warning(
                f"the old Kafka consumer did not close within {_OLD_CONSUMER_CLOSE_S:g} s; "
                "left closing in the background"
            )
        self._forget(self._status.assigned_partitions())
        self._newly_assigned = []
        self._consumer = self._new_consumer()
        self._judge.rejoined()

    def _rest_of_batch(self, first: Message) -> list[Message]:
        """``first`` and whatever else has already arrived, without waiting for more.

        A rebalance can run inside that second call: messages of partitions it took away are
        dropped here (not processed, not stored) and go to their new owner instead.
        """
        if first.error() is not None:
            return [first]
        self._revoked_meanwhile = set()
        batch = [first, *self._consumer.consume(self._batch_max - 1, 0)]
        if self._revoked_meanwhile:
            batch = [m for m in batch if (m.partition() or 0) not in self._revoked_meanwhile]
        return batch

    def _handle_batch(self, messages: list[Message]) -> None:
        """Handle in order; write the log lines and order_ids; settle the dead-letter copies;
        store the offsets."""
        handled: list[tuple[Message, Handled]] = []
        states = self._states
        if any(message.error() is None for message in messages):
            if states is not None:
                states.member_id = self._consumer.memberid() or ""
                if not states.ready(self.heartbeat.beat):
                    self._not_ready(messages)
                    return
                states.start_batch()
            self._status.set_state(pb.CONSUMER_STATE_RUNNING)
        self._status.records_read(first_records(messages))  # lag in seconds
        self._traced = tracing.recording()
        with batched_logs():
            for message in messages:
                handled.append(self._handle_safely(message))
        unsettled = (
            self._settle_dead_letters()
            if any(how is Handled.REJECTED for _, how in handled)
            else set()
        )
        done = self._last_done(handled, unsettled)
        if states is not None:
            dead_lettered = [
                (m.partition() or 0, m.offset() or 0)
                for m, how in handled
                if how is Handled.REJECTED
                and (m.topic() or "", m.partition() or 0, m.offset() or 0) not in unsettled
            ]
            if self._commit(states, done, messages, dead_lettered):
                self._status.records_processed(after_last_records(done))
            return
        processed = sum(1 for _, how in handled if how is Handled.PROCESSED)
        if processed:
            self._status.orders_processed(processed)
        for message in done:
            self._store(message)
        self._status.records_processed(after_last_records(done))

    def _commit(
        self,
        states: OrderStates,
        done: list[Message],
        batch: list[Message],
        dead_lettered: list[tuple[int, int]],
    ) -> bool:
        """Commit the batch's order-state events and offsets in one transaction; read the
        batch again when it was aborted (False)."""
        last_done = {message.partition() or 0: message.offset() or 0 for message in done}
        events = states.batch_events(last_done)
        if not last_done and not events:
            return True
        offsets = [TopicPartition(self._topic, p, offset + 1) for p, offset in last_done.items()]
        why = states.transactions.commit(
            events, offsets, self._consumer.consumer_group_metadata(), self.heartbeat.beat
        )
        if why:
            text = f"the order-state transaction was aborted ({why}); the batch is read again"
            log.warning(text, extra={"fields": {"topic": states.transactions.topic}})
            self._status.error(pb.ERROR_KIND_KAFKA, text, topic=states.transactions.topic)
            states.aborted(events, dead_lettered, batch)
            self._rewind(batch)
            return False
        states.committed({offset.partition: offset.offset for offset in offsets})
        states.view.record(events)
        processed = sum(1 for event in events if event.state is State.PROCESSED)
        if processed:
            self._status.orders_processed(processed)
        for offset in offsets:
            self._status.committed(offset.partition, offset.offset)
        return True

    def _not_ready(self, batch: list[Message]) -> None:
        """The order-state view did not catch up in time: the batch waits (read again)."""
        assert self._states is not None
        view = self._states.view
        if time.monotonic() - self._not_ready_logged > _NOT_READY_LOG_S:
            self._not_ready_logged = time.monotonic()
            why = view.problem or "its readers are held by an open transaction"
            text = (
                f"the order-state topic {view.topic} is not caught up ({why}): orders wait, "
                "since duplicates cannot be told meanwhile"
            )
            log.warning(text)
            self._status.error(pb.ERROR_KIND_KAFKA, text, topic=view.topic)
        self._status.set_state(pb.CONSUMER_STATE_DEGRADED)
        self._rewind(batch)

    def _rewind(self, batch: list[Message]) -> None:
        """Seek each partition of ``batch`` back to its first record there."""
        first: dict[int, int] = {}
        for message in batch:
            if message.error() is None:
                first.setdefault(message.partition() or 0, message.offset() or 0)
        for partition, offset in first.items():
            try:
                self._consumer.seek(TopicPartition(self._topic, partition, offset))
            except KafkaException as exc:  # not held any more: its new owner reads it
                log.info("not rewound", extra={"fields": {"partition": partition, "why": str(exc)}})

    @staticmethod
    def _last_done(
        handled: list[tuple[Message, Handled]], unsettled: set[tuple[str, int, int]]
    ) -> list[Message]:
        """Per partition, the last message before the first one whose copy is not settled."""
        last: dict[tuple[str, int], Message] = {}
        held: set[tuple[str, int]] = set()
        for message, how in handled:
            partition = (message.topic() or "", message.partition() or 0)
            if how is Handled.EVENT or partition in held:
                continue
            if (*partition, message.offset() or 0) in unsettled:
                held.add(partition)  # redelivered after the restart, with all behind it
            else:
                last[partition] = message
        return list(last.values())

    def _handle_safely(self, message: Message) -> tuple[Message, Handled]:
        """How ``message`` was handled, beside the message whose offset that settles (a record
        the client cannot fetch is settled by a stand-in with the skipped record's offset)."""
        try:
            return self._handle(message)
        except Exception:  # a bug must not stop consumption; the message goes to the DLQ
            log.exception("processing a message failed unexpectedly")
            self._reject(
                message,
                pb.ERROR_KIND_UNSPECIFIED,
                "processing failed unexpectedly",
                headers_readable=False,  # reading them may be what failed (a non-UTF-8 name)
            )
            return message, Handled.REJECTED

    def _handle(self, message: Message) -> tuple[Message, Handled]:
        error = message.error()
        if error is not None:
            return self._handle_error(message, error)
        partition = message.partition() or 0
        if self._unfetchable.active:
            self._unfetchable.delivered(partition, message.offset() or 0)
        if self._states is not None:
            before, event = self._states.handled_before(message)
            if before:  # handled before an aborted transaction: recorded again, not redone
                again = event is not None and event.state is State.PROCESSED
                return message, Handled.PROCESSED if again else Handled.SKIPPED
        try:
            decoded = decode(message)
        except BadMessage as bad:
            self._reject(message, bad.kind, bad.reason)
            return message, Handled.REJECTED
        else:
            fields: dict[str, object] = {
                "order_id": decoded.order_id,
                "partition": partition,
                "offset": message.offset(),
            }
            if decoded.traceparent:
                fields["trace_id"] = tracing.trace_id(decoded.traceparent)
            states = self._states
            order_identity = b"" if states is None else states.new_identity(decoded)
            if order_identity is None:
                self._status.duplicate_skipped()
                log.info("skipping duplicate order", extra={"fields": fields})
            else:
                order = decoded.order
                span = (
                    kafka_spans.process_span(
                        self._topic,
                        self._config.get("group.id", ""),
                        partition,
                        message.offset() or 0,
                        message.key(),
                        decoded.order_id,
                        decoded.traceparent,
                    )
                    if self._traced
                    else contextlib.nullcontext()
                )
                with span:
                    log.info(
                        f"brewing {order.coffee_type} for {order.customer_name}",
                        extra={"fields": fields},
                    )
                if states is not None:
                    states.processed(decoded, order_identity, message)
                return message, Handled.PROCESSED
        return message, Handled.SKIPPED

    def _handle_error(self, message: Message, error: KafkaError) -> tuple[Message, Handled]:
        """A Kafka error event; a record the client cannot fetch is skipped after retries."""
        if is_fatal(error):
            self._fatal = error
        elif is_record_error(message):
            skip = self._unfetchable.offer(message)
            if skip is None:
                return message, Handled.EVENT  # fetched again in a moment: retried
            record = skip.record
            self._consumer.seek(
                TopicPartition(self._topic, record.partition() or 0, skip.next_offset)
            )
            self._reject(record, pb.ERROR_KIND_UNFETCHABLE_RECORD, skip.reason)
            return record, Handled.REJECTED
        elif error.code() not in _QUIET_ERRORS:
            self._kafka_problem(error)
        return message, Handled.EVENT

    def _store(self, message: Message) -> None:
        try:
            self._consumer.store_offsets(message=message)
        except KafkaException as exc:  # the partition was revoked meanwhile
            log.info("offset not stored", extra={"fields": {"reason": str(exc)}})

    def _reject(
        self, message: Message, kind: pb.ErrorKind, reason: str, headers_readable: bool = True
    ) -> None:
        """Report a bad message and start copying it to the dead-letter topic."""
        kind_name = pb.ErrorKind.Name(kind).removeprefix("ERROR_KIND_")
        where = _where(message)
        log.warning(
            f"bad message ({kind_name}): {reason}", extra={"fields": {"kind": kind_name, **where}}
        )
        self._status.error(kind, reason, **where, payload=_payload(message))
        self._dead_letters.add(message, kind_name, reason, headers_readable)
        if self._states is not None:
            self._states.rejected(message, kind, reason, headers_readable)

    def _settle_dead_letters(self) -> set[tuple[str, int, int]]:
        """Wait for this batch's dead-letter copies and account for each; the unsettled ones."""
        unsettled: set[tuple[str, int, int]] = set()
        troubles: list[str] = []

        def trouble(text: str) -> None:
            self.heartbeat.beat()  # waiting for the DLQ is no stall (worker_stall_timeout_s)
            troubles.append(text)
            self._status.error(pb.ERROR_KIND_KAFKA, text, topic=self._dead_letters.topic)
            self._status.set_state(pb.CONSUMER_STATE_DEGRADED)

        settled = self._dead_letters.settle(self._stop, trouble)
        if troubles and not self._stop.is_set():
            self._status.set_state(pb.CONSUMER_STATE_RUNNING)  # settled: the loop goes on
        with batched_logs():
            for copy in settled:
                if copy.outcome is Outcome.UNSETTLED:
                    where = _where(copy.message)
                    unsettled.add((where["topic"], where["partition"], where["offset"]))
                else:
                    self._account(copy)
        return unsettled

    def _account(self, copy: Settled) -> None:
        """Count and report one settled dead-letter copy."""
        where = _where(copy.message)
        if copy.outcome is Outcome.FAILED:
            text = f"cannot copy to {self._dead_letters.topic}: {copy.detail}"
            log.warning(text, extra={"fields": where})
            self._status.error(
                pb.ERROR_KIND_DEAD_LETTER_FAILED, text, **where, payload=_payload(copy.message)
            )
            return
        if copy.outcome is Outcome.EXCERPT:
            log.warning(
                f"dead-lettered an excerpt to {self._dead_letters.topic}: {copy.detail}",
                extra={"fields": where},
            )
        self._status.dead_letter_sent(excerpt=copy.outcome is Outcome.EXCERPT)

    # ---- Kafka callbacks (served inside poll, on this thread) ---------------------------------

    def _kafka_problem(self, error: KafkaError) -> None:
        # librdkafka repeats these on every reconnect (every few ms when a broker refuses the
        # TLS handshake): log and report each problem once a window, so the reason the health
        # watch gave stays among the recent errors.
        if self._client_errors.first_in_window(error):
            text = describe(error)
            log.warning("Kafka error", extra={"fields": {"error": text}})
            self._status.error(pb.ERROR_KIND_KAFKA, text)
        self._status.set_state(pb.CONSUMER_STATE_DEGRADED)

    def _on_client_error(self, error: KafkaError) -> None:
        self._last_client_error = describe(error)
        if is_fatal(error):
            self._fatal = error
        self._kafka_problem(error)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None and error.code() not in _QUIET_ERRORS:
            self._kafka_problem(error)
            return
        for tp in partitions:
            if tp.error is None:
                self._status.committed(tp.partition, tp.offset)

    def _on_assign(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        log.info("partitions assigned", extra={"fields": {"partitions": numbers}})
        if self._states is not None:
            self._states.catch_up_needed = True
        self._status.assigned({number: -1 for number in numbers})
        self._newly_assigned.extend(partitions)
        self._status.set_state(pb.CONSUMER_STATE_RUNNING)

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        log.info("partitions revoked", extra={"fields": {"partitions": numbers}})
        self._forget(numbers)

    def _on_lost(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        self._status.error(pb.ERROR_KIND_KAFKA, f"partitions lost: {numbers}", topic=self._topic)
        log.warning("partitions lost", extra={"fields": {"partitions": numbers}})
        self._forget(numbers)

    def _forget(self, numbers: list[int]) -> None:
        self._revoked_meanwhile.update(numbers)
        self._unfetchable.forget(numbers)
        self._status.revoked(numbers)

    # ---- status upkeep -------------------------------------------------------------------

    def _load_committed(self) -> None:
        partitions, self._newly_assigned = self._newly_assigned, []
        try:
            committed = self._consumer.committed(partitions, timeout=5)
        except KafkaException as exc:
            log.info("committed offsets unknown for now", extra={"fields": {"error": str(exc)}})
            return
        for tp in committed:
            self._status.committed(tp.partition, tp.offset)

    def _refresh_watermarks(self) -> None:
        for number in self._status.assigned_partitions():
            tp = TopicPartition(self._topic, number)
            try:
                low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            self._status.watermarks(number, low, high)


def _close_consumer(consumer: Consumer, which: str) -> None:
    """Commit the stored offsets and leave the group; ``which`` prefixes the log line."""
    try:
        consumer.close()
        log.info(f"{which}left the consumer group")
    except Exception as exc:  # KafkaException; not in the group any more: commits refused
        log.warning(f"{which}closing the consumer failed", extra={"fields": {"error": str(exc)}})


def _where(message: Message) -> dict[str, Any]:
    """topic, partition and offset of ``message``, as status.error and log fields take them."""
    return {
        "topic": message.topic() or "",
        "partition": message.partition() or 0,
        "offset": message.offset() or 0,
    }


def _payload(message: Message) -> bytes | None:
    value = message.value()
    return value if isinstance(value, bytes) else None
