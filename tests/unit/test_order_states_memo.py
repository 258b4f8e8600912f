"""The consumer's memo of records handled before an aborted transaction (no broker): read again
after the rewind, they are recorded, not handled a second time; never for another record at the
same offset."""

from __future__ import annotations

from typing import cast

from coffee_orders_common.order_state import State, StateEvent, identity, now_ms
from coffee_orders_common.order_state_view import OrderStateView
from coffee_orders_common.validation import Order
from coffee_orders_consumer.order_states import UNRECORDED_BATCHES, OrderStates
from coffee_orders_consumer.state_transactions import StateTransactions
from confluent_kafka import Message

VALUE = b'{"customer_name":"Ann","coffee_type":"Latte"}'


def record(offset: int, key: bytes = b"o-1", value: bytes = VALUE, partition: int = 0) -> Message:
    return Message(topic="coffee_orders", partition=partition, offset=offset, key=key, value=value)


def processed_event(message: Message) -> StateEvent:
    order_id = (message.key() or b"").decode()
    return StateEvent(
        order_id,
        State.PROCESSED,
        identity(order_id, Order(customer_name="Ann", coffee_type="Latte")),
        now_ms(),
        "host/1 member-1",
        "coffee_orders",
        message.partition() or 0,
        message.offset() or 0,
    )


BATCH_MAX = 500
MAX_UNRECORDED = UNRECORDED_BATCHES * BATCH_MAX


def new_states() -> OrderStates:
    # Neither the view nor the transactions take part in the memo.
    return OrderStates(cast(OrderStateView, None), cast(StateTransactions, None), BATCH_MAX)


def aborted_batch(states: OrderStates, batch: list[Message]) -> list[StateEvent]:
    states.start_batch()
    events = [processed_event(m) for m in batch]
    states.aborted(events, [], batch)
    return events


def test_a_record_handled_before_an_abort_is_recorded_again_not_redone() -> None:
    states = new_states()
    batch = [record(0), record(1, key=b"o-2")]
    events = aborted_batch(states, batch)
    states.start_batch()
    for message, event in zip(batch, events, strict=True):
        assert states.handled_before(message) == (True, event)
    assert states.batch_events({0: 1}) == events


def test_another_record_at_the_same_offset_is_handled() -> None:
    """The topic was deleted and created again: offset 5 is a new record now."""
    states = new_states()
    aborted_batch(states, [record(5)])
    states.start_batch()
    assert (
        states.handled_before(record(5, value=b'{"customer_name":"Bo","coffee_type":"Mocha"}'))[0]
        is False
    )
    assert states.handled_before(record(5))[0] is False  # the stale entry is gone


def test_a_rejected_record_whose_copy_settled_is_not_copied_again() -> None:
    states = new_states()
    garbage = record(3, key=b"", value=b"\xff not json")
    states.start_batch()
    states.aborted([], [(0, 3)], [garbage])
    states.start_batch()
    assert states.handled_before(garbage) == (True, None)


def test_committed_offsets_and_a_recreated_topic_clear_the_memo() -> None:
    states = new_states()
    aborted_batch(states, [record(0, partition=0), record(0, partition=1)])
    states.committed({0: 1})
    states.start_batch()
    assert states.handled_before(record(0, partition=0))[0] is False
    states.forget([1])
    assert states.handled_before(record(0, partition=1))[0] is False


def test_the_memo_is_bounded() -> None:
    states = new_states()
    aborted_batch(states, [record(offset) for offset in range(MAX_UNRECORDED + 10)])
    states.start_batch()
    assert states.handled_before(record(0))[0] is False  # the oldest went first
    assert states.handled_before(record(MAX_UNRECORDED + 9))[0]
