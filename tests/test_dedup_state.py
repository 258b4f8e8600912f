"""The dedup window and its state file: identity, restarts, torn and corrupt files. No Kafka."""

from __future__ import annotations

from pathlib import Path

import pytest
from coffee_orders_common.validation import Order
from coffee_orders_consumer import state_file
from coffee_orders_consumer.decoder import DecodedOrder
from coffee_orders_consumer.dedup import ProcessedOrders, identity
from hypothesis import given, settings
from hypothesis import strategies as st

Problems = list[tuple[int, str]]


def _order(order_id: str, name: str = "Ann", coffee: str = "Latte") -> DecodedOrder:
    return DecodedOrder(Order(name, coffee), order_id)


def _orders(state: Path, problems: Problems, window: int = 1000) -> ProcessedOrders:
    processed = ProcessedOrders(
        state, "group/one", "orders", window, lambda p, text: problems.append((p, text))
    )
    processed.open(0)
    return processed


def _file(state: Path, partition: int = 0) -> Path:
    return state / "group_one" / "orders" / f"{partition}.seen"


def _process(processed: ProcessedOrders, *batches: list[DecodedOrder]) -> None:
    """Add each batch and flush it, as the consume loop does."""
    for batch in batches:
        for order in batch:
            if not processed.seen(0, order):
                processed.add(0, order)
        processed.flush()


def test_a_retry_is_the_same_order_and_a_borrowed_order_id_is_not() -> None:
    original = _order("id-1", "Ann", "Latte")
    assert identity(original) == identity(_order("id-1", "Ann", "Latte"))
    assert identity(original) != identity(_order("id-1", "Mallory", "Latte"))
    assert identity(original) != identity(_order("id-1", "Ann", "Mocha"))
    assert identity(original) != identity(_order("id-2", "Ann", "Latte"))
    # Lengths are part of the digest: moving characters between the parts changes it.
    assert identity(_order("1:a", "b", "c")) != identity(_order("1", ":ab", "c"))
    assert identity(_order("ab", "c", "d")) != identity(_order("a", "bc", "d"))
    assert len(identity(original)) == state_file.DIGEST_BYTES


def test_a_forged_record_with_a_future_order_id_does_not_suppress_that_order(
    tmp_path: Path,
) -> None:
    problems: Problems = []
    processed = _orders(tmp_path, problems)
    forged, real = _order("future-id", "Mallory", "Fake"), _order("future-id", "Ann", "Latte")
    _process(processed, [forged])
    assert not processed.seen(0, real)
    _process(processed, [real])
    assert processed.seen(0, real) and processed.seen(0, forged)
    processed.close_all()
    again = _orders(tmp_path, problems)  # after a restart too
    assert again.seen(0, real) and again.seen(0, forged)
    assert not again.seen(0, _order("future-id", "Eve", "Latte"))
    assert problems == []


def test_order_ids_with_newlines_cannot_split_into_other_ids_after_a_restart(
    tmp_path: Path,
) -> None:
    problems: Problems = []
    processed = _orders(tmp_path, problems)
    hostile = _order("x\n2026-01-01T00:00:00.000+00:00 later-order\r\n\u2028\x00")
    _process(processed, [hostile])
    processed.close_all()
    again = _orders(tmp_path, problems)
    assert again.seen(0, hostile)
    for piece in ("x", "2026-01-01T00:00:00.000+00:00 later-order", "later-order", ""):
        assert not again.seen(0, _order(piece))
    assert problems == []


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.text(), min_size=1, max_size=30, unique=True),
    name=st.text(min_size=1, max_size=20),
)
def test_any_order_ids_come_back_exactly_after_a_restart(
    tmp_path_factory: pytest.TempPathFactory, ids: list[str], name: str
) -> None:
    state = tmp_path_factory.mktemp("state")
    problems: Problems = []
    processed = _orders(state, problems)
    _process(processed, [_order(i, name) for i in ids[::2]], [_order(i, name) for i in ids[1::2]])
    processed.close_all()
    again = _orders(state, problems)
    assert all(again.seen(0, _order(i, name)) for i in ids)
    assert not any(again.seen(0, _order(i, name + "!")) for i in ids)
    assert problems == []


