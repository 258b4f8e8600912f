"""Background processes for the benchmark, with their CPU time and memory read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "coffee_orders_cli.main"]
_TICKS = os.sysconf("SC_CLK_TCK")


class Background:
    """One command running in its own session, its output in ``log_path``."""

    def __init__(
        self, name: str, command: list[str], log_dir: Path, env: dict[str, str] | None = None
    ):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

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

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def coffee_orders(name: str, arguments: list[str], log_dir: Path) -> Background:
    """A ``coffee-orders`` subcommand (producer, consumer) in the background."""
    return Background(name, [*CLI, *arguments], log_dir)


def python_module(name: str, module: str, arguments: list[str], log_dir: Path) -> Background:
    return Background(name, [sys.executable, "-m", module, *arguments], log_dir)
