"""Run documented command blocks against a running system, with visible port substitutions.

Substitutions (each one printed next to the command it changed):

- ``localhost:9092`` / ``127.0.0.1:9092``: the broker of the system the test runs (what
  ``make run`` starts); ``:50051`` and ``:50052`` on localhost, 127.0.0.1 or 0.0.0.0: its producer
  and consumer. Any other such address gets a free port of its own (the same one wherever that
  documented port appears).
- ``--port N`` (a broker's first port): a free port P with P, P+1, P+100, P+101, P+200, P+201 free
  (room for ``--nodes 3``), again the same P for the same N everywhere.
- ``/tmp/``: a folder of the test's own.
- ``.venv/bin/pytest ...``: run with ``--collect-only -q`` added, which proves the files, ``-k``
  and ``-m`` expressions still select tests (``make test`` runs all of them for real).

The environment carries the same mapping for commands that rely on defaults (see
``docs_environment``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from coffee_orders_localkafka.cluster import free_ports, port_is_free

from tests.support.doc_commands import ROOT, Block, Command, output_matches

_ADDRESS = re.compile(r"\b(localhost|127\.0\.0\.1|0\.0\.0\.0):(\d{2,5})\b")
_PORT_FLAG = re.compile(r"(--port[ =])(\d{2,5})\b")
_TMP = re.compile(r"(?<![\w./-])/tmp/")
_PYTEST = re.compile(r"^((?:\S+=\S+\s+)*\S*/pytest)\b(.*)$")
FOREGROUND_TIMEOUT_S = 300.0  # a bound that means "hung": go test may compile for a while
STOP_TIMEOUT_S = 30.0
_STOPPED_BY = {
    "SIGINT": (signal.SIGINT, {0, 130, -signal.SIGINT}),
    "SIGTERM": (signal.SIGTERM, {0, 143, -signal.SIGTERM}),
}


def free_broker_base(taken: set[int]) -> int:
    """A port P not in ``taken`` with P, P+1, P+100, P+101, P+200, P+201 free (3 nodes)."""
    for port in free_ports(40):
        needed = [port + offset for offset in (0, 1, 100, 101, 200, 201)]
        if not taken.intersection(needed) and all(port_is_free(p) for p in needed[1:]):
            return port
    raise AssertionError("no free port range for a broker")


@dataclass
class Substitutions:
    """The documented addresses mapped to the test's, applied to commands and transcripts."""

    addresses: dict[int, int]  # documented port -> port used, for HOST:PORT
    tmp: Path
    broker_bases: dict[int, int]

    def _taken(self) -> set[int]:
        return set(self.addresses.values()) | set(self.broker_bases.values())

    def _address(self, match: re.Match[str]) -> str:
        port = int(match.group(2))
        if port not in self.addresses:
            taken = self._taken()
            self.addresses[port] = next(p for p in free_ports(20) if p not in taken)
        return f"{match.group(1)}:{self.addresses[port]}"

    def _base(self, match: re.Match[str]) -> str:
        port = int(match.group(2))
        if port not in self.broker_bases:
            self.broker_bases[port] = free_broker_base(self._taken())
        return f"{match.group(1)}{self.broker_bases[port]}"

    def apply(self, text: str) -> str:
        text = _ADDRESS.sub(self._address, text)
        text = _PORT_FLAG.sub(self._base, text)
        return _TMP.sub(f"{self.tmp}/", text)

    def command(self, text: str) -> str:
        """``apply``, plus ``--collect-only -q`` for pytest."""
        text = self.apply(text)
        return _PYTEST.sub(r"\1 --collect-only -q\2", text)


@dataclass
class _Background:
    command: Command
    ran: str
    process: subprocess.Popen[bytes]
    log: Path


