"""Every command block of README.md and docs/*.md, run as written against a running system.

The system is what ``make run`` runs (``coffee-orders dev``: a broker, the producer and the
consumer), here on free ports. The documented addresses are replaced by those ports, visibly: each
command is printed with the command that ran when the two differ (tests/support/doc_runner.py
lists the substitutions; docs/development-guide.md the convention for writing blocks).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_localkafka import LocalKafka

from tests.support.doc_commands import Block, all_blocks
from tests.support.doc_runner import DocRunner, Substitutions, free_broker_base
from tests.support.processes import free_port_pair

pytestmark = pytest.mark.kafka
BLOCKS = all_blocks()


@dataclass
class DocsSystem:
    runner: DocRunner
    logs: list[Path]


def _free_service_ports(taken: set[int]) -> tuple[int, int]:
    producer = next(p for p in iter(free_port_pair, None) if p not in taken)
    consumer = next(p for p in iter(free_port_pair, None) if p not in taken | {producer})
    return producer, consumer


@pytest.fixture(scope="module")
def docs_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsSystem]:
    root = tmp_path_factory.mktemp("docs")
    (root / "tmp").mkdir()
    (root / "logs").mkdir()
    broker = free_broker_base(set())
    producer, consumer = _free_service_ports({broker, broker + 1})
    services = {
        "XDG_STATE_HOME": str(root / "state"),  # data dirs and consumer state, as under a HOME
        "COFFEE_PRODUCER_LISTEN": f"127.0.0.1:{producer}",
        "COFFEE_CONSUMER_LISTEN": f"127.0.0.1:{consumer}",
    }
    dev = RunningCommand(
        root / "dev.log", "dev", env={**services, "COFFEE_KAFKA_PORT": str(broker)}
    )
    substitutions = Substitutions(
        {9092: broker, 50051: producer, 50052: consumer}, root / "tmp", {}
    )
    environment = {
        **os.environ,
        **services,
        # Commands that rely on defaults reach the same system as the substituted addresses.
        "KAFKA_BROKERS": f"127.0.0.1:{broker}",
        "COFFEE_PRODUCER_TARGET": f"localhost:{producer}",
        "COFFEE_CONSUMER_TARGET": f"localhost:{consumer}",
        # `kafka up` without --port starts a broker of its own next to this system.
        "COFFEE_KAFKA_PORT": str(free_broker_base({broker, broker + 1, producer, consumer})),
    }
    environment.pop("PYTHONUNBUFFERED", None)
    logs = [
        root / "dev.log",
        root / "state" / "coffee-orders" / "dev-kafka" / "node-1" / "server.log",
    ]
    try:
        dev.wait_for_output(r"dev\s+\| ready after \d+ s", timeout=240)
        yield DocsSystem(DocRunner(environment, substitutions, root / "logs"), logs)
    finally:
        code = dev.stop(signal.SIGTERM)
        for state in root.rglob("cluster.json"):  # brokers the documented commands left running
            LocalKafka(state.parent).down()
    assert code == 0, dev.output()[-3000:]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_documented_commands_run_as_written(
    block: Block, request: pytest.FixtureRequest, show_logs_on_failure: Callable[[Path], None]
) -> None:
    if block.skip_reason is not None:
        pytest.skip(f"{block.name}: {block.skip_reason}")
    system: DocsSystem = request.getfixturevalue("docs_system")
    for log in system.logs:
        show_logs_on_failure(log)
    system.runner.run_block(block)
