"""Benchmark processes: the tests' RunningCommand (memory from /proc), plus CPU time."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_localkafka.proc_stat import stat_fields

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, so far (clock ticks, 10 ms here)."""
    fields = stat_fields(Path(f"/proc/{pid}/stat"))
    return (int(fields[11]) + int(fields[12])) / _TICKS


class Measured(RunningCommand):
    """A background process whose CPU time and memory the benchmark reads."""

    @property
    def name(self) -> str:
        return self.log_path.stem

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process, all its threads, so far."""
        return cpu_seconds(self.pid)


class Supervised(Measured):
    """A supervisor and its worker processes (``producer --workers N``), measured as one:
    CPU time and peak RSS are the sums over the supervisor and its children alive now."""

    def children(self) -> list[int]:
        return [
            int(child)
            for task in Path(f"/proc/{self.pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid) + sum(cpu_seconds(child) for child in self.children())

    def peak_rss_mb(self) -> float:
        peaks = [_peak_rss_kb(pid) for pid in [self.pid, *self.children()]]
        return sum(peaks) / 1024


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def coffee_orders(
    name: str,
    arguments: list[str],
    log_dir: Path,
    env: dict[str, str] | None = None,
    kind: type[Measured] = Measured,
) -> Measured:
    """A ``coffee-orders`` subcommand (producer, consumer) in the background; ``env`` is added
    to this process's environment; ``kind`` Supervised for a producer with workers."""
    return kind(log_dir / f"{name}.log", *arguments, env=env)


def python_module(name: str, module: str, arguments: list[str], log_dir: Path) -> Measured:
    return Measured(log_dir / f"{name}.log", *arguments, program=[sys.executable, "-m", module])


def program(name: str, binary: Path, arguments: list[str], log_dir: Path) -> Measured:
    """Any program (a Go peer) in the background, its output in ``log_dir/<name>.log``."""
    return Measured(log_dir / f"{name}.log", *arguments, program=[str(binary)])


__all__ = [
    "Measured",
    "Supervised",
    "coffee_orders",
    "cpu_seconds",
    "program",
    "python_module",
]


def tree_env(tree: Path) -> dict[str, str]:
    """Import path of ``tree``'s own packages: the folders its pyproject.toml lists.

    hatchling's ``dev-mode-dirs`` now; setuptools' ``packages.find.where`` in older trees.
    """
    with (tree / "pyproject.toml").open("rb") as file:
        tool = tomllib.load(file)["tool"]
    hatch = tool.get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
    folders = hatch.get("dev-mode-dirs") or tool["setuptools"]["packages"]["find"]["where"]
    return {"PYTHONPATH": os.pathsep.join(str(tree / folder) for folder in folders)}
