"""What the CLI prints: ``--json`` equals ``grpcurl -emit-defaults``; ``status --watch`` says what
it watches and stops cleanly on Ctrl-C at any moment; ``get`` and ``watch`` answer the same from
the producer and the consumer, and ``watch`` exits by the order's state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from coffee_orders_devtools.processes import CLI, RunningCommand
from coffee_orders_devtools.waiting import wait_until
from coffee_orders_localkafka import LocalKafka

from tests.support.kafka_io import Record, produce_all, produce_records
from tests.support.processes import free_port_pair
from tests.support.services import (
    running_pair,
)
from tests.support.tools import run_tool, tool

pytestmark = pytest.mark.kafka
# 130 is main's code for Ctrl-C. While modules load, CPython itself may end the process with
# SIGINT instead (before its handler is set up, or when the KeyboardInterrupt first surfaced in
# code that an extension module ran at import): just as quiet, as shells report the same way.
INTERRUPTED = {130, -signal.SIGINT}


def json_values(text: str) -> list[Any]:
    """Every JSON value in ``text``, one after another (grpcurl prints a stream that way)."""
    decoder, values, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        values.append(value)
    return values


async def test_every_json_the_cli_prints_is_what_grpcurl_emit_defaults_prints(
    kafka_broker: LocalKafka, fresh_topic: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    async with (
        running_pair(bootstrap, fresh_topic) as (producer, consumer),
    ):
        await asyncio.to_thread(_compare_all, bootstrap, fresh_topic, producer, consumer, tmp_path)


def _compare_all(bootstrap: str, topic: str, producer: str, consumer: str, tmp: Path) -> None:
    request_id = f"json-{uuid.uuid4()}"
    body = {"customer_name": "Zoë", "coffee_type": "Latte", "request_id": request_id}
    ours = RunningCommand.run_cli(
        "order", "--customer", "Zoë", "--coffee", "Latte", "--request-id", request_id,
        "--target", producer, "--json",
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    theirs = run_tool("grpcurl", "-plaintext", "-emit-defaults", "-d", json.dumps(body), producer,
                      "coffee.orders.v1.OrderService/PlaceOrder")  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    assert ours.stdout == theirs.stdout  # the repeat is answered with the same reply
    placed = json.loads(ours.stdout)
    assert isinstance(placed["offset"], str) and placed["timestamp"].endswith("Z"), placed

    # Partition 0, zero counters and an unset last_order_time (null) are printed too.
    def same_status() -> dict[str, Any] | None:
        ours = RunningCommand.run_cli("status", "--target", consumer, "--json")
        theirs = run_tool("grpcurl", "-plaintext", "-emit-defaults", consumer,
                          "coffee.orders.v1.ConsumerStatusService/GetStatus")  # fmt: skip
        status: dict[str, Any] = json.loads(ours.stdout) if ours.returncode == 0 else {}
        assigned = len(status.get("partitions", [])) == 3
        return status if assigned and ours.stdout == theirs.stdout else None

    status = wait_until(same_status, 60, "status --json equal to grpcurl's, 3 partitions")
    assert [p["partition"] for p in status["partitions"]] == [0, 1, 2]
    assert status["counters"]["duplicates_skipped"] == "0", status

    cli = RunningCommand(tmp / "watch.log", "status", "--watch", "--json", "--target", consumer)
    grpcurl = RunningCommand(
        tmp / "grpcurl-watch.log",
        *("-plaintext", "-emit-defaults", consumer),
        "coffee.orders.v1.ConsumerStatusService/WatchErrors",
        program=[tool("grpcurl")],
    )
    try:
        cli.wait_for_output("watching new errors")

        def watched_by_both() -> tuple[dict[str, Any], dict[str, Any]] | None:
            # grpcurl says nothing when it is subscribed: send until both streamed the same error.
            produce_all(bootstrap, topic, [f"not json {uuid.uuid4()}".encode()])
            seen = {_offset_of(reply): reply for reply in json_values(_json_part(cli.output()))}
            for reply in json_values(grpcurl.output()):
                if _offset_of(reply) in seen:
                    return seen[_offset_of(reply)], reply
            return None

        ours_reply, theirs_reply = wait_until(watched_by_both, 60, "one error on both streams")
    finally:
        cli.stop(signal.SIGINT)
        grpcurl.stop(signal.SIGINT)
    assert ours_reply == theirs_reply
    assert set(ours_reply) == {"error", "dropped"} and ours_reply["dropped"] == "0"


async def test_order_tracking_json_is_what_grpcurl_prints_from_both_services(
    kafka_broker: LocalKafka, fresh_topic: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    async with (
        running_pair(bootstrap, fresh_topic) as (producer, consumer),
    ):
        await asyncio.to_thread(_compare_tracking, bootstrap, fresh_topic, producer, consumer)


def _grpcurl(target: str, method: str, body: dict[str, Any]) -> str:
    result = run_tool("grpcurl", "-plaintext", "-emit-defaults", "-d", json.dumps(body), target,
                      f"coffee.orders.v1.{method}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def _compare_tracking(bootstrap: str, topic: str, producer: str, consumer: str) -> None:
    request_id = f"track-{uuid.uuid4()}"
    ours = RunningCommand.run_cli(
        "order", "--customer", "Zoë", "--coffee", "Latte", "--request-id", request_id,
        "--target", producer, "--wait", "processed", "--timeout", "60", "--json",
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    body = {"customer_name": "Zoë", "coffee_type": "Latte", "request_id": request_id,
            "wait_for": "WAIT_FOR_PROCESSED"}  # fmt: skip
    assert ours.stdout == _grpcurl(producer, "OrderService/PlaceOrder", body)  # the repeat
    placed = json.loads(ours.stdout)
    processing = placed["processing"]
    assert processing["state"] == "ORDER_STATE_PROCESSED", placed
    assert (processing["partition"], processing["offset"]) == (
        placed["partition"],
        placed["offset"],
    )

    order_id = placed["order_id"]
    where = ("--partition", str(placed["partition"]), "--offset", placed["offset"])
    placement = {"partition": placed["partition"], "offset": placed["offset"]}
    asked = {"order_id": order_id, "placement": placement}
    for target in (producer, consumer):
        got = RunningCommand.run_cli("get", order_id, *where, "--target", target, "--json")
        assert got.returncode == 0, got.stderr
        assert got.stdout == _grpcurl(target, "OrderTrackingService/GetOrder", asked)
        assert json.loads(got.stdout) == {"order": processing}  # the same from each service
        watched = RunningCommand.run_cli("watch", order_id, "--target", target, "--json")
        assert watched.returncode == 0, watched.stderr
        stream = _grpcurl(target, "OrderTrackingService/WatchOrder", {"order_id": order_id})
        assert watched.stdout == stream
        assert json_values(watched.stdout) == [{"order": processing}]  # final already: one

        line = RunningCommand.run_cli("get", order_id, "--target", target)
        assert line.returncode == 0, line.stderr
        assert line.stdout.startswith(f"order {order_id} processed at "), line.stdout
        assert line.stdout.endswith(f": {topic} partition {placed['partition']} offset "
                                    f"{placed['offset']}\n")  # fmt: skip

    # Not found is an answer (exit 0); a watch of it runs into its deadline (exit 3).
    unknown = str(uuid.uuid4())
    got = RunningCommand.run_cli("get", unknown, "--target", consumer)
    assert (got.returncode, got.stdout) == (
        0,
        f"order {unknown} not found: never seen within the tracking window\n",
    )
    late = RunningCommand.run_cli("watch", unknown, "--target", producer, "--timeout", "2")
    assert late.returncode == 3, late.stderr
    assert late.stdout.splitlines() == [
        f"order {unknown} not found: never seen within the tracking window"
    ]
    assert late.stderr.startswith(f"coffee-orders watch: {producer}: DEADLINE_EXCEEDED: ")

    # A record the consumer rejects, with an order_id: watch ends with exit 4.
    bad = str(uuid.uuid4())
    record: Record = (bad.encode(), b"not json", [("order_id", bad)])
    produce_records(bootstrap, topic, [record])
    for target in (producer, consumer):
        dead = RunningCommand.run_cli("watch", bad, "--target", target, "--timeout", "60")
        assert dead.returncode == 4, (dead.stdout, dead.stderr)
        assert f"order {bad} dead-lettered at " in dead.stdout.splitlines()[-1], dead.stdout
        assert ": not_json: " in dead.stdout.splitlines()[-1], dead.stdout


def _offset_of(reply: dict[str, Any]) -> tuple[int, str]:
    return reply["error"]["partition"], reply["error"]["offset"]


def _json_part(output: str) -> str:
    """The CLI's stdout lines (JSON) without its "watching ..." line (stderr, same log here)."""
    return "\n".join(line for line in output.splitlines() if line.startswith("{"))


