"""The report's parts on the Go peers and on CPU per confirmed order: tables, a chart, a line.

Rows are the ``place_order`` rows (one per concurrency) and the ``place_orders`` row of a
results file; each holds a figures dict per contender (see NAMES). Results files written before
the peers existed lack those keys: their sections are left out, never guessed.
"""

from __future__ import annotations

from typing import Any

from bench.cpu import ratio, share_of_parts

NAMES = {
    "ours": "producer",
    "grpc_limit": "gRPC limit",
    "kafka_limit": "Kafka limit",
    "go_http": "Go HTTP + Sarama",
    "go_grpc": "Go gRPC + franz-go",
}
PEERS = ("go_http", "go_grpc")


def _loads(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, row) for each PlaceOrder concurrency, then the stream."""
    loads = [(_callers(row["concurrency"]), row) for row in results.get("place_order", [])]
    if "place_orders" in results:
        loads.append(("stream", results["place_orders"]))
    return loads


def color(key: str) -> str:
    """One colour per contender in every chart panel."""
    return f"C{list(NAMES).index(key)}"


def _callers(count: int) -> str:
    return "1 caller" if count == 1 else f"{count} callers"


def machine_sentence(machine: dict[str, Any]) -> str:
    """The Go peers' toolchain and Kafka/gRPC modules, and hey's version, where recorded."""
    if "go_peers" not in machine:
        return ""
    modules = ", ".join(f"{name} {version}" for name, version in machine["go_peers"].items())
    return f" Go peers: {modules}; hey {machine.get('hey', '?')}."


def _has_peers(results: dict[str, Any]) -> bool:
    return any(peer in row for _, row in _loads(results) for peer in PEERS)


def _has_cpu(results: dict[str, Any]) -> bool:
    return any("cpu_us_per_order" in row.get("ours", {}) for _, row in _loads(results))


def _number(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _figure(row: dict[str, Any], key: str, field: str) -> float | None:
    value = row.get(key, {}).get(field)
    return None if value is None else float(value)


def one_line_extra(row: dict[str, Any]) -> str:
    """The peers' throughput and everyone's CPU per order, for the benchmark's progress lines."""
    text = "".join(
        f" | {NAMES[peer]} {row[peer]['per_second']:,.0f}/s" for peer in PEERS if peer in row
    )
    cpu = [
        f"{NAMES[key]} {row[key]['cpu_us_per_order']:,.0f}"
        for key in NAMES
        if "cpu_us_per_order" in row.get(key, {})
    ]
    if cpu:
        text += " | CPU us/order: " + ", ".join(cpu)
    share = share_of_parts(row)
    if share is not None:
        text += f"; producer/(gRPC+Kafka limit) {share:.2f}"
    return text


def markdown_lines(results: dict[str, Any]) -> list[str]:
    """The peers' table and the two CPU-per-order tables (each only where measured)."""
    lines: list[str] = []
    if _has_peers(results):
        lines += _peers_table(results)
    if _has_cpu(results):
        lines += _cpu_tables(results)
    return lines


