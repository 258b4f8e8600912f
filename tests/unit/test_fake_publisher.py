"""The fake publisher the servicer's unit tests use has the real Publisher's surface: every public
name of the real one, its methods taking the same parameters. A change to the real surface fails
here rather than leaving the unit tests testing against something else."""

from __future__ import annotations

import inspect

from coffee_orders_producer.publisher import Publisher

from tests.unit.fake_publisher import FakePublisher


def _public(instance: object) -> set[str]:
    return {name for name in dir(instance) if not name.startswith("_")}


def _parameters(method: object) -> list[tuple[str, object]]:
    assert callable(method)
    return [(p.name, p.kind) for p in inspect.signature(method).parameters.values()]


async def test_the_fake_has_every_public_name_of_the_real_publisher_with_its_parameters() -> None:
    real = Publisher({"bootstrap.servers": "127.0.0.1:1"})  # never started: nothing connects
    fake = FakePublisher()
    try:
        missing = _public(real) - _public(fake)
        assert not missing, f"FakePublisher lacks {sorted(missing)}"
        for name in sorted(_public(real)):
            kind = inspect.getattr_static(Publisher, name, None)
            assert type(kind) is type(inspect.getattr_static(FakePublisher, name, None)), name
            if inspect.isfunction(kind):
                assert _parameters(getattr(real, name)) == _parameters(getattr(fake, name)), name
        assert inspect.iscoroutinefunction(Publisher.close)
        assert inspect.iscoroutinefunction(FakePublisher.close)
    finally:
        await real.close(0)
