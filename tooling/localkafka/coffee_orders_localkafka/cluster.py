"""Start, stop and inspect a local KRaft Kafka cluster (1 or 3 nodes) whose processes we own by PID.

State lives in the data dir: ``cluster.json`` (ports, cluster id) and one folder a node with its
``server.properties``, ``kafka.pid``, ``server.log`` and ``stdout.log``. A stopped cluster started
again with the same data dir keeps its messages.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from .jars import KAFKA_VERSION, ToolMissingError, kafka_lib_dir, log4j_config_path, require_tool
from .proc_stat import process_gone
from .security import (
    SASL_MECHANISMS,
    ClientAuth,
    ClientSettings,
    TlsMaterial,
    TlsUnavailableError,
    listener_properties,
    sasl_properties,
    scram_format_arguments,
    write_password_files,
)

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
# How long a node's controller waits for its heartbeat before fencing it: a killed broker is
# noticed in seconds rather than Kafka's 9 s. It is also how long a SIGKILLed node, started again,
# waits before it may register (DUPLICATE_BROKER_REGISTRATION until the old session ends). A lone
# node paused for longer is fenced by its own controller as it resumes, and Kafka may then skip
# the markers of transactions it was ending (docs/reliability.md, known limits).
BROKER_SESSION_TIMEOUT_MS = 6000


class LocalKafkaError(Exception):
    """One line for a person: what failed and where the broker's log is."""


