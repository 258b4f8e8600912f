"""Ports for the services the tests start, and what their output says."""

from __future__ import annotations

from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_localkafka.cluster import free_ports, port_is_free


def free_port_pair() -> int:
    """A free port P with P+1 also free (a service and its metrics, a broker and its controller)."""
    return free_port_run(2)


def free_port_run(count: int, rounds: int = 50) -> int:
    """A free port P with the ``count - 1`` ports after it free too (several batches tried:
    on a busy machine a port next to a free one may be taken)."""
    for _ in range(rounds):
        for port in free_ports(20):
            if all(port_is_free(port + i) for i in range(1, count)):
                return port
    raise AssertionError(f"no {count} free ports in a row in {rounds} x 20 candidates")


def brewed_in_output(*commands: RunningCommand | None) -> list[str]:
    """order_ids the given consumer processes logged as processed ("brewing ..." lines)."""
    return [
        line.split("order_id=")[1].split()[0]
        for command in commands
        if command is not None
        for line in command.output().splitlines()
        if " brewing " in line
    ]