class DocRunner:
    """Runs one block at a time like a person at a terminal in the repository's root."""

    def __init__(
        self,
        environment: dict[str, str],
        substitutions: Substitutions,
        logs: Path,
        say: Callable[[str], None] = print,
    ):
        self.environment = environment
        self.substitutions = substitutions
        self.logs = logs
        self.say = say

    def run_block(self, block: Block) -> None:
        cwd, env = ROOT, dict(self.environment)
        background: list[_Background] = []
        try:
            for command in block.commands:
                ran = self.substitutions.command(command.text)
                where = f"{block.path.name}:{command.line}"
                self.say(f"{where}: $ {command.text}")
                if ran != command.text:
                    self.say(f"{' ' * len(where)}  ran: {ran}")
                if moved := re.fullmatch(r"cd\s+(\S+)", ran):
                    cwd = (cwd / moved.group(1)).resolve()
                    assert cwd.is_dir(), f"{where}: no folder {cwd}"
                elif exported := re.fullmatch(r"export\s+([A-Za-z_]\w*)=(\S*)", ran):
                    env[exported.group(1)] = exported.group(2)
                elif command.stop_signal is not None:
                    background.append(self._start(where, command, ran, cwd, env))
                else:
                    self._run(where, command, ran, cwd, env)
        finally:
            self._stop(background)

    def _run(self, where: str, command: Command, ran: str, cwd: Path, env: dict[str, str]) -> None:
        process = subprocess.Popen(
            ["bash", "-o", "pipefail", "-c", ran],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            raw, _ = process.communicate(timeout=FOREGROUND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise AssertionError(
                f"{where}: `{command.text}` still ran after {FOREGROUND_TIMEOUT_S:.0f} s "
                "(a command that runs until stopped needs `# ... until Ctrl-C` or `&`)"
            ) from None
        output = raw.decode(errors="replace")
        self.say(_indented(output))
        if command.expected_output is not None:
            expected = tuple(self.substitutions.apply(line) for line in command.expected_output)
            assert output_matches(expected, output), (
                f"{where}: the output of `{ran}` is not the documented one:\n"
                + "\n".join(expected)
                + f"\n--- got (exit {process.returncode}):\n{output}"
            )
            return
        assert process.returncode == 0, (
            f"{where}: `{command.text}` failed with exit code {process.returncode}\n"
            f"ran: {ran}\n{output[-3000:]}"
        )

    def _start(
        self, where: str, command: Command, ran: str, cwd: Path, env: dict[str, str]
    ) -> _Background:
        log = self.logs / f"{where.replace('/', '_').replace(':', '-')}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-o", "pipefail", "-c", ran.removesuffix("&").rstrip()],
                cwd=cwd,
                env={**env, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, like a job in a terminal
            )
        return _Background(command, ran, process, log)

    def _stop(self, background: list[_Background]) -> None:
        """Stop each (Ctrl-C reaches the whole foreground group), then check how each went."""
        problems = []
        for job in background:
            signum, good_codes = _STOPPED_BY[job.command.stop_signal or "SIGINT"]
            ran_until_stopped = job.process.poll() is None
            if ran_until_stopped:
                os.killpg(job.process.pid, signum)
            problem = ""
            try:
                code = job.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(job.process.pid, signal.SIGKILL)
                code = job.process.wait(10)
                problem = f"did not stop within {STOP_TIMEOUT_S:.0f} s of {signum.name}"
            output = job.log.read_text(errors="replace")
            self.say(f"stopped `{job.command.text}` (exit {code}):\n{_indented(output)}")
            if not ran_until_stopped:
                problem = f"exited with {code} before it was stopped"
            elif not problem and (
                code not in good_codes or "Traceback (most recent call last)" in output
            ):
                problem = f"ended badly on {signum.name} (exit {code})"
            if problem:
                problems.append(f"`{job.ran}` {problem}:\n{output[-3000:]}")
        assert not problems, "\n".join(problems)


def _indented(output: str) -> str:
    return "".join(f"    {line}\n" for line in output.rstrip().splitlines())