@dataclass(frozen=True)
class NodeSpec:
    node_id: int
    broker_port: int
    controller_port: int
    sasl_port: int = 0  # 0: no SASL_PLAINTEXT listener
    ssl_port: int = 0  # 0: no SSL listener
    sasl_ssl_port: int = 0  # 0: no SASL_SSL listener

    def client_listeners(self) -> dict[str, int]:
        """Listener name (= its security protocol) -> port, for each listener clients use."""
        ports = {
            "PLAINTEXT": self.broker_port,
            "SASL_PLAINTEXT": self.sasl_port,
            "SSL": self.ssl_port,
            "SASL_SSL": self.sasl_ssl_port,
        }
        return {name: port for name, port in ports.items() if port}


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    pid: int | None
    running: bool
    broker_port: int
    log_path: Path


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# Ports for our brokers and services are taken from here up to the OS's ephemeral range.
FIRST_PORT = 10000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_low() -> int:
    """The lowest port the OS gives a connecting client as its source port."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_ports(count: int) -> list[int]:
    """``count`` different ports free right now, below the OS's ephemeral range.

    Not from ``bind(0)``, which takes them from that range: a client reconnecting to a stopped
    broker gets source ports from it too, and when one equals the port it connects to, TCP
    connects it to itself and it holds the port the broker needs to start again ("port ... is in
    use"; seen once in a black-box attack with brokers killed and restarted)."""
    low = ephemeral_low()
    if low - FIRST_PORT < 100 * count:  # an unusual system: whatever the OS hands out
        return _os_assigned_ports(count)
    ports: list[int] = []
    for port in random.sample(range(FIRST_PORT, low), min(low - FIRST_PORT, 50 * count)):
        if port_is_free(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise LocalKafkaError(f"no {count} free ports between {FIRST_PORT} and {low}")


def _os_assigned_ports(count: int) -> list[int]:
    """Ports the OS says are free right now (all held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def default_ports(first_port: int, nodes: int, tls: bool = False) -> list[NodeSpec]:
    """Node i serves clients on first_port + 100*i and its quorum on the port after that; with
    ``tls``, SSL on the port after that and SASL_SSL on the next."""
    specs = []
    for i in range(nodes):
        port = first_port + 100 * i
        tls_ports = (port + 2, port + 3) if tls else (0, 0)
        specs.append(NodeSpec(i + 1, port, port + 1, 0, *tls_ports))
    return specs


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        return not process_gone(pid)
    except (OSError, IndexError):
        return True


def _pid_is_our_broker(pid: int, node_dir: Path) -> bool:
    """Guard against PID reuse: the process must be a java broker started on this node's config."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(node_dir / "server.properties").encode() in cmdline


class LocalKafka:
    """A 1- or 3-node KRaft cluster in ``data_dir``."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        nodes: int = 1,
        port: int = 9092,
        node_specs: list[NodeSpec] | None = None,
        topic: str = "coffee_orders",
        partitions: int = 6,
        heap: str = "768m",
        sasl_users: dict[str, str] | None = None,
        tls: bool = False,
        ssl_client_auth: ClientAuth = "required",
        broker_session_timeout_ms: int = BROKER_SESSION_TIMEOUT_MS,
        broker_properties: dict[str, str] | None = None,
    ) -> None:
        """``sasl_users`` (name -> password) are accepted on each node's ``sasl_port`` and
        ``sasl_ssl_port``. ``tls`` gives the default ports an SSL and a SASL_SSL listener
        (``node_specs`` say so themselves); ``ssl_client_auth`` is the SSL listener's
        ``ssl.client.auth``: "required" is mutual TLS. ``broker_properties`` replace or add to
        each node's server.properties (e.g. Kafka's own default ``auto.create.topics.enable``)."""
        if nodes not in (1, 3):
            raise LocalKafkaError(f"--nodes must be 1 or 3, got {nodes}")
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.topic = topic
        self.partitions = partitions
        self.heap = heap
        self.sasl_users = dict(sasl_users or {})
        self.ssl_client_auth: ClientAuth = ssl_client_auth
        self.broker_session_timeout_ms = broker_session_timeout_ms
        self.broker_properties = dict(broker_properties or {})
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        saved = self._read_state()
        if saved is not None:
            self.nodes = [NodeSpec(**n) for n in saved["nodes"]]
            self.cluster_id: str = saved["cluster_id"]
            self.sasl_users = saved.get("sasl_users", self.sasl_users)
            self.ssl_client_auth = saved.get("ssl_client_auth", self.ssl_client_auth)
        else:
            self.nodes = node_specs or default_ports(port, nodes, tls)
            self.cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self.tls = TlsMaterial(self.data_dir / "tls")

    # ---- paths and state -------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.data_dir / "cluster.json"

    def node_dir(self, node_id: int) -> Path:
        return self.data_dir / f"node-{node_id}"

    def log_path(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "server.log"

    def log_paths(self) -> list[Path]:
        return [self.log_path(n.node_id) for n in self.nodes]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.broker_port}" for n in self.nodes)

    @property
    def sasl_bootstrap_servers(self) -> str:
        return self.listener_bootstrap_servers("SASL_PLAINTEXT")

    def listener_bootstrap_servers(self, listener: str) -> str:
        """``127.0.0.1:PORT,...`` of one listener (PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL)."""
        ports = (n.client_listeners().get(listener) for n in self.nodes)
        return ",".join(f"127.0.0.1:{port}" for port in ports if port)

    @property
    def listeners(self) -> list[str]:
        """The client listeners every node has, PLAINTEXT first."""
        return list(self.nodes[0].client_listeners())

    @property
    def uses_tls(self) -> bool:
        return any(n.ssl_port or n.sasl_ssl_port for n in self.nodes)

    @property
    def uses_sasl(self) -> bool:
        return any(n.sasl_port or n.sasl_ssl_port for n in self.nodes)

    def client_settings(self, listener: str, user: str | None = None) -> ClientSettings:
        """How a client reaches ``listener``: SASL as ``user`` (the first user when None) with
        SCRAM-SHA-512, the client certificate where the SSL listener asks for one."""
        if listener not in self.listeners:
            raise LocalKafkaError(f"this cluster has no {listener} listener")
        settings = ClientSettings(listener, self.listener_bootstrap_servers(listener), listener)
        if listener.endswith("SSL"):
            settings = replace(settings, ssl_ca_location=str(self.tls.ca))
        if listener == "SSL" and self.ssl_client_auth != "none":
            settings = replace(
                settings,
                ssl_certificate_location=str(self.tls.client_cert),
                ssl_key_location=str(self.tls.client_key),
            )
        if listener.startswith("SASL"):
            name = user or next(iter(self.sasl_users))
            settings = replace(
                settings,
                sasl_mechanism="SCRAM-SHA-512",
                sasl_username=name,
                sasl_password_file=str(self.password_files()[name]),
            )
        return settings

    def password_files(self) -> dict[str, Path]:
        """Each SASL user's password in a file of its own (mode 0600)."""
        return write_password_files(self.data_dir / "sasl", self.sasl_users)

    @property
    def replication_factor(self) -> int:
        return min(3, len(self.nodes))

    def _read_state(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LocalKafkaError(f"cannot read {self.state_file}: {exc}") from exc
        return data if isinstance(data, dict) else None

    def _write_state(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "kafka_version": KAFKA_VERSION,
            "cluster_id": self.cluster_id,
            "nodes": [asdict(n) for n in self.nodes],
            "sasl_users": self.sasl_users,  # throwaway test credentials, kept for restarts
            "ssl_client_auth": self.ssl_client_auth,
        }
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def _pid(self, node_id: int) -> int | None:
        try:
            pid = int((self.node_dir(node_id) / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) and _pid_is_our_broker(pid, self.node_dir(node_id)) else None

    # ---- configuration ---------------------------------------------------------------------
    def _server_properties(self, node: NodeSpec) -> str:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        replicas = self.replication_factor
        min_isr = 2 if replicas == 3 else 1
        clients = [f"{name}://127.0.0.1:{port}" for name, port in node.client_listeners().items()]
        protocols = ["CONTROLLER", *node.client_listeners()]
        lines: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": ",".join([*clients, f"CONTROLLER://127.0.0.1:{node.controller_port}"]),
            "advertised.listeners": ",".join(clients),
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": ",".join(
                f"{name}:{'PLAINTEXT' if name == 'CONTROLLER' else name}" for name in protocols
            ),
            "log.dirs": self.node_dir(node.node_id) / "data",
            "num.partitions": self.partitions,
            "auto.create.topics.enable": "false",
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": 6,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            # A transaction left open by a killed process (the consumer's order-state
            # transactions) is aborted within a second of its timeout, not within ten
            # (docs/kafka-integration.md recommends the same for production brokers).
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": 1000,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": 0,
            "broker.session.timeout.ms": self.broker_session_timeout_ms,
            "broker.heartbeat.interval.ms": 1000,
        }
        if node.sasl_port or node.sasl_ssl_port:
            lines["sasl.enabled.mechanisms"] = ",".join(SASL_MECHANISMS)
        for listener in ("SASL_PLAINTEXT", "SASL_SSL"):
            if listener in node.client_listeners():
                lines.update(sasl_properties(listener, self.sasl_users))
        keystore = self.tls.keystore(node.node_id)
        if node.ssl_port:
            lines.update(listener_properties("SSL", keystore, self.tls.ca, self.ssl_client_auth))
        if node.sasl_ssl_port:
            lines.update(listener_properties("SASL_SSL", keystore, self.tls.ca, "none"))
        lines.update(self.broker_properties)
        return "".join(f"{key}={value}\n" for key, value in lines.items())

    def _java_command(self, lib: Path, node: NodeSpec, main: str, *args: str) -> list[str]:
        java = require_tool(
            "java", "install a Java 17+ runtime (e.g. apt-get install openjdk-17-jre)"
        )
        return [
            java,
            f"-Xmx{self.heap}",
            "-Xms256m",
            f"-Dkafka.logs.dir={self.node_dir(node.node_id)}",
            f"-Dlog4j2.configurationFile={log4j_config_path()}",
            "-cp",
            f"{lib}/*",
            main,
            *args,
        ]

    def _prepare_node(self, lib: Path, node: NodeSpec) -> None:
        folder = self.node_dir(node.node_id)
        folder.mkdir(parents=True, exist_ok=True)
        properties = folder / "server.properties"
        properties.write_text(self._server_properties(node))
        if (folder / "data" / "meta.properties").exists():
            return  # formatted earlier: keep the data
        command = self._java_command(
            lib,
            node,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={self.cluster_id}",  # one token: an id may start with "-"
            "-c",
            str(properties),
            *scram_format_arguments(self.sasl_users if self.uses_sasl else {}),
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = " ".join((result.stderr or result.stdout).split())[-300:]
            raise LocalKafkaError(f"formatting storage for node {node.node_id} failed: {detail}")

    # ---- lifecycle -------------------------------------------------------------------------
    def up(self, timeout_s: float = READY_TIMEOUT_S) -> str:
        """Start every node that is not running, wait until usable, create the topics."""
        try:
            lib = kafka_lib_dir()
            to_start = [n for n in self.nodes if self._pid(n.node_id) is None]
            if self.uses_sasl and not self.sasl_users:
                raise LocalKafkaError("a SASL listener needs at least one SASL user")
            for node in to_start:
                for port in (*node.client_listeners().values(), node.controller_port):
                    if not port_is_free(port):
                        raise LocalKafkaError(
                            f"port {port} is in use (needed by Kafka node {node.node_id}); "
                            "stop what holds it or pick another --port"
                        )
            self._write_state()  # only now: a refused start leaves the data dir unclaimed
            if self.uses_tls:
                self.tls.prepare([n.node_id for n in self.nodes])
            for node in to_start:
                self._prepare_node(lib, node)
            for node in to_start:
                self._spawn(lib, node)
        except (ToolMissingError, TlsUnavailableError) as exc:
            raise LocalKafkaError(str(exc)) from exc
        self.wait_ready(timeout_s)
        self.ensure_topics([self.topic, f"{self.topic}.dlq"])
        return self.bootstrap_servers

    def _spawn(self, lib: Path, node: NodeSpec) -> None:
        folder = self.node_dir(node.node_id)
        command = self._java_command(lib, node, "kafka.Kafka", str(folder / "server.properties"))
        with open(folder / "stdout.log", "ab") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._processes[node.node_id] = process
        (folder / "kafka.pid").write_text(f"{process.pid}\n")

    def start_node(self, node_id: int, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start one stopped node again (its data is kept) and wait for its client port."""
        node = self.node(node_id)
        if self._pid(node_id) is None:
            self._spawn(kafka_lib_dir(), node)
        self._wait(lambda: port_accepts(node.broker_port), timeout_s, [node])

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node, as a crash would."""
        pid = self._pid(node_id)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            self._reap(node_id, pid, 10.0)

    def stop_node(self, node_id: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM one node and wait; SIGKILL it if it does not exit in time."""
        pid = self._pid(node_id)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        if not self._reap(node_id, pid, timeout_s):
            os.kill(pid, signal.SIGKILL)
            self._reap(node_id, pid, 10.0)

    def down(self) -> list[int]:
        """Stop every node by PID; returns the PIDs that were stopped."""
        stopped = []
        for node in self.nodes:
            pid = self._pid(node.node_id)
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
                stopped.append((node.node_id, pid))
        for node_id, pid in stopped:
            if not self._reap(node_id, pid, STOP_TIMEOUT_S):
                os.kill(pid, signal.SIGKILL)
                self._reap(node_id, pid, 10.0)
        for node in self.nodes:
            (self.node_dir(node.node_id) / "kafka.pid").unlink(missing_ok=True)
        return [pid for _, pid in stopped]

    def _reap(self, node_id: int, pid: int, timeout_s: float) -> bool:
        process = self._processes.pop(node_id, None)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                return True
            if process is None and not _pid_alive(pid):
                return True
            time.sleep(0.05)
        if process is not None:
            self._processes[node_id] = process
        return False

    def status(self) -> list[NodeStatus]:
        result = []
        for node in self.nodes:
            pid = self._pid(node.node_id)
            running = pid is not None and port_accepts(node.broker_port)
            result.append(
                NodeStatus(
                    node.node_id, pid, running, node.broker_port, self.log_path(node.node_id)
                )
            )
        return result

    # ---- readiness and topics --------------------------------------------------------------
    def node(self, node_id: int) -> NodeSpec:
        return next(n for n in self.nodes if n.node_id == node_id)

    def _wait(self, ready: Callable[[], bool], timeout_s: float, nodes: Iterable[NodeSpec]) -> None:
        deadline = time.monotonic() + timeout_s
        nodes = list(nodes)
        while time.monotonic() < deadline:
            for node in nodes:
                process = self._processes.get(node.node_id)
                if process is not None and process.poll() is not None:
                    raise LocalKafkaError(
                        f"Kafka node {node.node_id} exited with code {process.returncode} while "
                        f"starting; see {self.log_path(node.node_id)} and "
                        f"{self.node_dir(node.node_id) / 'stdout.log'}"
                    )
            if ready():
                return
            time.sleep(0.1)
        logs = ", ".join(str(self.log_path(n.node_id)) for n in nodes)
        raise LocalKafkaError(f"Kafka did not become ready within {timeout_s:.0f} s; see {logs}")

    def _cluster_usable(self) -> bool:
        if not all(port_accepts(n.broker_port) for n in self.nodes):
            return False
        try:
            metadata = self.admin().list_topics(timeout=2)
        except KafkaException:
            return False
        return len(metadata.brokers) == len(self.nodes)

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        self._wait(self._cluster_usable, timeout_s, self.nodes)

    def admin(self) -> AdminClient:
        return AdminClient(
            {"bootstrap.servers": self.bootstrap_servers, "client.id": "local-kafka"}
        )

    def ensure_topics(self, names: Iterable[str], partitions: int | None = None) -> None:
        """Create the topics that do not exist yet (idempotent)."""
        admin = self.admin()
        existing = set(admin.list_topics(timeout=10).topics)
        config = {"min.insync.replicas": "2"} if self.replication_factor == 3 else {}
        wanted = [
            NewTopic(name, partitions or self.partitions, self.replication_factor, config=config)
            for name in names
            if name not in existing
        ]
        if not wanted:
            return
        for name, future in admin.create_topics(wanted, request_timeout=30).items():
            try:
                future.result(timeout=30)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise LocalKafkaError(
                        f"cannot create topic {name}: {exc.args[0].str()}"
                    ) from exc
        self._wait(lambda: self._topics_have_leaders(wanted), 30.0, self.nodes)

    def _topics_have_leaders(self, topics: list[NewTopic]) -> bool:
        try:
            metadata = self.admin().list_topics(timeout=2)
        except KafkaException:
            return False
        for topic in topics:
            info = metadata.topics.get(topic.topic)
            if (
                info is None
                or info.error is not None
                or len(info.partitions) < topic.num_partitions
            ):
                return False
            if any(p.leader < 0 for p in info.partitions.values()):
                return False
        return True


def on_free_ports(
    data_dir: Path,
    nodes: int = 1,
    topic: str = "coffee_orders",
    sasl_users: dict[str, str] | None = None,
    tls: bool = False,
    broker_session_timeout_ms: int = BROKER_SESSION_TIMEOUT_MS,
    broker_properties: dict[str, str] | None = None,
) -> LocalKafka:
    """A cluster on free ports: a SASL_PLAINTEXT port per node when users are given, and with
    ``tls`` an SSL port (client certificates required) and a SASL_SSL port too."""
    ports = iter(free_ports(5 * nodes))
    specs = [
        NodeSpec(
            i + 1,
            next(ports),
            next(ports),
            next(ports) if sasl_users else 0,
            next(ports) if tls else 0,
            next(ports) if tls and sasl_users else 0,
        )
        for i in range(nodes)
    ]
    return LocalKafka(
        data_dir,
        nodes=nodes,
        node_specs=specs,
        topic=topic,
        sasl_users=sasl_users,
        broker_session_timeout_ms=broker_session_timeout_ms,
        broker_properties=broker_properties,
    )