def test_the_window_stays_bounded_and_keeps_the_newest(tmp_path: Path) -> None:
    problems: Problems = []
    processed = _orders(tmp_path, problems, window=10)
    orders = [_order(f"id-{i}") for i in range(100)]
    _process(processed, *([order] for order in orders))
    size = _file(tmp_path).stat().st_size
    frame = state_file.frames([identity(orders[0])])
    assert size <= len(state_file.MAGIC) + 21 * len(frame)  # compacted at twice the window
    processed.close_all()
    again = _orders(tmp_path, problems, window=10)
    assert [again.seen(0, order) for order in orders[-11:]] == [False] + [True] * 10
    assert problems == []


def test_a_frame_holds_at_most_max_frame_entries() -> None:
    digests = [bytes([i % 256]) * state_file.DIGEST_BYTES for i in range(10_000)]
    data = state_file.MAGIC + state_file.frames(digests)
    parsed = state_file.parse(data)
    assert parsed.problem is None and parsed.digests == digests
    assert len(data) == len(state_file.MAGIC) + 3 * 8 + 10_000 * state_file.DIGEST_BYTES


def _two_frames(state: Path) -> tuple[list[DecodedOrder], list[DecodedOrder]]:
    problems: Problems = []
    processed = _orders(state, problems)
    first, second = [_order(f"a-{i}") for i in range(5)], [_order(f"b-{i}") for i in range(5)]
    _process(processed, first, second)
    processed.close_all()
    assert problems == []
    return first, second


def _aside(state: Path, label: str) -> list[Path]:
    return sorted(_file(state).parent.glob(f"0.seen.{label}-*"))


@pytest.mark.parametrize("cut", [1, 7, 8, 9, 8 + 5 * state_file.DIGEST_BYTES - 1])
def test_a_torn_last_write_keeps_the_frames_before_it(tmp_path: Path, cut: int) -> None:
    """A crash or power loss in the middle of the last batch's write."""
    first, second = _two_frames(tmp_path)
    whole = _file(tmp_path).read_bytes()
    _file(tmp_path).write_bytes(whole[:-cut])
    problems: Problems = []
    processed = _orders(tmp_path, problems)
    assert all(processed.seen(0, order) for order in first)
    assert not any(processed.seen(0, order) for order in second)  # processed again: at-least-once
    ((partition, text),) = problems
    assert partition == 0 and "incomplete write" in text and "kept the 5 entries" in text
    (aside,) = _aside(tmp_path, "torn")
    assert aside.read_bytes() == whole[:-cut]  # set aside as it was, not deleted
    processed.close_all()
    problems.clear()
    assert all(_orders(tmp_path, problems).seen(0, order) for order in first)
    assert problems == []  # the rewritten file is sound


def test_a_zero_filled_tail_is_an_unwritten_last_write(tmp_path: Path) -> None:
    first, _ = _two_frames(tmp_path)
    with _file(tmp_path).open("ab") as out:
        out.write(b"\0" * 4096)
    problems: Problems = []
    processed = _orders(tmp_path, problems)
    assert all(processed.seen(0, order) for order in first)
    ((_, text),) = problems
    assert "4096 zero bytes" in text and _aside(tmp_path, "torn")


