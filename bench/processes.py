"""Benchmark processes: the tests' RunningCommand, plus CPU time and memory from /proc."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.support.processes import RunningCommand

_TICKS = os.sysconf("SC_CLK_TCK")


class Measured(RunningCommand):
    """A background process whose CPU time and memory the benchmark reads."""

    @property
    def name(self) -> str:
        return self.log_path.stem

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process, all its threads, so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def _status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def rss_mb(self) -> float:
        return self._status_kb("VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        """The highest resident set size the process reached (VmHWM)."""
        return self._status_kb("VmHWM") / 1024


def coffee_orders(
    name: str, arguments: list[str], log_dir: Path, env: dict[str, str] | None = None
) -> Measured:
    """A ``coffee-orders`` subcommand (producer, consumer) in the background; ``env`` is added
    to this process's environment."""
    return Measured(log_dir / f"{name}.log", *arguments, env=env)


def python_module(name: str, module: str, arguments: list[str], log_dir: Path) -> Measured:
    return Measured(log_dir / f"{name}.log", *arguments, program=[sys.executable, "-m", module])


__all__ = ["Measured", "coffee_orders", "python_module"]
