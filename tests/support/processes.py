"""Run our own commands as real child processes, with their output kept in a log file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from coffee_orders_localkafka.cluster import free_ports, port_is_free

from tests.support.waiting import wait_until

CLI = [sys.executable, "-m", "coffee_orders_cli.main"]
T = TypeVar("T")


def free_port_pair() -> int:
    """A free port P with P+1 also free (a broker and its controller)."""
    return free_port_run(2)


def free_port_run(count: int) -> int:
    """A free port P with the ``count - 1`` ports after it free too."""
    for port in free_ports(20):
        if all(port_is_free(port + i) for i in range(1, count)):
            return port
    raise AssertionError(f"no {count} free ports in a row")


def brewed_in_output(*commands: RunningCommand | None) -> list[str]:
    """order_ids the given consumer processes logged as processed ("brewing ..." lines)."""
    return [
        line.split("order_id=")[1].split()[0]
        for command in commands
        if command is not None
        for line in command.output().splitlines()
        if " brewing " in line
    ]


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
