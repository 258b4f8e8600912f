"""tests/unit runs without a broker: a test here that asks for one fails with where it belongs."""

from __future__ import annotations

from typing import NoReturn

import pytest


def _no_broker() -> NoReturn:
    pytest.fail(
        "tests/unit starts no Kafka broker: a test that needs one goes in tests/integration"
    )


@pytest.fixture
def kafka_broker() -> NoReturn:
    _no_broker()


@pytest.fixture
def kafka_cluster_factory() -> NoReturn:
    _no_broker()
