"""The local Kafka that every other test stands on: restart with data, 3 nodes, clear errors."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from coffee_orders_devtools.processes import CLI
from coffee_orders_localkafka import LocalKafka, LocalKafkaError
from coffee_orders_localkafka.jars import kafka_lib_dir
from coffee_orders_localkafka.proc_stat import process_gone

from tests.conftest import new_cluster
from tests.support.kafka_io import consume_all, produce_all
from tests.support.processes import free_port_pair

pytestmark = pytest.mark.kafka


def test_restart_with_same_data_dir_keeps_messages(
    tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> None:
    cluster = new_cluster(tmp_path / "kafka")
    for path in cluster.log_paths():
        show_logs_on_failure(path)
    try:
        cluster.up()
        acked = produce_all(cluster.bootstrap_servers, "coffee_orders", [b"before-restart"])
        assert len(acked) == 1
        assert cluster.down(), "down() stopped no process"
        assert not any(node.pid for node in cluster.status())

        again = LocalKafka(tmp_path / "kafka")  # same data dir: ports and cluster id come back
        assert again.bootstrap_servers == cluster.bootstrap_servers
        again.up()
        values = [m.value() for m in consume_all(again.bootstrap_servers, "coffee_orders", 1)]
        assert values == [b"before-restart"]
    finally:
        cluster.down()


@pytest.mark.cluster
def test_three_nodes_survive_a_killed_broker(
    kafka_cluster_factory: Callable[..., LocalKafka],
) -> None:
    cluster: LocalKafka = kafka_cluster_factory(nodes=3)
    metadata = cluster.admin().list_topics("coffee_orders", timeout=10).topics["coffee_orders"]
    assert all(len(p.replicas) == 3 for p in metadata.partitions.values())

    first = produce_all(
        cluster.bootstrap_servers, "coffee_orders", [f"a-{i}".encode() for i in range(200)]
    )
    victim = metadata.partitions[0].leader
    cluster.kill_node(victim)
    survivors = ",".join(f"127.0.0.1:{n.broker_port}" for n in cluster.nodes if n.node_id != victim)
    second = produce_all(survivors, "coffee_orders", [f"b-{i}".encode() for i in range(200)])

    acknowledged = {m.value() for m in first + second}
    assert len(acknowledged) == 400
    consumed = {m.value() for m in consume_all(survivors, "coffee_orders", 400)}
    assert acknowledged <= consumed

    cluster.start_node(victim)
    assert all(node.running for node in cluster.status())


def test_cli_up_status_down_leaves_no_java_process(
    tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> None:
    port = free_port_pair()
    data_dir = tmp_path / "cli-kafka"
    show_logs_on_failure(data_dir / "node-1" / "server.log")
    try:
        up = _cli("kafka", "up", "--port", str(port), "--data-dir", str(data_dir))
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip() == f"127.0.0.1:{port}"
        status = _cli("kafka", "status", "--data-dir", str(data_dir))
        assert status.returncode == 0 and "running" in status.stdout, status.stdout
        pid = int((data_dir / "node-1" / "kafka.pid").read_text())
    finally:
        down = _cli("kafka", "down", "--data-dir", str(data_dir))
    assert down.returncode == 0, down.stderr
    assert process_gone(pid)  # or only its zombie
    status = _cli("kafka", "status", "--data-dir", str(data_dir))
    assert status.returncode == 3 and "stopped" in status.stdout


def test_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _cli("kafka", "up", "--port", str(port), "--data-dir", str(tmp_path / "k"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        f"coffee-orders kafka: error: port {port} is in use (needed by Kafka "
        "node 1); stop what holds it or pick another --port"
    )
    assert "Traceback" not in result.stderr


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    kafka_lib_dir()  # jars cached, so only java is missing
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {**os.environ, "PATH": str(bin_dir)}
    port = free_port_pair()
    result = _cli("kafka", "up", "--port", str(port), "--data-dir", str(tmp_path / "k"), env=env)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("coffee-orders kafka: error: java not found on PATH")
    )


def test_broker_that_does_not_come_up_names_its_log(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path / "broken")
    try:
        cluster.up()
    finally:
        cluster.down()
    meta = tmp_path / "broken" / "node-1" / "data" / "meta.properties"
    meta.write_text(meta.read_text().replace("version=1", "version=99"))  # unreadable storage
    with pytest.raises(
        LocalKafkaError, match=r"exited with code \d+ while starting; see .*server.log"
    ):
        cluster.up(timeout_s=60)
    assert cluster.down() == []


def test_three_node_properties_use_replication_three_and_min_isr_two(tmp_path: Path) -> None:
    cluster = LocalKafka(tmp_path, nodes=3, port=40000)
    text = cluster._server_properties(cluster.nodes[1])
    assert "node.id=2\n" in text
    assert "default.replication.factor=3\n" in text
    assert "min.insync.replicas=2\n" in text
    assert "controller.quorum.voters=1@127.0.0.1:40001,2@127.0.0.1:40101,3@127.0.0.1:40201" in text


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=150, env=env, check=False
    )


def test_a_cluster_id_starting_with_a_dash_formats_and_starts(tmp_path: Path) -> None:
    """Kafka's storage tool once read such an id as an option (found by a flaky test run)."""
    cluster = new_cluster(tmp_path / "dash")
    cluster.cluster_id = "-" + cluster.cluster_id[1:]
    try:
        assert cluster.up()
    finally:
        cluster.down()
