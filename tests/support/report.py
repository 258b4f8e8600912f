"""Figures the fault suite measures, gathered for docs/reliability.md."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPORT_ENV = "COFFEE_RELIABILITY_REPORT"


def account(
    scenario: str,
    sent: int,
    acknowledged: Iterable[str],
    on_topic: Iterable[str],
    processed: Iterable[str] | None,
    errors: Counter[str] | dict[str, int],
    recovery_s: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Compare what was acknowledged, stored and processed; record and return the figures.

    ``processed`` is None where no consumer takes part: the topic alone is then the proof.
    """
    acked = set(acknowledged)
    stored = Counter(on_topic)
    logged = Counter(processed or ())
    figures = {
        "scenario": scenario,
        "sent": sent,
        "acknowledged": len(acked),
        "on_topic": sum(stored[order_id] for order_id in acked),
        "processed": None if processed is None else len(acked & set(logged)),
        "lost": len(acked - set(stored)) + (0 if processed is None else len(acked - set(logged))),
        "logged_twice": sum(1 for count in logged.values() if count > 1),
        "errors": dict(sorted(errors.items())),
        "recovery_s": recovery_s,
        **extra,
    }
    path = os.environ.get(REPORT_ENV)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with Path(path).open("a") as report:
            report.write(json.dumps(figures) + "\n")
    print(f"figures: {json.dumps(figures)}")
    return figures
