"""CPU per confirmed order: CPU time measured over one run divided by the orders it confirmed.

A run's figures carry ``cpu_seconds`` (the serving process: our producer, the no-op gRPC server,
a Go peer; for the Kafka limit, the process producing straight to Kafka) and
``broker_cpu_seconds`` (the broker JVM, same window), and where a separate load generator drove
it ``load_cpu_seconds`` (ghz, hey or streamload). Each becomes microseconds per confirmed order.
A run that confirmed nothing gets no per-order figure.
"""

from __future__ import annotations

import resource
from typing import Any

PER_ORDER = {
    "cpu_seconds": "cpu_us_per_order",
    "broker_cpu_seconds": "broker_cpu_us_per_order",
    "load_cpu_seconds": "load_cpu_us_per_order",
}


def children_cpu_seconds() -> float:
    """User + system time of this process's children that have ended and been waited for: a
    load generator run with ``subprocess.run`` counts once it has returned."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def with_per_order(figures: dict[str, Any]) -> dict[str, Any]:
    """``figures`` with a ``*_us_per_order`` beside each CPU time it has."""
    ok = figures.get("ok", 0)
    for seconds, per_order in PER_ORDER.items():
        if seconds in figures and ok:
            figures[per_order] = 1e6 * figures[seconds] / ok
    return figures


def share_of_parts(row: dict[str, Any]) -> float | None:
    """Our producer's CPU per order over (no-op gRPC server + direct Kafka) per order.

    1.0 means the producer costs what its two parts cost apart; the excess is ours. None where a
    figure is missing (an older results file, or a run that confirmed nothing).
    """
    try:
        ours = row["ours"]["cpu_us_per_order"]
        parts = row["grpc_limit"]["cpu_us_per_order"] + row["kafka_limit"]["cpu_us_per_order"]
    except KeyError:
        return None
    return float(ours) / parts if parts else None


def ratio(row: dict[str, Any], other: str, key: str = "cpu_us_per_order") -> float | None:
    """``row["ours"][key] / row[other][key]``, or None where either is missing."""
    try:
        mine, theirs = row["ours"][key], row[other][key]
    except KeyError:
        return None
    return float(mine) / theirs if theirs else None
