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
_RETRY_S = 0.2

# Answers that pass by themselves. A topic another instance has just created reaches the brokers
# one by one (KRaft hands out metadata asynchronously), so a broker may not know it yet; a broker
# paused, restarting or electing answers late or not at all. Retried until the bound, then
# reported as Kafka not answering (the view keeps looking), never as a bad setting (exit 2).
_PASSING = frozenset(
    {
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_CONTROLLER,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
    }
)


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
    return ensure_with(AdminClient(config), name, window_s)


def ensure_with(admin: AdminClient, name: str, window_s: float) -> bool:
    """``ensure_order_state_topic`` with the admin client given."""
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
        admin.create_topics([new], request_timeout=_TIMEOUT_S)[name].result(_TIMEOUT_S + 5)
    except (KafkaException, TimeoutError) as exc:
        error = error_of(exc)
        if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            # Another consumer was first, or somebody else: a topic made by hand or by a broker
            # that creates topics on demand is checked like any that existed before.
            _check_compacted(admin, name)
            return False
        raise OrderStateTopicError(
            f"the order-state topic {name} does not exist and cannot be created: {_text(exc)}",
            unreachable=passes(exc),
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
    policy = cleanup_policy(admin, name)
    if "compact" not in policy.split(","):
        raise OrderStateTopicError(
            f"the order-state topic {name} is not compacted (its cleanup.policy is {policy!r}): "
            "give it the policies compact and delete, or delete it and let the consumer create it"
        )


def cleanup_policy(admin: AdminClient, name: str) -> str:
    """The topic's ``cleanup.policy``, asked again while the answer is one that passes."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    deadline = time.monotonic() + _TIMEOUT_S
    while True:
        try:
            future = admin.describe_configs([resource], request_timeout=_TIMEOUT_S)[resource]
            configs = future.result(_TIMEOUT_S + 5)
        except (KafkaException, TimeoutError) as exc:
            passing = passes(exc)
            if passing and time.monotonic() < deadline:
                time.sleep(_RETRY_S)
                continue
            raise OrderStateTopicError(
                f"cannot read the configuration of {name}: {_text(exc)}", unreachable=passing
            ) from None
        entry = configs.get("cleanup.policy")
        return entry.value if entry is not None and entry.value is not None else "delete"


def passes(exc: BaseException) -> bool:
    """Whether Kafka's answer is one that passes by itself (``_PASSING``, or no answer)."""
    if isinstance(exc, TimeoutError):
        return True
    error = error_of(exc)
    return error is not None and (error.code() in _PASSING or bool(error.retriable()))


def _text(exc: BaseException) -> str:
    error = error_of(exc)
    if error is not None:
        return error.str()
    return str(exc) or f"no answer within {_TIMEOUT_S + 5:.0f} s"