def _section(title: str | None, intro: str, headers: list[str]) -> list[str]:
    """A heading (or none), one explaining paragraph, and a table's header rows."""
    heading = ["", f"### {title}"] if title else []
    return [*heading, "", intro, "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _peers_table(results: dict[str, Any]) -> list[str]:
    lines = _section(
        "The Go peers at the same load",
        "`bench/peers/httpsarama` has the original system's shape (net/http `POST /order`, Sarama "
        "SyncProducer, acks=all, idempotent), driven by hey with one connection per caller; "
        "`bench/peers/grpcfranz` serves our contract with grpc-go and franz-go (acks=all, "
        "idempotent, linger 1 ms), driven by ghz and streamload like the producer. Same broker, "
        "same topic, same runs. Ratio: the producer's confirmed/s over the peer's.",
        ["load", "producer/s", "p99 ms", "Go HTTP + Sarama/s", "p99 ms", "ratio",
         "Go gRPC + franz-go/s", "p99 ms", "ratio"],
    )  # fmt: skip
    for label, row in _loads(results):
        cells = [label, _number(_figure(row, "ours", "per_second")),
                 _number(_figure(row, "ours", "p99_ms"), 1)]  # fmt: skip
        for peer in PEERS:
            cells += [
                _number(_figure(row, peer, "per_second")),
                _number(_figure(row, peer, "p99_ms"), 1),
                _number(ratio(row, peer, "per_second"), 2),
            ]
        lines.append(_row(cells))
    return lines


def _cpu_tables(results: dict[str, Any]) -> list[str]:
    lines = _section(
        "CPU per confirmed order",
        "Microseconds of CPU time (user + system, all threads) per confirmed order, in the same "
        "runs as the tables above. First the serving process: the producer, the gRPC limit's "
        "server, the Go peers; for the Kafka limit, the process producing straight to Kafka. "
        "`producer / (gRPC + Kafka)` is the producer's figure over the sum of the two limits': "
        "1.00 means the producer costs exactly what gRPC and confluent-kafka cost apart, the "
        "excess is the producer's own work and the two sharing one process. "
        "`producer / peer` above 1 means the producer spends more CPU per order than that peer.",
        ["load", "producer", "gRPC limit", "Kafka limit", "producer / (gRPC + Kafka)",
         "Go HTTP + Sarama", "producer / it", "Go gRPC + franz-go", "producer / it"],
    )  # fmt: skip
    for label, row in _loads(results):
        cells = [label] + [
            _number(_figure(row, key, "cpu_us_per_order"))
            for key in ("ours", "grpc_limit", "kafka_limit")
        ]
        cells.append(_number(share_of_parts(row), 2))
        for peer in PEERS:
            cells += [_number(_figure(row, peer, "cpu_us_per_order")),
                      _number(ratio(row, peer), 2)]  # fmt: skip
        lines.append(_row(cells))
    lines += _section(
        None,
        "The broker's CPU per confirmed order over the same runs (microseconds; it counts in "
        "10 ms clock ticks, so short runs are coarse; during the gRPC limit's runs the broker is "
        "idle and the figure is its idle cost spread over those calls):",
        ["load", *NAMES.values()],
    )
    for label, row in _loads(results):
        lines.append(
            _row([label] + [_number(_figure(row, key, "broker_cpu_us_per_order")) for key in NAMES])
        )
    driven = [key for key in NAMES if key != "kafka_limit"]
    lines += _section(
        None,
        "The load generators' CPU per confirmed order (microseconds: ghz for PlaceOrder, hey for "
        "the HTTP peer, streamload for the stream; the Kafka limit has none). They share the two "
        "cores with the server they drive: a costlier generator leaves that server less CPU.",
        ["load", *(NAMES[key] for key in driven)],
    )
    for label, row in _loads(results):
        lines.append(
            _row([label] + [_number(_figure(row, key, "load_cpu_us_per_order")) for key in driven])
        )
    return lines


def cpu_chart(axes: Any, results: dict[str, Any]) -> None:
    """Grouped bars per load: each contender's process CPU per order, the broker's on top."""
    loads = _loads(results)
    keys = [key for key in NAMES if any("cpu_us_per_order" in row.get(key, {}) for _, row in loads)]
    if not keys:  # results from before CPU per order was measured
        axes.set_axis_off()
        return
    width = 0.8 / max(len(keys), 1)
    lowest = float("inf")
    for index, key in enumerate(keys):
        at = [i + (index - (len(keys) - 1) / 2) * width for i in range(len(loads))]
        process = [_figure(row, key, "cpu_us_per_order") or 0.0 for _, row in loads]
        broker = [_figure(row, key, "broker_cpu_us_per_order") or 0.0 for _, row in loads]
        axes.bar(at, process, width, label=NAMES[key], color=color(key))
        axes.bar(at, broker, width, bottom=process, color=color(key), alpha=0.35, hatch="//")
        lowest = min([lowest, *(value for value in process if value > 0)])
    axes.set_xticks(range(len(loads)), [label for label, _ in loads])
    axes.set_yscale("log")
    if lowest < float("inf"):  # autoscaling ignores the bottom of the lowest bar on a log axis
        axes.set_ylim(bottom=lowest / 2)
    axes.set_ylabel("CPU us per confirmed order")
    axes.set_title("CPU per confirmed order: serving process (solid) + broker (hatched); log scale")
    axes.legend(loc="upper right", fontsize="small", ncols=len(keys))
