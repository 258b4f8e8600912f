"""Ports for local brokers and services: free, different, and below the ephemeral range, where a
reconnecting client can never be given one as its source port and connect to itself."""

from __future__ import annotations

import random
import socket

import pytest
from coffee_orders_localkafka import cluster
from coffee_orders_localkafka.cluster import FIRST_PORT, ephemeral_low, free_ports, port_is_free


def test_free_ports_are_different_free_and_below_the_ephemeral_range() -> None:
    ports = free_ports(40)
    assert len(set(ports)) == 40
    assert all(FIRST_PORT <= port < ephemeral_low() for port in ports)
    assert all(port_is_free(port) for port in ports)


def test_a_port_something_listens_on_is_never_given(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setattr(cluster, "ephemeral_low", lambda: 60000)
        monkeypatch.setattr(random, "sample", lambda _range, _k: [taken, 20001, 20002])
        assert taken not in free_ports(1)
