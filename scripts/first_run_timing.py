"""Measure the first ten minutes: ``make run`` in a fresh clone with an empty HOME, then an order.

    python3 scripts/first_run_timing.py            # clones this repository's HEAD
    python3 scripts/first_run_timing.py --keep     # leave the clone and HOME for a look

Nothing is cached: HOME is a new empty folder, so pip's cache, the Kafka jars
(~/.cache/coffee-orders) and Maven's repository are empty. Java takes its home from the account,
not from $HOME, so Maven is pointed at the new HOME with ``-Duser.home``. The broker and the
services get free ports (COFFEE_KAFKA_PORT, COFFEE_*_LISTEN) so the measurement can run next to
anything else on the machine. ``make run`` runs twice in the same clone: the first run from
nothing, the second with everything in place. Each phase is read off the lines ``make run``
prints, timestamped as they arrive; a confirmed order (``coffee-orders order``) ends each run.
Only the standard library is used: the script runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 600.0  # a bound that means "stuck", far above the 120 s target
# Lines (regexes) that end a phase; a phase with nothing to do prints no line and takes 0 s.
MARKS = {
    "setup": r"\.venv/bin/coffee-orders dev$",  # make echoes the command once the venv is done
    "jars": r"^resolved \d+ jars in",
    "broker": r"^dev\s+\| Kafka ready at",
    "services": r"^dev\s+\| ready after",
}
PHASES = [
    ("setup", "virtualenv and runtime packages"),
    ("jars", "Kafka jars from Maven Central"),
    ("broker", "broker start"),
    ("services", "producer and consumer start"),
]
# Variables that would point a cache or a state folder outside the empty HOME.
_CACHE_VARIABLES = (
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "XDG_CONFIG_HOME",
    "COFFEE_ORDERS_CACHE",
    "PIP_CACHE_DIR",
    "MAVEN_OPTS",
    "MAVEN_ARGS",
)


def _free_port(taken: set[int]) -> int:
    """A free port P, with P+1 free too (a broker's controller takes it), not in ``taken``."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port in taken or port + 1 in taken:
            continue
        with socket.socket() as neighbour:
            try:
                neighbour.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        taken.update({port, port + 1})
        return port


def _environment(home: Path) -> tuple[dict[str, str], str]:
    """The environment of a new user with nothing cached, and the producer's address."""
    env = {k: v for k, v in os.environ.items() if k not in _CACHE_VARIABLES}
    taken: set[int] = set()
    broker, producer, consumer = (_free_port(taken) for _ in range(3))
    env.update(
        {
            "HOME": str(home),
            "MAVEN_OPTS": f"-Duser.home={home}",
            "COFFEE_KAFKA_PORT": str(broker),
            "COFFEE_PRODUCER_LISTEN": f"127.0.0.1:{producer}",
            "COFFEE_CONSUMER_LISTEN": f"127.0.0.1:{consumer}",
        }
    )
    return env, f"127.0.0.1:{producer}"


@contextmanager
def _make_run(clone: Path, env: dict[str, str]) -> Iterator[queue.Queue[tuple[float, str]]]:
    """``make run`` in the background; yields its lines with the time each arrived."""
    process = subprocess.Popen(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C goes to make and everything it started, as in a terminal
    )
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            print("make run did not stop within 60 s of Ctrl-C", file=sys.stderr)
        reader.join(10)


def _measure(clone: Path, env: dict[str, str], producer: str, label: str) -> float:
    """One ``make run`` to a confirmed order: print each phase, return the total seconds."""
    print(f"\n{label}")
    started = time.monotonic()
    seen: dict[str, float] = {}
    with _make_run(clone, env) as lines:
        while "services" not in seen:
            try:
                at, line = lines.get(timeout=max(0.0, started + READY_TIMEOUT_S - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"not ready within {READY_TIMEOUT_S:.0f} s") from None
            if os.environ.get("FIRST_RUN_VERBOSE"):
                print(f"    {at - started:6.1f} s  {line[:160]}")
            for mark, pattern in MARKS.items():
                if mark not in seen and re.search(pattern, line):
                    seen[mark] = at
        last = started
        for mark, phase in PHASES:
            at = seen.get(mark, last)
            if at < last:  # the jars are fetched while pip works: say how long, not a phase
                print(f"  {phase:<34} (meanwhile, done at {at - started:6.1f} s)")
                continue
            print(f"  {phase:<34} {at - last:6.1f} s   (at {at - started:6.1f} s)")
            last = at
        ordered = subprocess.run(
            [".venv/bin/coffee-orders", "order", "--customer", "John Doe", "--coffee", "Latte",
             "--target", producer],
            cwd=clone, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        done = time.monotonic()
        if ordered.returncode != 0:
            raise SystemExit(f"the order failed: {ordered.stderr.strip()}")
        print(
            f"  {'first order confirmed':<34} {done - last:6.1f} s   (at {done - started:6.1f} s)"
        )
        print(f"  {ordered.stdout.strip()}")
    return done - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(ROOT), help="what to clone (default: this one)")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its HOME")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="first-run-"))
    clone, home = work / "coffee-orders", work / "home"
    home.mkdir()
    try:
        subprocess.run(["git", "clone", "--quiet", args.repo, str(clone)], check=True)
        env, producer = _environment(home)
        with open("/proc/loadavg") as load:
            print(
                f"{os.cpu_count()} cores, load average {load.read().split()[0]}; clone in {clone}"
            )
        first = _measure(clone, env, producer, "first `make run` (empty HOME, nothing cached)")
        second = _measure(clone, env, producer, "second `make run` (same clone)")
        print(f"\nfrom `make run` to a confirmed order: first {first:.0f} s, second {second:.0f} s")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
