"""Reading the order-state topic's cleanup policy: answers that pass are asked again (no broker).

A topic another consumer has just created reaches Kafka's brokers one by one, so the broker asked
may answer UNKNOWN_TOPIC_OR_PART for a moment: the fault run's CI failure of 2026-12-07, where a
consumer took that for a bad setting and exited with 2.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from coffee_orders_common import order_state_topic
from coffee_orders_common.order_state_topic import (
    OrderStateTopicError,
    cleanup_policy,
    ensure_with,
    passes,
)
from confluent_kafka import KafkaError, KafkaException


@dataclass
class Entry:
    value: str


@dataclass
class ScriptedAdmin:
    """Answers describe_configs from a script: a KafkaError code to fail with, or a policy."""

    answers: list[int | str]
    asked: int = field(default=0)

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={})  # missing

    def create_topics(self, topics: list[Any], request_timeout: float) -> dict[str, Future[Any]]:
        future: Future[Any] = Future()
        future.set_exception(KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS)))
        return {topics[0].topic: future}

    def describe_configs(
        self, resources: list[Any], request_timeout: float
    ) -> dict[Any, Future[Any]]:
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        future: Future[Any] = Future()
        if isinstance(answer, int):
            future.set_exception(KafkaException(KafkaError(answer)))
        else:
            future.set_result({"cleanup.policy": Entry(answer)})
        return {resources[0]: future}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_state_topic, "_RETRY_S", 0.01)


def test_a_topic_not_yet_known_to_the_broker_asked_is_asked_again() -> None:
    unknown = KafkaError.UNKNOWN_TOPIC_OR_PART
    admin = ScriptedAdmin([unknown, KafkaError.REQUEST_TIMED_OUT, unknown, "compact,delete"])
    assert cleanup_policy(admin, "t.order-state") == "compact,delete"  # type: ignore[arg-type]
    assert admin.asked == 4


def test_a_refusal_is_not_asked_again_and_is_not_taken_for_kafka_away() -> None:
    admin = ScriptedAdmin([KafkaError.TOPIC_AUTHORIZATION_FAILED, "compact"])
    with pytest.raises(OrderStateTopicError, match="cannot read the configuration") as refused:
        cleanup_policy(admin, "t.order-state")  # type: ignore[arg-type]
    assert not refused.value.unreachable
    assert admin.asked == 1


def test_an_answer_that_never_passes_is_reported_as_kafka_away_after_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(order_state_topic, "_TIMEOUT_S", 0.3)
    admin = ScriptedAdmin([KafkaError.UNKNOWN_TOPIC_OR_PART])
    with pytest.raises(
        OrderStateTopicError, match=r"t\.order-state: Broker: Unknown topic"
    ) as away:
        cleanup_policy(admin, "t.order-state")  # type: ignore[arg-type]
    assert away.value.unreachable
    assert admin.asked > 1


def test_an_empty_policy_is_reported_as_it_is() -> None:
    assert cleanup_policy(ScriptedAdmin([""]), "t") == ""  # type: ignore[arg-type]


def test_a_topic_made_by_someone_else_meanwhile_is_checked_for_compaction() -> None:
    """Missing when asked, TOPIC_ALREADY_EXISTS when created: made by another consumer (fine),
    or by hand or a broker that creates topics on demand (maybe uncompacted: refused)."""
    with pytest.raises(OrderStateTopicError, match="is not compacted"):
        ensure_with(ScriptedAdmin(["delete"]), "t.order-state", 3600)  # type: ignore[arg-type]
    unknown_then_compacted = ScriptedAdmin([KafkaError.UNKNOWN_TOPIC_OR_PART, "compact,delete"])
    assert not ensure_with(unknown_then_compacted, "t.order-state", 3600)  # type: ignore[arg-type]
    assert unknown_then_compacted.asked == 2


@pytest.mark.parametrize(
    ("exc", "passing"),
    [
        (TimeoutError(), True),
        (KafkaException(KafkaError(KafkaError._TRANSPORT)), True),
        (KafkaException(KafkaError(KafkaError.NOT_CONTROLLER)), True),
        (KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), False),
        (KafkaException(KafkaError(KafkaError.INVALID_CONFIG)), False),
        (ValueError("not Kafka"), False),
    ],
)
def test_which_answers_pass(exc: BaseException, passing: bool) -> None:
    assert passes(exc) is passing
