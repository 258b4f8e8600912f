"""freeze/thaw return only once every thread of the process is stopped, or running again."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from coffee_orders_devtools.freezing import _thread_states, freeze, thaw

# Four threads besides the main one, all asleep until the test ends them.
_SLEEPERS = (
    "import threading, time\n"
    "for _ in range(4): threading.Thread(target=time.sleep, args=(120,), daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture
def sleepers() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([sys.executable, "-c", _SLEEPERS], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        yield process
    finally:
        process.kill()
        process.wait(10)


def test_freeze_stops_every_thread_and_thaw_starts_them_again(
    sleepers: subprocess.Popen[str],
) -> None:
    freeze(sleepers.pid, within_s=10)
    states = _thread_states(sleepers.pid)
    assert len(states) == 5 and set(states) == {"T"}, states
    thaw(sleepers.pid, within_s=10)
    assert "T" not in _thread_states(sleepers.pid)


def test_a_process_that_is_gone_has_no_threads_to_wait_for() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(10)
    assert _thread_states(process.pid) == []
