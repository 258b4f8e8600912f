"""The membership judge, the unfetchable-record tracker and the coordinator lookup (no broker)."""

from __future__ import annotations

import dataclasses
import json

from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_consumer.membership import Action, GroupView, MembershipJudge
from coffee_orders_consumer.unfetchable import ATTEMPTS, UnfetchableRecords, is_record_error
from coffee_orders_devtools.fault_run import group_offsets_partition
from confluent_kafka import KafkaError, Message

TIMEOUT = 30.0
ME = "member-me"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def view(
    clock: Clock,
    members: dict[str, set[int]],
    partitions: int = 3,
    state: str = "STABLE",
    high: dict[int, int] | None = None,
    cluster_error: str = "",
    group_error: str = "",
) -> GroupView:
    return GroupView(
        clock.now,
        state,
        {member: frozenset(held) for member, held in members.items()},
        {number: True for number in range(partitions)},
        high or {},
        cluster_error,
        group_error,
    )


def advance(
    judge: MembershipJudge,
    clock: Clock,
    seconds: float,
    see: GroupView | None,
    held: set[int],
    offsets: dict[int, int] | None = None,
    member_id: str = ME,
) -> list[Action]:
    """Check once a second for ``seconds``, the view taken fresh each time; every action."""
    actions = []
    for _ in range(int(seconds)):
        clock.now += 1
        fresh = see if see is None else dataclasses.replace(see, taken_at=clock.now)
        actions.append(judge.check(fresh, member_id, held, offsets or {}))
    return actions


def test_a_member_holding_partitions_is_assigned_and_never_acts() -> None:
    clock = Clock()
    judge = MembershipJudge(TIMEOUT, clock)
    seen = view(clock, {ME: {0, 1, 2}}, high={0: 5, 1: 5, 2: 5})
    actions = advance(judge, clock, 120, seen, {0, 1, 2}, {0: 5, 1: 5, 2: 5})
    assert set(actions) == {Action.NONE}
    assert judge.verdict.state == pb.MEMBERSHIP_STATE_ASSIGNED


def test_more_members_than_partitions_is_idle_not_lost() -> None:
    clock = Clock()
    judge = MembershipJudge(TIMEOUT, clock)
    seen = view(clock, {"a": {0}, "b": {1}, "c": {2}, ME: set()})
    actions = advance(judge, clock, 300, seen, set())
    assert set(actions) == {Action.NONE}
    assert judge.verdict.state == pb.MEMBERSHIP_STATE_IDLE
    assert "4 members for 3 partitions" in judge.verdict.reason


def test_forgotten_by_the_coordinator_rejoins_then_fails() -> None:
    clock = Clock()
    judge = MembershipJudge(TIMEOUT, clock)
    # The coordinator's group no longer lists this member (its session timed out).
    seen = view(clock, {"other": {0, 1, 2}}, state="STABLE")
    actions = advance(judge, clock, TIMEOUT + 31, seen, set())
    assert judge.verdict.state == pb.MEMBERSHIP_STATE_OUT_OF_GROUP
    assert "not a member of the group" in judge.verdict.reason
    first_rejoin = actions.index(Action.REJOIN)
    assert TIMEOUT - 1 <= first_rejoin <= TIMEOUT + 31, first_rejoin
    judge.rejoined()
    actions = advance(judge, clock, 2 * TIMEOUT + 2, seen, set())
    assert Action.FAIL in actions
    assert actions.index(Action.FAIL) >= TIMEOUT - 1


def test_progress_after_a_rejoin_resets_the_escalation() -> None:
    clock = Clock()
    judge = MembershipJudge(TIMEOUT, clock)
    lost = view(clock, {"other": {0, 1, 2}})
    assert Action.REJOIN in advance(judge, clock, 2 * TIMEOUT, lost, set())
    judge.rejoined()
    back = view(clock, {ME: {0}, "other": {1, 2}})
    assert set(advance(judge, clock, 5, back, {0})) == {Action.NONE}
    # Lost again later: a rejoin again, not a failure straight away.
    actions = advance(judge, clock, 2 * TIMEOUT, lost, set())
    assert Action.REJOIN in actions and Action.FAIL not in actions


def test_an_outage_is_not_judged() -> None:
    clock = Clock()
    judge = MembershipJudge(TIMEOUT, clock)
    dark = view(clock, {}, cluster_error="all brokers down")
    assert set(advance(judge, clock, 10 * TIMEOUT, dark, set())) == {Action.NONE}
    assert set(advance(judge, clock, 10 * TIMEOUT, None, set())) == {Action.NONE}
    # After the outage the bound starts anew: not an instant rejoin.
    lost = view(clock, {"other": {0, 1, 2}})
    actions = advance(judge, clock, TIMEOUT + 5, lost, set())
    assert actions.index(Action.REJOIN) >= TIMEOUT - 1


def test_a_coordinator_that_does_not_answer_while_brokers_do_counts() -> None:
    clock = Clock()
    judge = MembershipJudge(TIMEOUT, clock)
    seen = view(clock, {}, group_error="COORDINATOR_NOT_AVAILABLE")
    actions = advance(judge, clock, 2 * TIMEOUT + 2, seen, set())
    assert Action.REJOIN in actions
    assert "coordinator does not answer" in judge.verdict.reason


