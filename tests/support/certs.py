"""Certificates for the gRPC TLS tests, made with the local Kafka's certificate authority."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coffee_orders_localkafka.certs import CertificateAuthority, Pair


@dataclass(frozen=True)
class Authority:
    ca: Path
    server: Pair
    client: Pair
    stranger: Pair  # a client certificate from a different CA


def make_authority(folder: Path) -> Authority:
    authority = CertificateAuthority(folder, "coffee-orders test CA")
    server = authority.issue("server", "localhost", hosts=("localhost", "127.0.0.1"))
    client = authority.issue("client", "caller", client=True)
    another = CertificateAuthority(folder / "other", "another CA")
    stranger = another.issue("stranger", "stranger", client=True)
    return Authority(authority.cert_path, server, client, stranger)
