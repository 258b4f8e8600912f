"""One test per row of the status mapping (docs/api.md, the PlaceOrder status table)."""

from __future__ import annotations

import grpc
import pytest
from coffee_orders_common.kafka_health import KafkaReachability
from coffee_orders_common.validation import InvalidOrder, validate_order
from coffee_orders_producer import status_mapping
from confluent_kafka import KafkaError
from google.rpc import error_details_pb2

TOPIC = "coffee_orders"


def test_invalid_fields_give_invalid_argument_with_bad_request() -> None:
    with pytest.raises(InvalidOrder) as invalid:
        validate_order(" ", "x" * 101)
    failure = status_mapping.invalid_order(invalid.value.violations)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    (detail,) = failure.details
    assert isinstance(detail, error_details_pb2.BadRequest)
    assert [v.field for v in detail.field_violations] == ["customer_name", "coffee_type"]
    assert [v.reason for v in detail.field_violations] == ["BLANK", "OVERSIZED"]


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
    ],
)
def test_unreachable_timed_out_or_retriable_gives_unavailable(code: int) -> None:
    failure = status_mapping.for_kafka_error(KafkaError(code), TOPIC)
    assert failure.code is grpc.StatusCode.UNAVAILABLE
    assert "retry with the same request_id" in failure.message


def test_any_retriable_kafka_error_gives_unavailable() -> None:
    error = KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS, retriable=True)
    assert status_mapping.for_kafka_error(error, TOPIC).code is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("code", [KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC])
def test_unknown_topic_gives_failed_precondition(code: int) -> None:
    failure = status_mapping.for_kafka_error(KafkaError(code), TOPIC)
    assert failure.code is grpc.StatusCode.FAILED_PRECONDITION
    assert TOPIC in failure.message


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._AUTHENTICATION,
    ],
)
def test_authorization_gives_permission_denied(code: int) -> None:
    failure = status_mapping.for_kafka_error(KafkaError(code), TOPIC)
    assert failure.code is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("code", [KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD])
def test_other_non_retriable_errors_give_internal(code: int) -> None:
    failure = status_mapping.for_kafka_error(KafkaError(code), TOPIC)
    assert failure.code is grpc.StatusCode.INTERNAL
    assert KafkaError(code).name() in failure.message


def test_fatal_error_is_not_called_retriable() -> None:
    error = KafkaError(KafkaError._FATAL, fatal=True, retriable=True)
    assert status_mapping.for_kafka_error(error, TOPIC).code is grpc.StatusCode.INTERNAL


# The rows whose status does not depend on a Kafka error are checked where they happen, against a
# real broker: deadline (test_faults: deadline shorter than delivery), in-flight limit (test_faults:
# overload), topic missing, Kafka unreachable, request_id reused, malformed protobuf
# (test_producer), credentials refused (test_security); local queue full and shutting down in
# tests/integration/test_status_mapping_kafka.py.


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("UNKNOWN", grpc.StatusCode.UNAVAILABLE),
        ("UNREACHABLE", grpc.StatusCode.UNAVAILABLE),
        ("TOPIC_MISSING", grpc.StatusCode.FAILED_PRECONDITION),
        ("AUTH_FAILED", grpc.StatusCode.PERMISSION_DENIED),
        ("BROKER_UNTRUSTED", grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_kafka_not_usable_is_answered_without_publishing(state: str, code: grpc.StatusCode) -> None:
    failure = status_mapping.for_reachability(KafkaReachability[state], TOPIC)
    assert failure is not None and failure.code is code


def test_kafka_reachable_publishes() -> None:
    assert status_mapping.for_reachability(KafkaReachability.REACHABLE, TOPIC) is None
