"""librdkafka configuration dicts built from the typed settings, in one place."""

from __future__ import annotations

from pydantic import SecretStr

from .kafka_settings import KafkaSettings

# How often clients re-read the topic's metadata. librdkafka's default is 5 minutes: partitions
# added to the topic went unused by the producer and unread by the consumer group for up to that
# long, and a deleted and recreated topic unread as long. Every 10 s is one small metadata request
# per client, and new partitions are used within seconds (docs/reliability.md).
METADATA_REFRESH_MS = 10_000


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _client_base(kafka: KafkaSettings, client_id: str) -> dict[str, str]:
    config = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "client.id": client_id,
        # Fail fast on a dead broker instead of waiting minutes for TCP timeouts.
        "socket.connection.setup.timeout.ms": "5000",
        "reconnect.backoff.max.ms": "2000",
        "topic.metadata.refresh.interval.ms": str(METADATA_REFRESH_MS),
    }
    security = {
        "security.protocol": kafka.security_protocol,
        "sasl.mechanism": kafka.sasl_mechanism,
        "sasl.username": kafka.sasl_username,
        "sasl.password": _secret(kafka.sasl_password),
        "ssl.ca.location": kafka.ssl_ca_location,
        "ssl.certificate.location": kafka.ssl_certificate_location,
        "ssl.key.location": kafka.ssl_key_location,
        "ssl.key.password": _secret(kafka.ssl_key_password),
    }
    config.update({key: value for key, value in security.items() if value})
    return config


def producer_config(
    kafka: KafkaSettings, client_id: str = "coffee-orders-producer"
) -> dict[str, str]:
    """Producer settings: acks, retries and a bounded delivery timeout from the settings."""
    config = _client_base(kafka, client_id)
    config.update(
        {
            "acks": kafka.required_acks,
            "enable.idempotence": "true" if kafka.required_acks == "all" else "false",
            "retries": str(kafka.retry_max),
            "message.timeout.ms": str(kafka.delivery_timeout_ms),
            "request.timeout.ms": str(min(kafka.delivery_timeout_ms, 30_000)),
            "linger.ms": "1",
        }
    )
    config.update(kafka.properties)
    return config


def consumer_config(
    kafka: KafkaSettings, client_id: str = "coffee-orders-consumer"
) -> dict[str, str]:
    """At-least-once consumer: offsets are stored by the application after processing."""
    config = _client_base(kafka, client_id)
    config.update(
        {
            "group.id": kafka.group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.offset.store": "false",
            "enable.auto.commit": "true",
            "auto.commit.interval.ms": "1000",
            "partition.assignment.strategy": "cooperative-sticky",
            # A crashed member's partitions move on after 10 s instead of Kafka's default 45 s.
            "session.timeout.ms": "10000",
            "heartbeat.interval.ms": "3000",
        }
    )
    config.update(kafka.properties)
    return config


def admin_config(kafka: KafkaSettings, client_id: str = "coffee-orders-admin") -> dict[str, str]:
    """Admin/metadata client settings (properties passed through, for security settings).

    Asking for a topic's metadata never creates it: librdkafka's default for this kind of client
    would let a broker with ``auto.create.topics.enable`` (Kafka's default) create it with the
    broker's defaults, so the order-state topic came out uncompacted and the consumer refused its
    own creation (exit 2)."""
    config = _client_base(kafka, client_id)
    config["allow.auto.create.topics"] = "false"
    config.update(kafka.properties)
    return config
