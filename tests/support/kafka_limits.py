"""Recognise, in a broker's own log, the Kafka limits docs/reliability.md lists.

A test that meets one of them has found Kafka's behaviour, not ours; it says so (``pytest.xfail``
with the broker's line) after checking what still holds, instead of failing or passing silently.
"""

from __future__ import annotations

from coffee_orders_localkafka import LocalKafka

# Kafka's transaction coordinator sent a transaction's markers while the partitions had no
# leader, took them for deleted partitions and skipped the markers: the transaction stays open.
_SKIPPED_MARKERS = "Couldn't find leader endpoint for partitions"
SKIPPED_MARKERS_DOC = "docs/reliability.md#a-transaction-the-restarted-broker-leaves-open"


def skipped_transaction_markers(cluster: LocalKafka) -> str | None:
    """The first server.log line of ``cluster`` saying the broker skipped transaction markers."""
    for path in cluster.log_paths():
        if not path.exists():
            continue
        with path.open(errors="replace") as log:
            for line in log:
                if _SKIPPED_MARKERS in line:
                    return line.strip()
    return None
