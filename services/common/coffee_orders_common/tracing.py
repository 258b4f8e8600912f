"""W3C trace context across gRPC and Kafka, with OpenTelemetry spans when it is installed.

Without the ``otel`` extra nothing here does more than pass the caller's ``traceparent`` on. With
opentelemetry-api installed, PlaceOrder and the consumer's processing run in spans whose parent is
the caller's (or the producer's) context; with the SDK and ``OTEL_TRACES_EXPORTER=console|otlp``
set, the spans are exported. The Kafka spans (``kafka_spans``) carry OpenTelemetry's messaging
attributes.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import wire

log = logging.getLogger(__name__)
Attributes = Mapping[str, str | int]
# The semantic conventions our span names and attributes follow (docs/operations.md).
SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"

try:  # the optional dependency
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised where the extra is missing
    otel_trace = None  # type: ignore[assignment]
    TraceContextTextMapPropagator = None  # type: ignore[assignment,misc]


def trace_id(traceparent: str | None) -> str | None:
    """The 32-hex-digit trace id of a valid traceparent."""
    valid = wire.valid_traceparent(traceparent)
    return valid.split("-")[1] if valid else None


def recording() -> bool:
    """Whether spans are recorded: the API is installed and an SDK provider is set."""
    return not (
        otel_trace is None
        or TraceContextTextMapPropagator is None
        or isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider)
    )


def span(
    name: str,
    traceparent: str | None,
    kind: str,
    attributes: Callable[[], Attributes] | None = None,
    recorded: bool | None = None,
) -> contextlib.AbstractContextManager[str | None]:
    """Run a span under ``traceparent``; yields the traceparent to pass on downstream.
    ``attributes`` is called only when the span is recorded. ``recorded``: ``recording()`` when
    the caller asked it already (it reads the environment: once per call or batch, not per order).
    """
    if not (recording() if recorded is None else recorded):  # no SDK: pass the context on
        return contextlib.nullcontext(wire.valid_traceparent(traceparent))
    return _recorded_span(name, traceparent, kind, attributes() if attributes else {})


def _parent(traceparent: str | None) -> Any:
    assert TraceContextTextMapPropagator is not None
    carrier = {"traceparent": traceparent} if wire.valid_traceparent(traceparent) else {}
    return TraceContextTextMapPropagator().extract(carrier)


def _tracer() -> Any:
    assert otel_trace is not None
    return otel_trace.get_tracer("coffee-orders", schema_url=SCHEMA_URL)


@contextlib.contextmanager
def _recorded_span(
    name: str, traceparent: str | None, kind: str, attributes: Attributes
) -> Iterator[str | None]:
    assert otel_trace is not None and TraceContextTextMapPropagator is not None
    span_kind = getattr(otel_trace.SpanKind, kind)
    with _tracer().start_as_current_span(
        name, context=_parent(traceparent), kind=span_kind, attributes=attributes
    ):
        outgoing: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(outgoing)
        yield outgoing.get("traceparent") or wire.valid_traceparent(traceparent)


class OpenSpan:
    """A span started now and ended later (``end``), e.g. on a delivery report; without an SDK,
    a stand-in that records nothing and passes the parent's traceparent on."""

    def __init__(
        self, name: str, traceparent: str | None, kind: str, attributes: Attributes | None
    ):
        self._span: Any = None
        self.traceparent = wire.valid_traceparent(traceparent)
        if attributes is None:
            return
        assert otel_trace is not None and TraceContextTextMapPropagator is not None
        self._span = _tracer().start_span(
            name,
            context=_parent(traceparent),
            kind=getattr(otel_trace.SpanKind, kind),
            attributes=attributes,
        )
        outgoing: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(
            outgoing, context=otel_trace.set_span_in_context(self._span)
        )
        self.traceparent = outgoing.get("traceparent") or self.traceparent

    @property
    def recording(self) -> bool:
        return self._span is not None

    def end(self, attributes: Attributes | None = None, error: str | None = None) -> None:
        """End the span with more ``attributes``; ``error`` marks it failed, with that text."""
        if self._span is None:
            return
        assert otel_trace is not None
        if attributes:
            self._span.set_attributes(attributes)
        if error is not None:
            self._span.set_attribute("error.type", error)
            self._span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, error))
        self._span.end()


def open_span(
    name: str,
    traceparent: str | None,
    kind: str,
    attributes: Callable[[], Attributes],
    recorded: bool | None = None,
) -> OpenSpan:
    """Start a span under ``traceparent`` that the caller ends (``OpenSpan.end``); ``recorded``
    as for ``span``."""
    traced = recording() if recorded is None else recorded
    return OpenSpan(name, traceparent, kind, attributes() if traced else None)


def configure_tracing(service_name: str, environ: Mapping[str, str] = os.environ) -> None:
    """Export spans when OTEL_TRACES_EXPORTER asks for it and the SDK is installed."""
    exporter_name = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter_name in ("", "none"):
        return
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        log.warning("OTEL_TRACES_EXPORTER is set but opentelemetry-sdk is not installed")
        return
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    elif exporter_name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError:
            log.warning("OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp")
            return
        exporter = OTLPSpanExporter()
    else:
        log.warning(f"unknown OTEL_TRACES_EXPORTER {exporter_name!r}; no spans exported")
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    assert otel_trace is not None
    otel_trace.set_tracer_provider(provider)
