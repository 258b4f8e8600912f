"""Render the fault suite's figures (JSON lines) as the Markdown table of docs/reliability.md.

    COFFEE_RELIABILITY_REPORT=bench/results/reliability.json \
        .venv/bin/pytest tests/integration/test_faults.py tests/integration/test_hostile_input.py
    .venv/bin/python scripts/reliability_table.py bench/results/reliability.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_MAIN = ("scenario", "sent", "acknowledged", "on_topic", "processed", "lost", "logged_twice")


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    return "-" if value is None else str(value)


def _order(row: dict[str, Any]) -> tuple[int, str]:
    number = str(row["scenario"]).split(".", 1)[0]
    digits = "".join(ch for ch in number if ch.isdigit())
    return (int(digits) if digits else 99, str(row["scenario"]))


def render(rows: list[dict[str, Any]]) -> str:
    header = [
        "scenario",
        "sent",
        "acknowledged",
        "on topic",
        "processed",
        "lost",
        "logged twice",
        "errors",
        "recover (s)",
        "other figures",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sorted(rows, key=_order):
        extra = {k: v for k, v in row.items() if k not in {*_MAIN, "errors", "recovery_s"}}
        cells = [_cell(row[k]) for k in _MAIN]
        cells += [_cell(row["errors"]), _cell(row["recovery_s"]), _cell(extra)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/reliability.json")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
