"""The Go peers (bench/peers): the same job in Go, built on first use, run on the same broker.

- ``httpsarama``: the original system's shape, net/http ``POST /order`` with a JSON body and an
  IBM/sarama SyncProducer (acks=all, idempotent), driven by hey;
- ``grpcfranz``: the coffee.orders.v1 contract (PlaceOrder and the PlaceOrders stream) with
  grpc-go and a franz-go producer (acks=all, idempotent, linger 1 ms), driven by ghz and
  streamload like the Python producer.
"""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from bench.ghz import ROOT
from bench.processes import Measured, program

SOURCE = ROOT / "bench" / "peers"
BIN = ROOT / ".tools" / "bin"
HTTP_PEER, GRPC_PEER = "httpsarama", "grpcfranz"
# The modules whose versions the report names (pinned in bench/peers/go.mod).
REPORTED_MODULES = ("github.com/IBM/sarama", "github.com/twmb/franz-go", "google.golang.org/grpc")


def build() -> None:
    """``go build`` (cached by Go) of both peers into .tools/bin."""
    for peer in (HTTP_PEER, GRPC_PEER):
        subprocess.run(
            ["go", "build", "-o", str(BIN / peer), f"./{peer}"], cwd=SOURCE, check=True, timeout=600
        )


def versions() -> dict[str, str]:
    """The pinned versions of the Kafka and gRPC modules the peers use, from go.mod."""
    text = (SOURCE / "go.mod").read_text()
    found = {}
    for module in REPORTED_MODULES:
        match = re.search(rf"^\s*{re.escape(module)} (v\S+)", text, re.M)
        if match:
            found[module.rsplit("/", 1)[-1]] = match[1]
    go = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=False)
    found["go"] = go.stdout.strip()
    return found


def _http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def http_peer(listen: str, brokers: str, topic: str, logs: Path) -> Measured:
    """The Sarama peer, started; see wait_http_ready."""
    return program(
        f"go-{HTTP_PEER}", BIN / HTTP_PEER,
        ["-listen", listen, "-brokers", brokers, "-topic", topic], logs,
    )  # fmt: skip


def wait_http_ready(listen: str, peer: Measured, timeout_s: float = 60.0) -> str:
    """Wait until the Sarama peer answers its health URL; returns its ``POST /order`` URL."""
    peer.wait_while_running(
        lambda: _http_ready(f"http://{listen}/healthz"), timeout_s, f"{peer.name} at {listen}"
    )
    return f"http://{listen}/order"


def grpc_peer(listen: str, brokers: str, topic: str, logs: Path) -> Measured:
    """The franz-go peer, started; it answers gRPC health checks once Kafka answered it."""
    return program(
        f"go-{GRPC_PEER}", BIN / GRPC_PEER,
        ["-listen", listen, "-brokers", brokers, "-topic", topic], logs,
    )  # fmt: skip
