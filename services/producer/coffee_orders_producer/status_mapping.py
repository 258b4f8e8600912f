"""Every way PlaceOrder can fail, mapped to one gRPC status (the table in docs/api.md)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from coffee_orders_common.kafka_errors import describe
from coffee_orders_common.kafka_health import AUTH_ERRORS, KafkaReachability
from coffee_orders_common.validation import FieldViolation
from confluent_kafka import KafkaError
from google.protobuf.message import Message
from google.rpc import error_details_pb2

# Kafka errors a retry (with the same request_id) can fix: the brokers or the leader are away.
_UNAVAILABLE = {
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.REQUEST_TIMED_OUT,
}
_FAILED_PRECONDITION = {
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError.POLICY_VIOLATION,
}


@dataclass(frozen=True)
class Failure:
    code: grpc.StatusCode
    message: str
    details: tuple[Message, ...] = ()


def invalid_order(violations: list[FieldViolation]) -> Failure:
    """INVALID_ARGUMENT with a google.rpc.BadRequest naming each broken field."""
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field=v.field, description=v.description, reason=v.kind.name
            )
            for v in violations
        ]
    )
    summary = "; ".join(v.description for v in violations)
    return Failure(grpc.StatusCode.INVALID_ARGUMENT, f"invalid order: {summary}", (bad_request,))


def for_kafka_error(error: KafkaError, topic: str) -> Failure:
    """The status for a failed delivery report or produce() call."""
    code = error.code()
    what = describe(error)
    if code == KafkaError._MSG_TIMED_OUT:
        return Failure(
            grpc.StatusCode.UNAVAILABLE,
            "Kafka did not confirm the order within the delivery timeout; "
            "retry with the same request_id",
        )
    if code in _UNAVAILABLE or (error.retriable() and not error.fatal()):
        return Failure(
            grpc.StatusCode.UNAVAILABLE,
            f"Kafka is unavailable ({what}); retry with the same request_id",
        )
    if code in _FAILED_PRECONDITION:
        return Failure(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"topic {topic} does not exist on the Kafka cluster ({what})",
        )
    if code in AUTH_ERRORS:
        return Failure(
            grpc.StatusCode.PERMISSION_DENIED,
            f"Kafka refused the producer's credentials for topic {topic} ({what})",
        )
    return Failure(grpc.StatusCode.INTERNAL, f"Kafka refused the order ({what})")


def malformed_request(message: str = "coffee.orders.v1.PlaceOrderRequest") -> Failure:
    return Failure(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the request is not a valid {message} (malformed protobuf)",
    )


def bad_batch_size(orders: int, most: int) -> Failure:
    return Failure(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"a PlaceOrdersRequest must hold 1 to {most} orders, got {orders}",
    )


def kafka_unreachable() -> Failure:
    return Failure(
        grpc.StatusCode.UNAVAILABLE,
        "Kafka is unreachable; nothing was published, retry with the same request_id",
    )


def for_reachability(state: KafkaReachability, topic: str) -> Failure | None:
    """What PlaceOrder answers, without publishing, while Kafka is in ``state`` (None: it
    publishes)."""
    if state is KafkaReachability.REACHABLE:
        return None
    if state is KafkaReachability.UNKNOWN:
        return starting()
    if state is KafkaReachability.TOPIC_MISSING:
        return topic_missing(topic)
    if state is KafkaReachability.AUTH_FAILED:
        return kafka_auth_failed()
    if state is KafkaReachability.BROKER_UNTRUSTED:
        return kafka_untrusted()
    return kafka_unreachable()


def starting() -> Failure:
    return Failure(
        grpc.StatusCode.UNAVAILABLE,
        "the producer is starting and has not reached Kafka yet; nothing was published, retry "
        "with the same request_id",
    )


def kafka_auth_failed() -> Failure:
    return Failure(
        grpc.StatusCode.PERMISSION_DENIED,
        "Kafka refused the producer's credentials; nothing was published (operators: check "
        "the SASL settings and the TLS client certificate)",
    )


def kafka_untrusted() -> Failure:
    return Failure(
        grpc.StatusCode.UNAVAILABLE,
        "the Kafka broker's TLS certificate cannot be verified; nothing was published, retry "
        "later with the same request_id (operators: see the producer's log)",
    )


def topic_missing(topic: str) -> Failure:
    return Failure(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"topic {topic} does not exist on the Kafka cluster; create it and retry",
    )


def queue_full() -> Failure:
    return Failure(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "the producer's local queue is full; nothing was published, retry later",
    )


def too_many_in_flight(limit: int) -> Failure:
    return Failure(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"{limit} orders are already waiting for Kafka; nothing was published, retry later",
    )


def deadline_passed() -> Failure:
    return Failure(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "the deadline passed before Kafka confirmed the order; it may still be delivered, "
        "retry with the same request_id",
    )


def request_id_reused(request_id: str) -> Failure:
    return Failure(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"request_id {request_id!r} was already used for a different order",
    )


def shutting_down() -> Failure:
    return Failure(grpc.StatusCode.UNAVAILABLE, "the producer is shutting down; retry elsewhere")


def unexpected(exc: BaseException) -> Failure:
    return Failure(grpc.StatusCode.INTERNAL, f"unexpected error: {type(exc).__name__}")
