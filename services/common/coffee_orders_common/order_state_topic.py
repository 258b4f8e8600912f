"""The order-state topic: created by the consumer when missing, checked when it exists.

Compacted (one record a key survives) and deleted past the window (``cleanup.policy`` both), so
what an instance restores at start is bounded by the window. A topic that exists without
compaction is refused: the state would grow without bound and old events would vanish whole.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from .kafka_errors import error_of

# The events of one order are a few hundred bytes and a transaction per batch of up to 500 of
# them: one partition takes far more than one consumer group writes. The view reads any number.
PARTITIONS = 1
_TIMEOUT_S = 15.0


class OrderStateTopicError(Exception):
    """The order-state topic cannot be used; the message says why, in one line.
    ``unreachable``: Kafka did not answer (it may later), rather than refused."""

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


def topic_config(window_s: float) -> dict[str, str]:
    return {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(int(window_s * 1000)),
        # Compaction looks at a segment once it is closed: a day at most, smaller when busy.
        "segment.ms": str(min(int(window_s * 1000), 86_400_000)),
    }


def ensure_order_state_topic(admin_config: dict[str, Any], name: str, window_s: float) -> bool:
    """Create ``name`` if missing (True when created); raise OrderStateTopicError when it
    cannot be created or exists without compaction."""
    config: dict[str, Any] = {**admin_config, "logger": logging.getLogger("librdkafka")}
    admin = AdminClient(config)
    try:
        metadata = admin.list_topics(name, timeout=_TIMEOUT_S)
    except KafkaException as exc:
        raise OrderStateTopicError(
            f"cannot read the metadata of {name}: {_text(exc)}", unreachable=True
        ) from None
    topic = metadata.topics.get(name)
    if topic is not None and topic.error is None:
        _check_compacted(admin, name)
        return False
    new = NewTopic(name, PARTITIONS, replication_factor=-1, config=topic_config(window_s))
    try:
        admin.create_topics([new], request_timeout=_TIMEOUT_S)[name].result(_TIMEOUT_S)
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:  # another instance was first
            return False
        raise OrderStateTopicError(
            f"the order-state topic {name} does not exist and cannot be created: {_text(exc)}"
        ) from None
    _wait_for_leaders(admin, name)
    return True


def _wait_for_leaders(admin: AdminClient, name: str) -> None:
    """Until the new topic's partitions have leaders (bounded): readers started right after
    would otherwise be told it does not exist."""
    deadline = time.monotonic() + _TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(KafkaException):
            topic = admin.list_topics(name, timeout=_TIMEOUT_S).topics.get(name)
            partitions = topic.partitions if topic is not None and topic.error is None else {}
            if partitions and all(p.leader >= 0 for p in partitions.values()):
                return
        time.sleep(0.1)


def _check_compacted(admin: AdminClient, name: str) -> None:
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    try:
        configs = admin.describe_configs([resource], request_timeout=_TIMEOUT_S)[resource].result(
            _TIMEOUT_S
        )
    except KafkaException as exc:
        raise OrderStateTopicError(
            f"cannot read the configuration of {name}: {_text(exc)}"
        ) from None
    entry = configs.get("cleanup.policy")
    policy = entry.value if entry is not None and entry.value else "delete"
    if "compact" not in policy.split(","):
        raise OrderStateTopicError(
            f"the order-state topic {name} is not compacted (its cleanup.policy is {policy}): "
            "give it the policies compact and delete, or delete it and let the consumer create it"
        )


def _text(exc: KafkaException) -> str:
    error = error_of(exc)
    return error.str() if error is not None else str(exc)
