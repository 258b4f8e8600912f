"""Spans recorded in memory with OpenTelemetry's SDK (the global tracer provider can be set only
once per process: every test that reads spans shares this one exporter)."""

from __future__ import annotations

import functools

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@functools.cache
def in_memory_spans() -> InMemorySpanExporter:
    """The process's exporter; the SDK provider is set the first time."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


def spans_of_trace(exporter: InMemorySpanExporter, trace_id: str) -> dict[str, ReadableSpan]:
    """The finished spans of one trace (32 hex digits), by name."""
    return {
        span.name: span
        for span in exporter.get_finished_spans()
        if span.context is not None and f"{span.context.trace_id:032x}" == trace_id
    }
