"""The order-state event format and the in-memory window of events (no broker)."""

from __future__ import annotations

import json

import pytest
from coffee_orders_common.order_state import (
    BadEvent,
    OrderIndex,
    State,
    StateEvent,
    identity,
    now_ms,
    parse_event,
    processed_key,
)
from coffee_orders_common.order_tracking import order_id_problem
from coffee_orders_common.validation import Order
from coffee_orders_producer.processing_wait import WAIT_WITHOUT_DEADLINE_S, wait_budget
from hypothesis import given
from hypothesis import strategies as st


def processed(order_id: str, name: str = "Ann", offset: int = 7, age_ms: int = 0) -> StateEvent:
    order = Order(customer_name=name, coffee_type="Latte")
    return StateEvent(
        order_id,
        State.PROCESSED,
        identity(order_id, order),
        now_ms() - age_ms,
        "host/1 member-1",
        "coffee_orders",
        2,
        offset,
    )


def dead_lettered(order_id: str, offset: int = 9) -> StateEvent:
    return StateEvent(
        order_id, State.DEAD_LETTERED, b"", now_ms(), "host/1", "t", 1, offset, "NOT_JSON", "bad"
    )


def test_an_event_survives_its_own_encoding() -> None:
    event = processed("order-1")
    assert parse_event(event.value()) == event
    assert event.key() == f"order-1|{event.identity.hex()}".encode()
    rejected = dead_lettered("order-2")
    assert parse_event(rejected.value()) == rejected
    assert rejected.key() == b"order-2|1:9"


@given(st.text(), st.text())
def test_any_order_id_and_reason_round_trip(order_id: str, reason: str) -> None:
    event = StateEvent(order_id, State.DEAD_LETTERED, b"", 1, "x", "t", 0, 0, "KIND", reason)
    assert parse_event(event.value()) == event


_TEXT = st.text()
_NUMBER = st.integers(min_value=0, max_value=2**63 - 1)


@given(_TEXT, _TEXT, _TEXT, _TEXT, _NUMBER, _NUMBER, _NUMBER, st.sampled_from(list(State)))
def test_an_event_is_byte_for_byte_what_json_dumps_writes(
    order_id: str,
    processed_by: str,
    reason: str,
    topic: str,
    time_ms: int,
    partition: int,
    offset: int,
    state: State,
) -> None:
    """Any text (quotes, backslashes, control and non-ASCII characters, lone surrogates)."""
    event = StateEvent(
        order_id, state, b"\x01" * 16, time_ms, processed_by, topic, partition, offset, "K", reason
    )
    expected = json.dumps(
        {
            "order_id": order_id,
            "state": state.value,
            "identity": event.identity.hex(),
            "time_ms": time_ms,
            "processed_by": processed_by,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "error_kind": "K",
            "reason": reason,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8", "surrogatepass")
    assert event.value() == expected


@given(_TEXT)
def test_a_processed_orders_key_names_its_order_id_and_identity(order_id: str) -> None:
    try:
        event = processed(order_id)
        key = event.key()
    except UnicodeEncodeError:  # a lone surrogate: no order_id the services accept has one
        return
    assert processed_key(key) == (order_id, event.identity)
    assert processed_key(dead_lettered(order_id).key()) is None


@pytest.mark.parametrize(
    "key", [None, b"", b"no-bar", b"id|" + b"g" * 32, b"id|" + b"a" * 30, b"\xff|" + b"a" * 32]
)
def test_a_key_that_names_no_processed_order_is_none(key: bytes | None) -> None:
    assert processed_key(key) is None


def test_an_event_whose_key_names_a_known_processed_order_tells_nothing_new() -> None:
    """What lets the view skip parsing such a record (its own events, read back): the index
    knows the order with that content, and adding the event changes nothing."""
    index = OrderIndex(3600, 100)
    event = processed("order-1")
    assert index.add(event)
    named = processed_key(event.key())
    assert named is not None and index.processed(*named)
    assert not index.add(processed("order-1", offset=99))
    borrowed = processed("order-1", name="Bob")
    named = processed_key(borrowed.key())
    assert named is not None and not index.processed(*named)  # other content: parsed, added
    assert index.add(borrowed)
    assert index.processed(*named)


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"not json",
        b"[1, 2]",
        b"[" * 100_000,
        b'{"order_id": "a"}',
        json.dumps({**json.loads(processed("a").value()), "state": "EATEN"}).encode(),
        json.dumps({**json.loads(processed("a").value()), "time_ms": "soon"}).encode(),
        json.dumps({**json.loads(processed("a").value()), "offset": True}).encode(),
        json.dumps({**json.loads(processed("a").value()), "identity": "zz"}).encode(),
        json.dumps({**json.loads(processed("a").value()), "identity": ""}).encode(),
        json.dumps({**json.loads(processed("a").value()), "time_ms": 10**23}).encode(),
        json.dumps({**json.loads(processed("a").value()), "offset": 2**63}).encode(),
        json.dumps({**json.loads(processed("a").value()), "partition": 2**31}).encode(),
        json.dumps({**json.loads(processed("a").value()), "partition": -1}).encode(),
        json.dumps({**json.loads(processed("a").value()), "time_ms": 1e20}).encode(),
    ],
)
def test_a_record_that_is_not_an_event_is_refused_clearly(value: bytes | None) -> None:
    with pytest.raises(BadEvent, match="not an order-state event"):
        parse_event(value)


