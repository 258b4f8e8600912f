"""Resolve the Apache Kafka jars from Maven Central once, into a cache outside the work tree.

Standard library only, so ``make run`` can run this file with the system's python3
(``python3 .../jars.py``) to fetch the jars while pip fills the virtualenv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.25.2"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
CACHE_ENV = "COFFEE_ORDERS_CACHE"


class ToolMissingError(Exception):
    """java or mvn is not installed, or a resolution step failed."""


def cache_root() -> Path:
    base = os.environ.get(CACHE_ENV) or os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    root = Path(base).expanduser()
    return root if os.environ.get(CACHE_ENV) else root / "coffee-orders"


def require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if not path:
        raise ToolMissingError(f"{name} not found on PATH: {hint}")
    return path


def kafka_lib_dir(version: str = KAFKA_VERSION) -> Path:
    """The folder holding the broker's runtime jars, resolving them with Maven the first time."""
    lib = cache_root() / f"kafka-{version}" / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    mvn = require_tool("mvn", "install Maven (e.g. apt-get install maven) to fetch the Kafka jars")
    started = time.monotonic()
    print(
        f"resolving Apache Kafka {version} jars from Maven Central into {lib} (first run only)",
        file=sys.stderr,
    )
    staging = lib.with_name("lib.partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(_package_file("pom.xml").read_text())
        command = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-Dkafka.version={version}",
            f"-Dlog4j.version={LOG4J_VERSION}",
            f"-DoutputDirectory={staging}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise ToolMissingError(f"Maven could not resolve the Kafka jars: {' | '.join(tail)}")
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    marker.touch()
    count = sum(1 for _ in lib.glob("*.jar"))
    print(f"resolved {count} jars in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return lib


def log4j_config_path() -> Path:
    return Path(str(_package_file("log4j2.properties")))


def _package_file(name: str) -> Traversable:
    """A data file of this package (beside this file when it runs as a script)."""
    folder = resources.files(__package__) if __package__ else Path(__file__).parent
    return folder.joinpath(name)


if __name__ == "__main__":
    try:
        kafka_lib_dir()
    except ToolMissingError as exc:  # `coffee-orders dev` says it again when it needs the jars
        print(f"coffee-orders: {exc}", file=sys.stderr)
        sys.exit(1)
