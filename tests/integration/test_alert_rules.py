"""The alerting rules of deploy/prometheus/: valid, unit-tested with synthetic series by promtool,
and each alert with a summary, a description and a runbook that exists in the docs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.markdown import anchors

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _promtool() -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make tools` installs it (scripts/ensure_prometheus.sh)"
    return promtool


@pytest.mark.parametrize("command", ["check", "test"])
def test_promtool_accepts_the_rules_and_their_unit_tests(command: str) -> None:
    target = RULES if command == "check" else RULE_TESTS
    done = subprocess.run(
        [_promtool(), f"{command}", "rules", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.parametrize("alert", _alerts(), ids=lambda rule: rule["alert"])
def test_each_alert_has_a_summary_and_a_runbook_that_exists(alert: dict[str, Any]) -> None:
    annotations = alert["annotations"]
    assert {"summary", "description", "runbook_url"} <= set(annotations)
    assert alert["labels"]["severity"] in {"warning", "critical"}
    path, _, anchor = annotations["runbook_url"].partition("#")
    assert path == "docs/troubleshooting.md" and anchor
    assert anchor in anchors(ROOT / path), f"no heading for #{anchor} in {path}"


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {alert["alert"] for alert in _alerts()}
    assert names - fired == set(), "alerts no test fires"
    assert names - quiet == set(), "alerts no test checks quiet"
