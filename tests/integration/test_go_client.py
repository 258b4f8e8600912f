"""The generated Go client's own test, run against a real producer, consumer and broker."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from coffee_orders_localkafka import LocalKafka

from tests.support.services import (
    running_pair,
)

pytestmark = pytest.mark.kafka
GO_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "go"


async def run_go_test(producer: str, consumer: str, extra_env: dict[str, str]) -> str:
    """Run clients/go's tests against the given addresses; fail unless every test passed."""
    go = shutil.which("go")
    assert go is not None, "Go is a prerequisite (see README)"
    env = {
        **os.environ,
        "COFFEE_PRODUCER_TARGET": producer,
        "COFFEE_CONSUMER_TARGET": consumer,
        **extra_env,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [go, "test", "-v", "-count=1", "./..."],
        cwd=GO_CLIENT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "--- PASS: TestPlaceOrderThenConsumerCountsIt" in output, output
    assert "--- PASS: TestBlankCustomerIsInvalidArgument" in output, output
    assert "--- PASS: TestPlacedOrderIsTrackedToProcessedOnBothServices" in output, output
    assert "--- PASS: TestPlaceOrderWaitingForProcessing" in output, output
    assert "SKIP" not in output, output
    return output


async def test_go_client_places_an_order_and_reads_status(
    kafka_broker: LocalKafka, fresh_topic: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    async with (
        running_pair(bootstrap, fresh_topic) as (producer, consumer),
    ):
        await run_go_test(producer, consumer, {})
