"""A short Jepsen-style fault run (coffee_orders_devtools.fault_run): seeded broker and consumer
faults under continuous load, then every confirmed order must have been processed and every bad
record dead-lettered. The seed is printed; ``COFFEE_FAULT_SEED=N`` replays a schedule.
``bench/fault_run.py`` runs the same for longer (docs/reliability.md)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from coffee_orders_devtools.fault_run import FaultRunConfig, fault_run, seed_from_env

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]

# Broker SIGSTOP beyond the session timeout is on unless COFFEE_FAULT_SIGSTOP=0.
SIGSTOP = os.environ.get("COFFEE_FAULT_SIGSTOP", "1") != "0"


@pytest.mark.timeout(1200)  # 3 brokers starting, 150 s of faults, the drain: a loaded machine
async def test_seeded_faults_lose_no_confirmed_order(
    tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> None:
    config = FaultRunConfig(
        work_dir=tmp_path,
        seed=seed_from_env(),
        fault_seconds=150,
        sigstop=SIGSTOP,
        on_log=show_logs_on_failure,
    )
    result = await fault_run(config)
    assert len(result.load.confirmed) > 0, result.summary()
    assert result.bad_written == config.bad_records, result.summary()
    assert not result.problems(), result.summary()