def test_a_damaged_last_frame_is_torn_but_a_damaged_earlier_one_is_corruption(
    tmp_path: Path,
) -> None:
    first, second = _two_frames(tmp_path)
    whole = bytearray(_file(tmp_path).read_bytes())
    whole[-3] ^= 0xFF  # inside the last frame's digests
    _file(tmp_path).write_bytes(bytes(whole))
    problems: Problems = []
    processed = _orders(tmp_path, problems)
    assert all(processed.seen(0, order) for order in first)
    assert "damaged last write" in problems[0][1]
    processed.close_all()

    _process(again := _orders(tmp_path, problems), second)
    again.close_all()
    whole = bytearray(_file(tmp_path).read_bytes())
    whole[len(state_file.MAGIC) + 8] ^= 0x01  # the first frame, with another one after it
    _file(tmp_path).write_bytes(bytes(whole))
    problems.clear()
    processed = _orders(tmp_path, problems)
    assert not any(processed.seen(0, order) for order in first + second)  # nothing trusted
    ((_, text),) = problems
    assert "is corrupt: checksum mismatch" in text and "nothing in it is trusted" in text
    assert _aside(tmp_path, "corrupt")


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda data: b"garbage\n" + data, "wrong header"),
        (lambda data: data.replace(b"v1", b"v9", 1), "wrong header"),
        (lambda data: b"first-order-id\nsecond-order-id\n", "wrong header"),
        (
            lambda data: data[: len(state_file.MAGIC)] + b"\xff\xff\xff\xff" + data[-40:],
            "impossible entry count",
        ),
    ],
    ids=["text before it", "another version", "the old text format", "a wild count"],
)
def test_a_corrupt_file_is_reported_set_aside_and_not_trusted(
    tmp_path: Path, damage: object, expected: str
) -> None:
    first, second = _two_frames(tmp_path)
    damaged = damage(_file(tmp_path).read_bytes())  # type: ignore[operator]
    _file(tmp_path).write_bytes(damaged)
    problems: Problems = []
    processed = _orders(tmp_path, problems)
    assert not any(processed.seen(0, order) for order in first + second)
    ((partition, text),) = problems
    assert partition == 0 and expected in text and "set aside as 0.seen.corrupt-" in text
    (aside,) = _aside(tmp_path, "corrupt")
    assert aside.read_bytes() == damaged
    _process(processed, first)  # the consumer goes on, with a sound new file
    processed.close_all()
    problems.clear()
    assert all(_orders(tmp_path, problems).seen(0, order) for order in first)
    assert problems == []


def test_an_empty_file_or_a_cut_header(tmp_path: Path) -> None:
    _file(tmp_path).parent.mkdir(parents=True)
    _file(tmp_path).write_bytes(b"")
    problems: Problems = []
    _orders(tmp_path, problems).close_all()
    assert problems == []  # created just before a crash: nothing was lost
    _file(tmp_path).write_bytes(state_file.MAGIC[:5])
    _orders(tmp_path, problems).close_all()
    ((_, text),) = problems
    assert "incomplete header" in text and _aside(tmp_path, "torn")


def test_an_unusable_state_dir_is_reported_and_heals_when_it_is_usable_again(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "group_one"
    blocker.write_text("a file where the state directory belongs")
    problems: Problems = []
    processed = _orders(tmp_path, problems)
    order = _order("id-1")
    _process(processed, [order])
    assert processed.seen(0, order)  # kept in memory meanwhile
    assert len(problems) == 2 and all("kept in memory" in text for _, text in problems)
    _process(processed, [_order("id-2")])
    assert len(problems) == 2  # the same failure is reported once, not per batch
    blocker.unlink()
    _process(processed, [_order("id-3")])
    processed.close_all()
    again = _orders(tmp_path, problems)
    assert all(again.seen(0, _order(f"id-{i}")) for i in (1, 2, 3))
    assert len(problems) == 2


def test_the_old_text_state_file_is_ignored(tmp_path: Path) -> None:
    old = _file(tmp_path).with_suffix(".ids")
    old.parent.mkdir(parents=True)
    old.write_text("id-1\n")
    problems: Problems = []
    assert not _orders(tmp_path, problems).seen(0, _order("id-1"))
    assert problems == [] and old.read_text() == "id-1\n"


def test_dedup_off_keeps_nothing(tmp_path: Path) -> None:
    problems: Problems = []
    processed = ProcessedOrders(tmp_path, "g", "t", 0, lambda p, t: problems.append((p, t)))
    processed.open(0)
    processed.add(0, _order("id-1"))
    processed.flush()
    assert not processed.seen(0, _order("id-1")) and not (tmp_path / "g").exists()