def test_joining_within_the_bound_is_patient() -> None:
    clock = Clock()
    judge = MembershipJudge(TIMEOUT, clock)
    rebalancing = view(clock, {ME: set(), "other": set()}, state="PREPARING_REBALANCE")
    actions = advance(judge, clock, TIMEOUT - 2, rebalancing, set())
    assert set(actions) == {Action.NONE}
    assert judge.verdict.state == pb.MEMBERSHIP_STATE_JOINING


def test_holding_partitions_the_coordinator_gave_to_others_counts() -> None:
    clock = Clock()
    judge = MembershipJudge(TIMEOUT, clock)
    seen = view(clock, {"other": {0, 1, 2}})
    actions = advance(judge, clock, 2 * TIMEOUT + 2, seen, {0})
    assert judge.verdict.state == pb.MEMBERSHIP_STATE_OUT_OF_GROUP
    assert Action.REJOIN in actions


def test_a_partition_with_lag_that_does_not_advance_is_stalled() -> None:
    clock = Clock()
    judge = MembershipJudge(TIMEOUT, clock)
    seen = view(clock, {ME: {0, 1}}, partitions=2, high={0: 100, 1: 50})
    offsets = {0: 40, 1: 50}  # partition 0 has 60 to read and stays at 40; 1 is caught up
    actions = advance(judge, clock, TIMEOUT - 2, seen, {0, 1}, offsets)
    assert set(actions) == {Action.NONE}
    actions = advance(judge, clock, 4, seen, {0, 1}, offsets)
    assert Action.REJOIN in actions
    assert judge.verdict.state == pb.MEMBERSHIP_STATE_STALLED
    assert "partition 0 has 60 records to read" in judge.verdict.reason


def test_a_partition_that_advances_or_has_no_leader_is_not_stalled() -> None:
    clock = Clock()
    judge = MembershipJudge(TIMEOUT, clock)
    for step in range(int(3 * TIMEOUT)):
        clock.now += 1
        seen = view(clock, {ME: {0}}, partitions=1, high={0: 10_000})
        assert judge.check(seen, ME, {0}, {0: step}) is Action.NONE  # slow, but advancing
    leaderless = GroupView(clock.now, "STABLE", {ME: frozenset({0})}, {0: False}, {0: 10_000})
    actions = advance(judge, clock, 3 * TIMEOUT, leaderless, {0}, {0: 5})
    assert set(actions) == {Action.NONE}


def _error_message(partition: int, offset: int, code: int = KafkaError._BAD_COMPRESSION) -> Message:
    text = f"Decompression (codec 0x4) of message at {offset} of 4605 bytes failed: Local: Invalid"
    return Message(topic="orders", partition=partition, offset=offset, error=KafkaError(code, text))


def test_a_record_error_is_retried_then_skipped_with_a_metadata_record() -> None:
    records = UnfetchableRecords()
    bad = _error_message(2, 7)
    assert is_record_error(bad)
    assert [records.offer(bad) for _ in range(ATTEMPTS - 1)] == [None] * (ATTEMPTS - 1)
    skip = records.offer(bad)
    assert skip is not None and skip.next_offset == 8
    assert (skip.record.partition(), skip.record.offset()) == (2, 7)
    described = json.loads(skip.record.value() or b"")["unfetchable_record"]
    assert described["codec"] == "zstd" and described["compressed_bytes"] == 4605
    assert described["error"] == "_BAD_COMPRESSION" and described["attempts"] == ATTEMPTS


def test_the_rest_of_a_bad_batch_is_skipped_at_once_and_a_read_clears_it() -> None:
    records = UnfetchableRecords()
    for _ in range(ATTEMPTS):
        skip = records.offer(_error_message(0, 10))
    assert skip is not None and skip.next_offset == 11
    again = records.offer(_error_message(0, 10))  # the batch at 10 also holds 11
    assert again is not None and again.record.offset() == 11 and again.next_offset == 12
    records.delivered(0, 12)
    assert not records.active
    assert records.offer(_error_message(0, 10)) is None  # a new failure: retried first


def test_cluster_errors_are_never_a_reason_to_skip() -> None:
    leaderless = _error_message(0, 3, KafkaError.NOT_LEADER_FOR_PARTITION)
    assert not is_record_error(leaderless)
    assert not is_record_error(
        Message(topic="orders", partition=0, offset=-1, error=KafkaError(KafkaError._BAD_MSG))
    )


def test_the_fault_runs_coordinator_partition_is_kafkas() -> None:
    """Kafka's abs(group.hashCode()) % partitions; the pairs are from a broker's log."""
    assert group_offsets_partition("g-orders_360e7e646476", 6) == 5
    assert group_offsets_partition("g-orders_3d94235a446f", 6) == 1


def test_a_missing_topic_is_not_a_reason_to_rejoin() -> None:
    """Readiness reports a missing topic; restarting would not create it."""
    clock = Clock()
    judge = MembershipJudge(TIMEOUT, clock)
    missing = view(clock, {}, partitions=0, state="DEAD")
    assert set(advance(judge, clock, 10 * TIMEOUT, missing, set())) == {Action.NONE}
    assert "topic does not exist" in judge.verdict.reason
