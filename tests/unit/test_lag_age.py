"""Lag in seconds (coffee_orders_consumer.lag_age): what is known of the oldest unprocessed
record's age in each situation, on a clock of the test's own (no broker)."""

from __future__ import annotations

from coffee_orders_consumer.lag_age import LagAge

T0 = 1_800_000_000.0  # a wall-clock time


def test_unknown_offsets_are_unknown_and_caught_up_is_zero() -> None:
    age = LagAge()
    assert age.seconds(-1, 10, T0) == -1
    assert age.seconds(5, -1, T0) == -1
    age.watermark(10, 10, T0)
    assert age.seconds(10, 10, T0 + 100) == 0


def test_a_record_in_hand_is_aged_by_its_own_timestamp_and_keeps_ageing() -> None:
    age = LagAge()
    age.reading(7, T0 - 600, T0)
    assert age.exact
    assert age.seconds(7, 9, T0) == 600
    assert age.seconds(7, 9, T0 + 30) == 630  # nothing processed: it keeps growing


def test_after_a_batch_the_next_record_is_no_older_than_the_last_processed_one() -> None:
    age = LagAge()
    age.reading(0, T0 - 120, T0)
    age.processed(500, T0 - 100, T0 + 1)  # a backlog: records up to 499 done
    age.watermark(500, 2000, T0 + 1)
    assert age.seconds(500, 2000, T0 + 1) == 101  # at most as old as record 499
    age.reading(500, T0 - 99.5, T0 + 1.01)  # then exact once read
    assert age.seconds(500, 2000, T0 + 2) == 101.5


def test_a_record_written_after_the_partition_was_caught_up_is_aged_from_then() -> None:
    age = LagAge()
    age.processed(10, T0 - 3600, T0)  # the last record is an hour old
    age.watermark(10, 10, T0 + 1)  # caught up at T0 + 1
    age.watermark(10, 11, T0 + 2)  # a new record, not processed (the loop is stuck)
    assert age.seconds(10, 11, T0 + 2) == 1  # not an hour
    assert age.seconds(10, 11, T0 + 62) == 61


def test_a_backlog_found_at_assignment_counts_from_when_it_was_seen_until_read() -> None:
    age = LagAge()
    age.watermark(0, 50, T0)  # nothing known of record 0's time: a lower bound
    assert age.seconds(0, 50, T0 + 5) == 5
    age.reading(0, T0 - 3600, T0 + 5)
    assert age.seconds(0, 50, T0 + 5) == 3605


def test_timestamps_from_a_clock_ahead_count_as_now() -> None:
    age = LagAge()
    age.reading(3, T0 + 3600, T0)
    assert age.seconds(3, 4, T0) == 0
    age.processed(4, T0 + 3600, T0)  # not a bound that stays in the future
    age.watermark(4, 5, T0 + 10)
    assert age.seconds(4, 5, T0 + 10) == 10


def test_reading_again_from_further_back_forgets_what_was_known() -> None:
    age = LagAge()
    age.processed(100, T0, T0)
    age.watermark(100, 100, T0 + 50)
    age.reading(40, None, T0 + 60)  # a rejoin reads on from an older committed offset
    assert age.not_before is None
    age.watermark(40, 100, T0 + 60)
    assert age.seconds(40, 100, T0 + 70) == 10  # from when it was seen, not from T0 + 50
