"""Run our own commands as real child processes, with their output kept in a log file.

Used by the tests and the benchmark alike (tooling: it imports nothing from either).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from .waiting import wait_until

CLI = [sys.executable, "-m", "coffee_orders_cli.main"]
T = TypeVar("T")


class RunningCommand:
    """A ``coffee-orders`` subcommand (or ``program``) in the background, output in ``log_path``."""

    def __init__(
        self,
        log_path: Path,
        *arguments: str,
        env: dict[str, str] | None = None,
        program: Sequence[str] = CLI,
    ):
        """``program`` is what ``arguments`` follow: the coffee-orders command unless given."""
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [*program, *arguments],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )

    @staticmethod
    def run_cli(
        *arguments: str, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a short ``coffee-orders`` command to completion (``env`` replaces os.environ)."""
        return subprocess.run(
            [*CLI, *arguments],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        return self.process.pid

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

    def threads(self) -> int:
        return len(list(Path(f"/proc/{self.pid}/task").iterdir()))

    def open_files(self) -> int:
        """File descriptors the process holds (sockets included)."""
        return len(list(Path(f"/proc/{self.pid}/fd").iterdir()))

    def wait_for_output(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        return self.wait_while_running(
            lambda: re.search(pattern, self.output()), timeout, f"{pattern!r} in {self.log_path}"
        )

    def wait_while_running(self, condition: Callable[[], T | None], timeout: float, what: str) -> T:
        """``wait_until(condition)``, failing at once with the log if the process exits."""

        def still_running_and_met() -> T | None:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.log_path.name}: exited with {self.process.returncode}:\n"
                    + self.output()[-3000:]
                )
            return condition()

        return wait_until(still_running_and_met, timeout, what)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the process and wait for it; kill it if it overstays ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"{self.log_path.name} did not stop within {timeout} s") from None
        finally:
            self._log.close()