@pytest.fixture
def consumer_process(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> Iterator[str]:
    """A consumer daemon of its own (a real process) on ``fresh_topic``; yields its address."""
    port = free_port_pair()
    show_logs_on_failure(tmp_path / "consumer.log")
    consumer = RunningCommand(
        tmp_path / "consumer.log",
        *("consumer", "--listen", f"127.0.0.1:{port}", "--topic", fresh_topic),
        env={
            "KAFKA_BROKERS": kafka_broker.bootstrap_servers,
            "KAFKA_GROUP_ID": f"g-{fresh_topic}",
        },
    )
    try:
        consumer.wait_for_output("consumer status server listening")
        yield f"127.0.0.1:{port}"
    finally:
        consumer.stop()


def _grpc_loaded(command: RunningCommand) -> bool:
    """The CLI is importing its modules: grpc's extension is mapped, "watching" not printed."""
    try:
        maps = Path(f"/proc/{command.process.pid}/maps").read_text()
    except OSError:
        return False
    return "cygrpc" in maps


def test_status_watch_says_what_it_watches_and_stops_on_ctrl_c_at_any_moment(
    kafka_broker: LocalKafka, fresh_topic: str, tmp_path: Path, consumer_process: str
) -> None:
    """SIGINT right after the start, during the imports, while waiting, after an error: each time
    the command ends within the bound, without a traceback; once it watches, with exit code 130."""
    moments: dict[str, Callable[[RunningCommand], object]] = {
        "at once": lambda command: True,
        "importing": lambda command: wait_until(lambda: _grpc_loaded(command), 30, "grpc loaded"),
        "watching": lambda command: command.wait_for_output("watching new errors"),
        "after an error": lambda command: _after_an_error(command, kafka_broker, fresh_topic),
    }
    outcomes = []
    for round_number in range(3):
        for moment, reach in moments.items():
            log = tmp_path / f"watch-{moment.replace(' ', '-')}-{round_number}.log"
            command = RunningCommand(log, "status", "--watch", "--target", consumer_process)
            try:
                reach(command)
            finally:
                code = command.stop(signal.SIGINT, timeout=20)
            output = command.output()
            outcomes.append((moment, code))
            assert "Traceback" not in output, f"{moment}: {output}"
            allowed = INTERRUPTED if moment in ("at once", "importing") else {130}
            assert code in allowed, f"{moment}: exit {code}\n{output}"
            if moment == "watching":
                assert (
                    f"watching new errors of consumer group g-{fresh_topic} on {fresh_topic} at "
                    f"{consumer_process} (" in output
                ), output
    print(f"figures: SIGINT outcomes {outcomes}")


def _after_an_error(command: RunningCommand, broker: LocalKafka, topic: str) -> None:
    command.wait_for_output("watching new errors")
    produce_all(broker.bootstrap_servers, topic, [b"[1, 2]"])  # subscribed: this one shows
    command.wait_for_output(rf"not_an_object {topic}/\d+@\d+: ")


def test_status_watch_of_an_unreachable_consumer_is_one_line() -> None:
    port = free_port_pair()
    result = RunningCommand.run_cli("status", "--watch", "--target", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.strip() == f"coffee-orders status: 127.0.0.1:{port}: UNAVAILABLE"


def test_status_watch_whose_reader_goes_away_ends_quietly(
    kafka_broker: LocalKafka, fresh_topic: str, tmp_path: Path, consumer_process: str
) -> None:
    """``coffee-orders status --watch | head -1``: once the reader is gone, the next error line
    ends the command with 141 (128 + SIGPIPE, as a shell reports it), without a traceback."""
    errors_log = tmp_path / "watch-stderr.log"
    with errors_log.open("wb") as stderr:
        command = subprocess.Popen(
            [*CLI, "status", "--watch", "--target", consumer_process],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        wait_until(lambda: "watching new errors" in errors_log.read_text(), 60, "watching")
        assert command.stdout is not None
        command.stdout.close()  # the reader goes away

        def ended() -> bool:
            produce_all(kafka_broker.bootstrap_servers, fresh_topic, [b"not json"])
            with contextlib.suppress(subprocess.TimeoutExpired):
                command.wait(timeout=1)
            return command.returncode is not None

        wait_until(ended, 60, "the watch ended after its reader went away")
    finally:
        command.kill()
        command.wait()
    output = errors_log.read_text()
    assert command.returncode == 141, output
    assert "Traceback" not in output and "Exception ignored" not in output, output
