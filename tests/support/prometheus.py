"""A real Prometheus server (Debian's binary, from `make tools`) for a test: its own port, data
dir and config, stopped by PID; and its HTTP API."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from coffee_orders_devtools.processes import RunningCommand


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    assert found, "prometheus is missing: `make tools` installs it (scripts/ensure_prometheus.sh)"
    return found


def start_prometheus(
    root: Path, port: int, jobs: dict[str, list[str]], rule_files: list[Path]
) -> RunningCommand:
    """Prometheus on 127.0.0.1:``port`` scraping ``jobs`` (name -> HOST:PORT targets) every
    second and evaluating ``rule_files`` every second; data and log under ``root``."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": targets}]}
            for name, targets in jobs.items()
        ],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    return RunningCommand(
        root / "prometheus.log",
        f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        program=[prometheus_binary()],
    )


class PrometheusApi:
    def __init__(self, port: int):
        self._base = f"http://127.0.0.1:{port}"

    def _get(self, path: str, **params: str) -> Any:
        url = f"{self._base}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as reply:
            return json.loads(reply.read())

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self._base}/-/ready", timeout=5) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar as one item) ``expression`` gives now."""
        answer = self._get("/api/v1/query", query=expression)
        assert answer["status"] == "success", answer
        result = answer["data"]["result"]
        return result if isinstance(result, list) else [result]

    def targets_up(self) -> dict[str, str]:
        """job -> health of each active target."""
        targets = self._get("/api/v1/targets")["data"]["activeTargets"]
        return {target["labels"]["job"]: target["health"] for target in targets}

    def alerting_rules(self) -> dict[str, str]:
        """alert name -> health (``ok`` once evaluated without error)."""
        groups = self._get("/api/v1/rules", type="alert")["data"]["groups"]
        return {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}

    def alerts(self) -> list[dict[str, Any]]:
        """The active alerts (pending and firing), each with ``labels`` and ``state``."""
        return list(self._get("/api/v1/alerts")["data"]["alerts"])
