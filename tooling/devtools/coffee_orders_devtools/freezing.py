"""Freeze a process with SIGSTOP, thaw it with SIGCONT, and wait until it really is so.

``kill()`` returns before a process stops: the thread that takes SIGSTOP starts the stop of the
others only once it runs, and on a loaded machine the rest go on for a while. A test saw a
broker confirm an order that was sent after ``kill(pid, SIGSTOP)`` had returned.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from coffee_orders_localkafka.proc_stat import stat_fields

from .waiting import wait_until

_STOPPED = {"T", "t"}  # stopped by a signal; stopped while traced
_GONE = {"Z", "X"}  # a thread that ended meanwhile counts as neither


def _thread_states(pid: int) -> list[str]:
    """The state letter of each live thread of ``pid``; none once the process is gone."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return []
    states = []
    for task in tasks:
        try:
            states.append(stat_fields(task / "stat")[0])
        except (FileNotFoundError, ProcessLookupError):  # the thread ended
            continue
    return [state for state in states if state not in _GONE]


def freeze(pid: int, within_s: float = 30.0) -> None:
    """SIGSTOP ``pid`` and return once every one of its threads is stopped."""
    os.kill(pid, signal.SIGSTOP)
    wait_until(
        lambda: all(state in _STOPPED for state in _thread_states(pid)),
        within_s,
        f"every thread of process {pid} stopped",
        interval=0.005,
    )


def thaw(pid: int, within_s: float = 30.0) -> None:
    """SIGCONT ``pid`` and return once none of its threads is stopped any more."""
    os.kill(pid, signal.SIGCONT)
    wait_until(
        lambda: not any(state in _STOPPED for state in _thread_states(pid)),
        within_s,
        f"every thread of process {pid} running again",
        interval=0.005,
    )
