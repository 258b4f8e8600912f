"""``coffee-orders order --wait``, ``get`` and ``watch`` against fixed answers
(tests/unit/fake_services.py): the lines, the JSON, the exit codes, the escaping. No broker.

The JSON is also compared byte for byte with what grpcurl -emit-defaults prints for the same
call when grpcurl is installed (``make tools``; tests/integration/test_cli_output.py does the
same against the real services).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from coffee.orders.v1 import order_tracking_pb2
from coffee_orders_cli.json_output import message_dict
from coffee_orders_cli.main import main

from tests.unit import fake_services as fake

ROOT = Path(__file__).resolve().parents[2]
PLACED_LINE = f"order {{}} placed: {fake.TOPIC} partition 1 offset 41"
CONTROL = {chr(code) for code in range(0x20)} | {"\x7f", "\u2028", "\u202e"}


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with fake.fake_services() as address:
        yield address


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Lines show times in local time: UTC here, whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def grpcurl(target: str, method: str, body: Mapping[str, object]) -> str:
    """What grpcurl -emit-defaults prints on stdout for the call (the test skips without it)."""
    found = shutil.which("grpcurl") or shutil.which("grpcurl", path=str(ROOT / ".tools" / "bin"))
    if found is None:
        pytest.skip("grpcurl is not installed (make tools)")
    result = subprocess.run(
        [found, "-plaintext", "-emit-defaults", "-d", json.dumps(body), target, method],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout


def test_order_waits_for_processing(capsys: pytest.CaptureFixture[str], target: str) -> None:
    order = ("order", "--customer", "Ann", "--coffee", "Latte", "--target", target)
    code, out, err = run(capsys, *order, "--request-id", "c-1", "--wait", "processed")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        PLACED_LINE.format("c-1"),
        "order c-1 processed at 2025-12-06T05:46:40.123+00:00 by "
        f"{fake.MEMBER}: {fake.TOPIC} partition 1 offset 41",
    ]
    code, out, err = run(capsys, *order, "--request-id", "c-1", "--wait", "processed", "--json")
    assert code == 0
    assert json.loads(out) == message_dict(fake.placed_reply("c-1", fake.processed("c-1")))
    assert json.loads(out)["processing"]["time"] == "2025-12-06T05:46:40.123456789Z"
    body = {"customer_name": "Ann", "coffee_type": "Latte", "request_id": "c-1"}
    method = "coffee.orders.v1.OrderService/PlaceOrder"
    assert out == grpcurl(target, method, {**body, "wait_for": "WAIT_FOR_PROCESSED"})


def test_order_without_wait_is_as_before(capsys: pytest.CaptureFixture[str], target: str) -> None:
    order = ("order", "--customer", "Late", "--coffee", "Latte", "--target", target)
    code, out, _ = run(capsys, *order, "--request-id", "c-2")
    assert (code, out) == (0, PLACED_LINE.format("c-2") + "\n")
    code, out, _ = run(capsys, *order, "--request-id", "c-2", "--wait", "confirmed", "--json")
    assert code == 0 and json.loads(out)["processing"] is None  # what grpcurl prints: null
    body = {"customer_name": "Late", "coffee_type": "Latte", "request_id": "c-2"}
    assert out == grpcurl(target, "coffee.orders.v1.OrderService/PlaceOrder", body)


def test_order_past_its_deadline_says_where_it_is_and_exits_3(
    capsys: pytest.CaptureFixture[str], target: str
) -> None:
    order = ("order", "--customer", "Late", "--coffee", "Latte", "--target", target)
    code, out, err = run(capsys, *order, "--request-id", "c-3", "--wait", "processed")
    assert code == 3
    assert out.splitlines() == [
        PLACED_LINE.format("c-3"),
        f"order c-3 pending: {fake.TOPIC} partition 1 offset 41, not processed yet",
    ]
    assert err.splitlines() == [
        "coffee-orders order: DEADLINE_EXCEEDED: order placed, but its processing not yet seen "
        "before the deadline (follow it: coffee-orders watch c-3 --partition 1 --offset 41)"
    ]
    code, out, _ = run(capsys, *order, "--request-id", "c-3", "--wait", "processed", "--json")
    assert code == 3  # the PlaceOrderResponse of the status details, for scripts
    assert json.loads(out) == message_dict(fake.placed_reply("c-3", fake.pending("c-3")))


def test_a_dead_lettered_order_exits_4(capsys: pytest.CaptureFixture[str], target: str) -> None:
    order = ("order", "--customer", "Dead", "--coffee", "Latte", "--target", target)
    code, out, err = run(capsys, *order, "--request-id", "c-4", "--wait", "processed")
    assert code == 4
    assert out.splitlines() == [
        PLACED_LINE.format("c-4"),
        "order c-4 dead-lettered at 2025-12-06T05:46:40.123+00:00: "
        f"{fake.TOPIC} partition 1 offset 41: not_json: value is not JSON",
    ]
    assert err == (
        "coffee-orders order: FAILED_PRECONDITION: order dead-lettered: NOT_JSON: "
        "value is not JSON\n"
    )


def test_a_producer_ignoring_wait_exits_1(capsys: pytest.CaptureFixture[str], target: str) -> None:
    order = ("order", "--customer", "Old", "--coffee", "Latte", "--target", target)
    code, out, err = run(capsys, *order, "--request-id", "c-5", "--wait", "processed")
    assert code == 1 and out == PLACED_LINE.format("c-5") + "\n"
    assert err.startswith("coffee-orders order: UNIMPLEMENTED: the producer answered once Kafka")
    code, out, err = run(
        capsys, "order", "--customer", " ", "--coffee", "Latte", "--target", target
    )
    assert (code, out) == (1, "")
    assert err == (
        "coffee-orders order: INVALID_ARGUMENT: invalid order: customer_name must not be blank\n"
    )


@pytest.mark.parametrize(
    ("order_id", "placement", "line"),
    [
        (
            fake.PROCESSED_ID,
            (),
            f"order {fake.PROCESSED_ID} processed at 2025-12-06T05:46:40.123+00:00 by "
            f"{fake.MEMBER}: {fake.TOPIC} partition 1 offset 41",
        ),
        (
            fake.DEAD_ID,
            (),
            f"order {fake.DEAD_ID} dead-lettered at 2025-12-06T05:46:40.123+00:00: "
            f"{fake.TOPIC} partition 1 offset 41: not_json: value is not JSON",
        ),
        (
            fake.PENDING_ID,
            ("--partition", "1", "--offset", "41"),
            f"order {fake.PENDING_ID} pending: {fake.TOPIC} partition 1 offset 41, "
            "not processed yet",
        ),
        (
            fake.UNKNOWN_ID,
            (),
            f"order {fake.UNKNOWN_ID} not found: never seen within the tracking window",
        ),
    ],
    ids=["processed", "dead-lettered", "pending", "not-found"],
)
def test_get_prints_each_state_and_exits_0(
    capsys: pytest.CaptureFixture[str],
    target: str,
    order_id: str,
    placement: tuple[str, ...],
    line: str,
) -> None:
    code, out, err = run(capsys, "get", order_id, *placement, "--target", target)
    assert (code, out, err) == (0, line + "\n", "")
    code, out, _ = run(capsys, "get", order_id, *placement, "--target", target, "--json")
    assert code == 0
    assert set(json.loads(out)) == {"order"}
    assert set(json.loads(out)["order"]) == {
        field.name for field in order_tracking_pb2.OrderStatus.DESCRIPTOR.fields
    }
    body: dict[str, object] = {"order_id": order_id}
    if placement:
        body["placement"] = {"partition": 1, "offset": "41"}
    assert out == grpcurl(target, "coffee.orders.v1.OrderTrackingService/GetOrder", body)


def test_get_failures(
    capsys: pytest.CaptureFixture[str], target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, "get", " ", "--target", target)
    assert (code, out) == (1, "")
    assert err == f"coffee-orders get: {target}: INVALID_ARGUMENT: order_id must not be blank\n"
    with pytest.raises(SystemExit) as usage:
        main(["get", fake.PENDING_ID, "--partition", "1", "--target", target])
    assert usage.value.code == 2
    assert "--partition and --offset go together" in capsys.readouterr().err
    monkeypatch.setenv("COFFEE_PRODUCER_TARGET", target)  # the default target, as for order
    assert run(capsys, "get", fake.DEAD_ID)[0] == 0


def test_watch_follows_to_processed_and_exits_0(
    capsys: pytest.CaptureFixture[str], target: str
) -> None:
    code, out, err = run(capsys, "watch", fake.PROCESSED_ID, "--target", target)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"order {fake.PROCESSED_ID} pending: {fake.TOPIC} partition 1 offset 41, not processed yet",
        f"order {fake.PROCESSED_ID} processed at 2025-12-06T05:46:40.123+00:00 by "
        f"{fake.MEMBER}: {fake.TOPIC} partition 1 offset 41",
    ]
    code, out, _ = run(capsys, "watch", fake.PROCESSED_ID, "--target", target, "--json")
    assert code == 0
    replies = [message_dict(order_tracking_pb2.WatchOrderResponse(order=state))
               for state in fake.ORDERS[fake.PROCESSED_ID]]  # fmt: skip
    assert out == "".join(json.dumps(reply, indent=2) + "\n" for reply in replies)
    method = "coffee.orders.v1.OrderTrackingService/WatchOrder"
    assert out == grpcurl(target, method, {"order_id": fake.PROCESSED_ID})


def test_watch_of_a_dead_lettered_order_exits_4(
    capsys: pytest.CaptureFixture[str], target: str
) -> None:
    code, out, err = run(capsys, "watch", fake.DEAD_ID, "--target", target)
    assert (code, err) == (4, "")
    assert out.splitlines()[-1].startswith(f"order {fake.DEAD_ID} dead-lettered at ")


def test_watch_past_its_deadline_exits_3(capsys: pytest.CaptureFixture[str], target: str) -> None:
    watch = ("watch", fake.PENDING_ID, "--partition", "1", "--offset", "41", "--target", target)
    code, out, err = run(capsys, *watch, "--timeout", "1")
    assert code == 3
    assert out.splitlines() == [
        f"order {fake.PENDING_ID} pending: {fake.TOPIC} partition 1 offset 41, not processed yet"
    ]
    # The fake ends the stream just before the deadline, as the server does; on a busy machine
    # the client's own deadline may come first: the same code, another message.
    assert err.startswith(f"coffee-orders watch: {target}: DEADLINE_EXCEEDED: "), err
    assert len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as usage:
        main([*watch, "--timeout", "0"])
    assert usage.value.code == 2


def test_watch_of_an_unreachable_target_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.processes import free_port_pair

    nowhere = f"127.0.0.1:{free_port_pair()}"
    code, out, err = run(capsys, "watch", fake.PROCESSED_ID, "--target", nowhere, "--timeout", "5")
    assert (code, out) == (1, "")
    assert err.startswith(f"coffee-orders watch: {nowhere}: UNAVAILABLE: ")
    assert len(err.splitlines()) == 1


def test_text_a_record_chose_is_escaped_in_lines_not_in_json(
    capsys: pytest.CaptureFixture[str], target: str
) -> None:
    code, out, _ = run(capsys, "get", fake.HOSTILE_ID, "--target", target)
    assert code == 0
    assert out == (
        "order evil\\x1b[2J\\nid\\u202e dead-lettered at 2025-12-06T05:46:40.123+00:00: "
        f"{fake.TOPIC} partition 1 offset 41: not_json: bad\\r\\nreason \\x07\\u2028x\\\\y\n"
    )
    code, out, _ = run(capsys, "watch", fake.HOSTILE_ID, "--target", target)
    assert code == 4 and not CONTROL.intersection(out.removesuffix("\n"))
    code, out, _ = run(capsys, "get", fake.HOSTILE_ID, "--target", target, "--json")
    assert json.loads(out)["order"]["order_id"] == fake.HOSTILE_ID  # JSON escapes by itself
    code, out, _ = run(capsys, "get", "x\x1b]0;title\x07", "--target", target)  # the caller's
    assert (code, out) == (0, "order x\\x1b]0;title\\x07 not found: never seen within the "
                               "tracking window\n")  # fmt: skip
