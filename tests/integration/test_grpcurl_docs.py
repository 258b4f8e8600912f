"""Run the grpcurl commands of docs/grpcurl.md, as written, against real services."""

from __future__ import annotations

import asyncio
import re
import shlex
from pathlib import Path

import pytest
from coffee_orders_localkafka import LocalKafka

from tests.support.services import (
    running_pair,
)
from tests.support.tools import run_tool

pytestmark = pytest.mark.kafka
DOC = Path(__file__).resolve().parents[2] / "docs" / "grpcurl.md"


def documented_commands() -> list[list[str]]:
    text = DOC.read_text()
    block = re.search(r"<!-- ci:grpcurl -->\n```sh\n(.*?)```", text, re.S)
    assert block, "docs/grpcurl.md lost its <!-- ci:grpcurl --> block"
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


async def test_documented_grpcurl_commands_work(
    kafka_broker: LocalKafka, fresh_topic: str, tmp_path: Path
) -> None:
    commands = documented_commands()
    assert len(commands) >= 6
    bootstrap = kafka_broker.bootstrap_servers
    async with (
        running_pair(bootstrap, fresh_topic) as (producer, consumer),
    ):
        addresses = {"localhost:50051": producer, "localhost:50052": consumer}
        for command in commands:
            assert command[0] == ".tools/bin/grpcurl", "the docs give grpcurl's path"
            arguments = [addresses.get(word, word) for word in command[1:]]
            result = await asyncio.to_thread(run_tool, "grpcurl", *arguments)
            assert result.returncode == 0, f"{shlex.join(command)}\n{result.stderr}"
            if command[-1].endswith("/PlaceOrder"):
                assert f'"topic": "{fresh_topic}"' in result.stdout
                assert '"order_id"' in result.stdout
                if "WAIT_FOR_PROCESSED" in " ".join(command):
                    assert '"state": "ORDER_STATE_PROCESSED"' in result.stdout, result.stdout
            if command[-1].endswith(("/GetOrder", "/WatchOrder")):  # the order placed above
                assert '"state": "ORDER_STATE_PROCESSED"' in result.stdout, result.stdout
                assert f'"topic": "{fresh_topic}"' in result.stdout
            if command[-1].endswith("/PlaceOrders"):  # two batches: 2 + 1 confirmations
                assert result.stdout.count('"confirmed"') == 3, result.stdout
            if command[-1].endswith("Health/Check"):
                assert '"SERVING"' in result.stdout
            if command[-1].endswith("GetStatus"):
                assert '"group_id"' in result.stdout
            if command[-1] == "list":
                assert "grpc.health.v1.Health" in result.stdout