def test_a_processed_order_is_known_by_its_id_and_content() -> None:
    index = OrderIndex(3600, 1000)
    event = processed("order-1")
    assert index.add(event)
    assert not index.add(event), "the same event again tells nothing new"
    assert index.processed("order-1", event.identity)
    assert not index.processed("order-2", event.identity)
    assert index.get("order-1", "coffee_orders") == event


def test_an_order_borrowing_an_id_is_another_order_and_never_replaces_the_first() -> None:
    index = OrderIndex(3600, 1000)
    real, forged = processed("order-1", "Ann"), processed("order-1", "Mallory", offset=8)
    index.add(real)
    assert not index.processed("order-1", forged.identity)
    assert index.add(forged)
    assert index.processed("order-1", forged.identity) and index.processed("order-1", real.identity)
    assert index.get("order-1", "coffee_orders") == real


def test_a_processed_copy_outranks_a_dead_lettered_record_never_the_reverse() -> None:
    index = OrderIndex(3600, 1000)
    index.add(dead_lettered("order-1"))
    rejected = index.get("order-1", "t")
    assert rejected is not None and rejected.state is State.DEAD_LETTERED
    assert (rejected.error_kind, rejected.reason) == ("NOT_JSON", "bad")
    copy = processed("order-1")
    assert index.add(copy)
    assert index.get("order-1", "coffee_orders") == copy
    assert not index.add(dead_lettered("order-1", offset=10))
    known = index.get("order-1", "coffee_orders")
    assert known is not None and known.state is State.PROCESSED and known.reason == ""


def test_orders_older_than_the_window_are_forgotten() -> None:
    index = OrderIndex(60, 1000)
    index.add(processed("old", age_ms=61_000))
    index.add(processed("new", age_ms=1_000))
    assert index.get("old", "t") is None and index.get("new", "t") is not None
    assert len(index) == 1 and index.evicted_early == 0


def test_beyond_max_orders_the_oldest_go_first_and_are_counted() -> None:
    index = OrderIndex(3600, 1000)
    for number in range(1500):
        index.add(processed(f"order-{number}"))
    assert len(index) == 1000 and index.evicted_early == 500
    assert index.get("order-499", "t") is None and index.get("order-500", "t") is not None


@pytest.mark.parametrize(
    ("order_id", "problem"),
    [
        ("", "required"),
        ("x" * 129, "at most 128"),
        ("two words", "one word"),
        ("line\nbreak", "one word"),
        ("\u200b", "one word"),
    ],
)
def test_an_order_id_that_cannot_be_one_is_refused(order_id: str, problem: str) -> None:
    found = order_id_problem(order_id)
    assert found is not None and problem in found
    assert order_id_problem("x" * 128) is None


def test_the_wait_for_processing_answers_before_the_callers_deadline() -> None:
    assert wait_budget(None) == WAIT_WITHOUT_DEADLINE_S
    assert wait_budget(30.0) == 29.0
    assert wait_budget(2.0) == pytest.approx(1.8)
    assert wait_budget(0.0) == 0.0


def test_asked_with_its_content_an_order_is_not_answered_by_a_record_borrowing_its_id() -> None:
    index = OrderIndex(3600, 1000)
    forged, real = processed("order-1", "Mallory"), processed("order-1", "Ann", offset=8)
    index.add(forged)
    topic = "coffee_orders"
    assert index.get("order-1", topic, real.identity) is None, "not processed yet"
    index.add(real)
    assert index.get("order-1", topic, real.identity) == real
    assert index.get("order-1", topic) == forged, "by order_id alone: the first one"
