"""Services pointed at one listener of a local Kafka, the way an operator would: KAFKA_* vars."""

from __future__ import annotations

from pathlib import Path

from coffee_orders_common.kafka_settings import KafkaSettings
from coffee_orders_common.settings import ServiceSettings, load_settings
from coffee_orders_consumer.settings import ConsumerSettings
from coffee_orders_localkafka import LocalKafka
from coffee_orders_producer.settings import ProducerSettings

from tests.support.services import consumer_settings, producer_settings


def listener_environment(cluster: LocalKafka, listener: str, **env: str) -> dict[str, str]:
    """The KAFKA_* variables ``kafka up`` prints for ``listener``, with ``env`` on top."""
    return {**cluster.client_settings(listener).environment(), **env}


def kafka_settings(cluster: LocalKafka, listener: str, **env: str) -> KafkaSettings:
    """The Kafka settings a service loads from those variables."""
    environ = listener_environment(cluster, listener, **env)
    return load_settings(ServiceSettings, environ=environ).kafka


def services_on(kafka: KafkaSettings, state_dir: Path) -> tuple[ProducerSettings, ConsumerSettings]:
    """Producer and consumer settings (gRPC on free ports) using ``kafka``."""
    bootstrap = kafka.bootstrap_servers
    producing = producer_settings(bootstrap).model_copy(update={"kafka": kafka})
    consuming = consumer_settings(bootstrap, kafka.group_id)
    return producing, consuming.model_copy(update={"kafka": kafka})
