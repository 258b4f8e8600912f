"""The local Kafka's client listeners beyond PLAINTEXT: SASL users, TLS certificates, and the
broker properties and client settings for each.

Broker-to-broker and controller traffic stays on PLAINTEXT; the SASL_PLAINTEXT, SSL and SASL_SSL
listeners are for clients. Certificates live in ``<data dir>/tls`` (made at the first start,
reused after), passwords in ``<data dir>/sasl/<user>.password`` (mode 0600).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from coffee_orders_common.kafka_settings import KafkaSettings
from coffee_orders_common.setting_fields import declared_settings

ClientAuth = Literal["required", "requested", "none"]
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_MECHANISMS = ("PLAIN", *SCRAM_MECHANISMS)
CLIENT_CERT_NAME = "coffee-orders-client"


class TlsUnavailableError(Exception):
    """The ``cryptography`` package, which makes the certificates, is not installed."""


@dataclass(frozen=True)
class ClientSettings:
    """What a client needs to use one listener, named like the services' Kafka settings
    (``KafkaSettings``): secrets are files, never values."""

    listener: str
    brokers: str
    security_protocol: str
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_file: str | None = None

    def environment(self) -> dict[str, str]:
        """The services' environment variables (``KAFKA_*``) for these settings."""
        names = {declared.path: declared.env for declared in declared_settings(KafkaSettings)}
        values = {names[key]: value for key, value in asdict(self).items() if key in names}
        return {name: str(value) for name, value in values.items() if value}


class TlsMaterial:
    """The CA, one certificate per broker (SANs: localhost, 127.0.0.1, ::1) and one client
    certificate, in ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def client_cert(self) -> Path:
        return self.folder / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.folder / "client.key"

    def keystore(self, node_id: int) -> Path:
        """The PEM keystore (key + certificate) a broker starts with."""
        return self.folder / f"node-{node_id}.keystore.pem"

    def prepare(self, node_ids: list[int]) -> None:
        """Make what is missing: the CA, each broker's keystore, the client certificate."""
        if importlib.util.find_spec("cryptography") is None:
            raise TlsUnavailableError(
                "TLS listeners need the cryptography package to make certificates: "
                "pip install 'coffee-orders[localkafka]'"
            )
        from .certs import LOCAL_HOSTS, CertificateAuthority

        authority = CertificateAuthority(self.folder)
        for node_id in node_ids:
            if not self.keystore(node_id).exists():
                pair = authority.issue(
                    f"node-{node_id}", f"kafka-node-{node_id}", hosts=LOCAL_HOSTS, client=True
                )
                pair.keystore_pem(self.keystore(node_id))
        if not self.client_cert.exists():
            authority.issue("client", CLIENT_CERT_NAME, client=True)


def listener_properties(
    listener: str, keystore: Path, ca: Path, client_auth: ClientAuth
) -> dict[str, object]:
    """A TLS listener's broker properties: PEM keystore and truststore, client authentication.

    DN and SAN changes are allowed when a keystore is replaced at run time, so a certificate
    for the wrong host can be swapped for the right one without a restart.
    """
    prefix = f"listener.name.{listener.lower()}.ssl"
    return {
        f"{prefix}.keystore.type": "PEM",
        f"{prefix}.keystore.location": keystore,
        f"{prefix}.truststore.type": "PEM",
        f"{prefix}.truststore.location": ca,
        f"{prefix}.client.auth": client_auth,
        f"{prefix}.allow.dn.changes": "true",
        f"{prefix}.allow.san.changes": "true",
    }


def sasl_properties(listener: str, users: dict[str, str]) -> dict[str, object]:
    """PLAIN (users in the JAAS line) and SCRAM (users stored at format time) on ``listener``."""
    prefix = f"listener.name.{listener.lower()}"
    plain_users = " ".join(f'user_{user}="{password}"' for user, password in users.items())
    properties: dict[str, object] = {
        f"{prefix}.plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        )
    }
    for mechanism in SCRAM_MECHANISMS:
        properties[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        )
    return properties


def scram_format_arguments(users: dict[str, str]) -> list[str]:
    """``kafka-storage format`` arguments that store each user's SCRAM credentials."""
    return [
        f'--add-scram={mechanism}=[name="{user}",password="{password}"]'
        for user, password in users.items()
        for mechanism in SCRAM_MECHANISMS
    ]


def write_password_files(folder: Path, users: dict[str, str]) -> dict[str, Path]:
    """One ``<user>.password`` file per user (mode 0600), for ``KAFKA_SASL_PASSWORD_FILE``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for user, password in users.items():
        path = folder / f"{user}.password"
        path.touch(mode=0o600)
        path.write_text(password + "\n")
        files[user] = path
    return files
