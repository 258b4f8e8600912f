"""What an operator does to a running cluster: replace a broker's certificate, change a SCRAM
password, wait until every replica is in sync, restart the brokers one at a time."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from .cluster import LocalKafka, LocalKafkaError

if TYPE_CHECKING:
    from .certs import Pair

_SCRAM = {
    "SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256,
    "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512,
}
IN_SYNC_TIMEOUT_S = 120.0
# More handshakes than the broker has network threads (num.network.threads, default 3).
_HANDSHAKES_IN_A_ROW = 10


def replace_certificate(
    cluster: LocalKafka, node_id: int, listener: str, pair: Pair, timeout_s: float = 30.0
) -> Path:
    """Give ``listener`` of node ``node_id`` a new certificate without a restart (a dynamic
    broker config) and wait until the listener serves it: new connections get it, open ones
    keep the old one."""
    keystore = pair.keystore_pem(
        cluster.tls.folder / f"node-{node_id}-{listener.lower()}-{time.time_ns()}.keystore.pem"
    )
    entry = ConfigEntry(
        f"listener.name.{listener.lower()}.ssl.keystore.location",
        str(keystore),
        incremental_operation=AlterConfigOpType.SET,
    )
    resource = ConfigResource(ResourceType.BROKER, str(node_id), incremental_configs=[entry])
    admin = cluster.admin()  # kept until the futures are done: it serves them
    _wait_for(
        admin.incremental_alter_configs([resource], request_timeout=30),
        f"node {node_id} refused the new {listener} certificate",
    )
    # The controller has the change; the broker applies it when it replays the metadata log,
    # to one network thread after the other. New connections go to the threads in turn, so a
    # run of handshakes that all see the new certificate has reached every thread.
    port = cluster.node(node_id).client_listeners()[listener]
    wanted = ssl.PEM_cert_to_DER_cert(pair.cert.read_text())
    deadline = time.monotonic() + timeout_s
    in_a_row = 0
    while in_a_row < _HANDSHAKES_IN_A_ROW:
        in_a_row = in_a_row + 1 if served_certificate(port) == wanted else 0
        if time.monotonic() > deadline:
            raise LocalKafkaError(f"node {node_id} still serves its old {listener} certificate")
        if in_a_row == 0:
            time.sleep(0.1)
    return keystore


def served_certificate(port: int, host: str = "127.0.0.1") -> bytes | None:
    """The certificate (DER) a TLS listener presents, unverified; None if no handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            return tls.getpeercert(binary_form=True)
    except OSError:
        return None


def set_scram_password(
    cluster: LocalKafka, user: str, password: str, mechanism: str = "SCRAM-SHA-512"
) -> None:
    """Create or change a SCRAM user's password on the running cluster."""
    upsert = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(_SCRAM[mechanism], 4096), password.encode()
    )
    admin = cluster.admin()  # kept until the futures are done: it serves them
    _wait_for(
        admin.alter_user_scram_credentials([upsert], request_timeout=30),
        f"cannot set the password of {user}",
    )


def _wait_for(futures: Mapping[Any, Future[Any]], failure: str) -> None:
    """Wait for an admin request's results; one line (``failure``: why) if Kafka refused it."""
    try:
        for future in futures.values():
            future.result(timeout=30)
    except KafkaException as exc:
        raise LocalKafkaError(f"{failure}: {exc.args[0].str()}") from exc


def out_of_sync(cluster: LocalKafka) -> list[str]:
    """``topic/partition`` of each partition without a leader or with a replica not in sync."""
    try:
        metadata = cluster.admin().list_topics(timeout=5)
    except KafkaException as exc:
        return [f"(no metadata: {exc.args[0].str()})"]
    lagging = []
    for name, topic in metadata.topics.items():
        if topic.error is not None:
            lagging.append(f"{name} ({topic.error.str()})")
        for number, partition in topic.partitions.items():
            if partition.leader < 0 or set(partition.isrs) != set(partition.replicas):
                lagging.append(f"{name}/{number}")
    return lagging


def wait_in_sync(cluster: LocalKafka, timeout_s: float = IN_SYNC_TIMEOUT_S) -> float:
    """Wait until every partition of every topic has a leader and a full ISR; the seconds it
    took."""
    started = time.monotonic()
    lagging = out_of_sync(cluster)
    while lagging:
        if time.monotonic() - started > timeout_s:
            raise LocalKafkaError(
                f"replicas still out of sync after {timeout_s:.0f} s: {', '.join(lagging[:5])}"
            )
        time.sleep(0.2)
        lagging = out_of_sync(cluster)
    return time.monotonic() - started


@dataclass(frozen=True)
class RestartStep:
    node_id: int
    stopped_s: float  # SIGTERM to exit (a controlled shutdown moves leadership away first)
    started_s: float  # start to the client port accepting
    in_sync_s: float  # then until every replica was back in sync


def rolling_restart(
    cluster: LocalKafka, on_step: Callable[[RestartStep], None] | None = None
) -> list[RestartStep]:
    """Restart each broker in turn as an upgrade would: SIGTERM, start it again, wait until
    every replica is in sync, then the next one."""
    wait_in_sync(cluster)
    steps = []
    for node in cluster.nodes:
        began = time.monotonic()
        cluster.stop_node(node.node_id)
        stopped = time.monotonic()
        cluster.start_node(node.node_id)
        started = time.monotonic()
        step = RestartStep(
            node.node_id,
            round(stopped - began, 2),
            round(started - stopped, 2),
            round(wait_in_sync(cluster), 2),
        )
        steps.append(step)
        if on_step is not None:
            on_step(step)
    return steps
