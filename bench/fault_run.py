"""A long fault run: the test's seeded faults (coffee_orders_devtools.fault_run) for minutes.

    python -m bench.fault_run --minutes 10 --seed 7     # replay with the same --seed
    python -m bench.fault_run --minutes 10 --no-sigstop

Prints the summary and exits 1 if anything confirmed was lost or a bad record was not
dead-lettered exactly once (a repeat after a crash is allowed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from coffee_orders_devtools.fault_run import FaultRunConfig, fault_run, seed_from_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="of faults (default 10)")
    parser.add_argument("--seed", type=int, help="default: $COFFEE_FAULT_SEED, else random")
    parser.add_argument("--no-sigstop", action="store_true", help="no broker SIGSTOP faults")
    parser.add_argument("--rate", type=float, default=30.0, help="orders a second (default 30)")
    parser.add_argument("--bad-records", type=int, default=10, help="default 10")
    parser.add_argument(
        "--work-dir", type=Path, help="logs and data kept here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    seed = seed_from_env() if args.seed is None else args.seed
    print(f"fault run: seed {seed}, {args.minutes} min of faults", flush=True)
    with tempfile.TemporaryDirectory(prefix="fault-run-") as scratch:
        work = args.work_dir or Path(scratch)
        config = FaultRunConfig(
            work_dir=work,
            seed=seed,
            fault_seconds=args.minutes * 60,
            sigstop=not args.no_sigstop,
            rate=args.rate,
            bad_records=args.bad_records,
            drain_timeout_s=600,
        )
        result = asyncio.run(fault_run(config))
        print(f"logs: {work / 'logs'}" + ("" if args.work_dir else " (removed)"))
    return 1 if result.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
