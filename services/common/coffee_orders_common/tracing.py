"""W3C trace context across gRPC and Kafka, with OpenTelemetry spans when it is installed.

Without the ``otel`` extra nothing here does more than pass the caller's ``traceparent`` on. With
opentelemetry-api installed, PlaceOrder and the consumer's processing run in spans whose parent is
the caller's (or the producer's) context; with the SDK and ``OTEL_TRACES_EXPORTER=console|otlp``
set, the spans are exported.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping

from . import wire

log = logging.getLogger(__name__)

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


def span(
    name: str, traceparent: str | None, kind: str
) -> contextlib.AbstractContextManager[str | None]:
    """Run a span under ``traceparent``; yields the traceparent to pass on downstream."""
    if (
        otel_trace is None
        or TraceContextTextMapPropagator is None
        or isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider)
    ):  # no SDK configured: spans would not be recorded; pass the caller's context on
        return contextlib.nullcontext(wire.valid_traceparent(traceparent))
    return _recorded_span(name, traceparent, kind)


@contextlib.contextmanager
def _recorded_span(name: str, traceparent: str | None, kind: str) -> Iterator[str | None]:
    assert otel_trace is not None and TraceContextTextMapPropagator is not None
    propagator = TraceContextTextMapPropagator()
    carrier = {"traceparent": traceparent} if wire.valid_traceparent(traceparent) else {}
    parent = propagator.extract(carrier)
    span_kind = getattr(otel_trace.SpanKind, kind)
    tracer = otel_trace.get_tracer("coffee-orders")
    with tracer.start_as_current_span(name, context=parent, kind=span_kind):
        outgoing: dict[str, str] = {}
        propagator.inject(outgoing)
        yield outgoing.get("traceparent") or wire.valid_traceparent(traceparent)


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
