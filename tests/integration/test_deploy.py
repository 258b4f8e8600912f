"""deploy/: what can be checked without a container engine or a cluster."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_localkafka import LocalKafka

from tests.support.services import producer_settings, running_producer

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=300, check=False
    )


def test_kubernetes_manifests_match_the_schemas() -> None:
    result = _run(BIN / "kubernetes-validate", "--strict", *sorted(DEPLOY.glob("k8s/*.yaml")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == 6, result.stdout  # 2 x Deployment, Service, PDB


def test_compose_file_matches_the_compose_spec() -> None:
    compose = DEPLOY / "docker-compose.yml"
    result = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", compose)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_the_cli_as_entrypoint() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and not users[-1].startswith(("0", "root"))
    assert 'ENTRYPOINT ["coffee-orders"]' in text
    assert "HEALTHCHECK" in text


def test_the_wheel_the_image_installs_holds_every_package(tmp_path: Path) -> None:
    """Build the wheel from exactly what the Dockerfile's build stage copies, as the image does."""
    build_stage = (DEPLOY / "Dockerfile").read_text().split("\nFROM ")[1]  # the first stage
    context = tmp_path / "context"
    for line in re.findall(r"^COPY (?!--from)(.+)$", build_stage, re.M):
        *sources, destination = line.split()
        for source in sources:  # files into a folder ("./"), or a folder to a path
            target = context / destination
            if destination.endswith("/"):
                target = target / Path(source).name
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, target)
    wheels = tmp_path / "wheels"
    result = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", wheels, context)
    assert result.returncode == 0, result.stderr
    (wheel,) = wheels.glob("coffee_orders-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "coffee/orders/v1/orders_pb2.py",
        "coffee_orders_cli/main.py",
        "coffee_orders_client/service_config.json",
        "coffee_orders_common/settings.py",
        "coffee_orders_producer/app.py",
        "coffee_orders_consumer/app.py",
        "coffee_orders_localkafka/cluster.py",  # the CLI's `kafka` commands
    ):
        assert expected in names, f"{expected} missing from {wheel.name}"


@pytest.mark.kafka
async def test_health_command_used_by_the_container_health_checks(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    async with running_producer(settings) as address:
        healthy = await asyncio.to_thread(RunningCommand.run_cli, "health", "--target", address)
    assert healthy.returncode == 0 and healthy.stdout.strip() == "SERVING", healthy.stderr
    gone = await asyncio.to_thread(RunningCommand.run_cli, "health", "--target", address)
    assert gone.returncode == 1 and "UNAVAILABLE" in gone.stderr
