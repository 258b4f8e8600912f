"""Name the TLS problem behind a failed Kafka connection, in one line.

librdkafka reports every failed check of a broker's certificate alike ("certificate verify
failed: broker certificate could not be verified"), whether the CA is unknown, the certificate
has expired or it names another host. One handshake with Python's ``ssl`` module, with the same
CA and host name, gets OpenSSL's own reason. A broker refusing our client certificate shows as a
TLS alert on the first read.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError

_BROKER = re.compile(r"\b(?:sasl_)?ssl://(\[[^\]]+\]|[^\s:/]+):(\d+)/", re.IGNORECASE)
_CLIENT_CERTIFICATE_ALERT = re.compile(
    r"alert (bad certificate|certificate required|unknown ca|certificate unknown|"
    r"certificate expired|certificate revoked|access denied)",
    re.IGNORECASE,
)
_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class TlsProblem:
    """``broker_untrusted``: we cannot verify the broker; otherwise it refused our certificate."""

    broker_untrusted: bool
    detail: str


def tls_problem(error: KafkaError, config: Mapping[str, Any]) -> TlsProblem | None:
    """What went wrong, if ``error`` is a TLS failure; ``config`` is the client's librdkafka
    configuration (its CA and certificate settings). May take one handshake's time."""
    text = error.str()
    broker = _BROKER.search(text)
    host, port = (broker.group(1).strip("[]"), int(broker.group(2))) if broker else ("", 0)
    where = f"Kafka broker {host}:{port}" if broker else "a Kafka broker"
    if "certificate verify failed" in text:
        reason = _verify_reason(host, port, config) if broker else None
        reason = (reason or "certificate verify failed").rstrip(".")
        return TlsProblem(
            True,
            f"cannot verify the TLS certificate of {where}: {reason}; check the broker's "
            "certificate and KAFKA_SSL_CA_LOCATION",
        )
    alert = _CLIENT_CERTIFICATE_ALERT.search(text)
    if alert is None:
        return None
    if config.get("ssl.certificate.location") or config.get("ssl.certificate.pem"):
        why = f"TLS alert {alert.group(1)} (is the client certificate signed by a CA it trusts?)"
    else:
        why = (
            "it requires a client certificate and none is configured "
            "(KAFKA_SSL_CERTIFICATE_LOCATION, KAFKA_SSL_KEY_LOCATION)"
        )
    return TlsProblem(False, f"{where} refused the TLS client certificate: {why}")


def _verify_reason(host: str, port: int, config: Mapping[str, Any]) -> str | None:
    """OpenSSL's reason for rejecting the certificate at host:port, or None if it does not
    reject it from here (or the broker cannot be reached)."""
    try:
        context = _context(config)
        with (
            socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message)
    except (OSError, ValueError):
        return None


def _context(config: Mapping[str, Any]) -> ssl.SSLContext:
    location = config.get("ssl.ca.location")
    if config.get("ssl.ca.pem"):
        context = ssl.create_default_context(cadata=str(config["ssl.ca.pem"]))
    elif location and location != "probe" and Path(location).is_dir():
        context = ssl.create_default_context(capath=location)
    elif location and location != "probe":
        context = ssl.create_default_context(cafile=location)
    else:
        context = ssl.create_default_context()
    identification = str(config.get("ssl.endpoint.identification.algorithm", "https"))
    context.check_hostname = identification.lower() != "none"
    return context
