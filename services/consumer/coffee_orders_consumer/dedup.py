"""Remember the order_ids processed on each partition, across restarts, within a bounded window.

A retried order has the same order_id and key, so it lands on the same partition as its first
copy: a per-partition window is enough. Each partition's ids are appended to a file under the
state dir and read back when the partition is assigned again, so redeliveries after a crash are
recognised too.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import TextIO

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class _PartitionWindow:
    def __init__(self, path: Path, size: int):
        self._path = path
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._appended = 0
        if path.exists():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            for order_id in lines[-size:]:
                self._ids[order_id] = None
            self._appended = len(lines)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = path.open("a", encoding="utf-8")

    def __contains__(self, order_id: str) -> bool:
        return order_id in self._ids

    def add(self, order_id: str) -> None:
        self._ids[order_id] = None
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)
        self._file.write(order_id + "\n")  # written out by flush(), once per batch
        self._appended += 1
        if self._appended > 2 * self._size:
            self._compact()

    def _compact(self) -> None:
        self._file.close()
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text("".join(f"{i}\n" for i in self._ids), encoding="utf-8")
        temporary.replace(self._path)
        self._appended = len(self._ids)
        self._file = self._path.open("a", encoding="utf-8")

    def flush(self) -> None:
        self._file.flush()  # in the OS's hands: survives a killed process

    def close(self) -> None:
        self._file.close()


class ProcessedOrders:
    def __init__(self, state_dir: str | Path, group_id: str, topic: str, window: int):
        self._dir = Path(state_dir).expanduser() / _SAFE.sub("_", group_id) / topic
        self._window = window
        self._partitions: dict[int, _PartitionWindow] = {}

    def open(self, partition: int) -> None:
        """Load a partition's window (on assignment)."""
        if self._window and partition not in self._partitions:
            self._partitions[partition] = _PartitionWindow(
                self._dir / f"{partition}.ids", self._window
            )

    def close(self, partition: int) -> None:
        """Drop a partition's window (on revocation); its file stays for the next owner."""
        window = self._partitions.pop(partition, None)
        if window is not None:
            window.close()

    def flush(self) -> None:
        """Hand every id added so far to the OS (before the offsets of their batch are stored)."""
        for window in self._partitions.values():
            window.flush()

    def close_all(self) -> None:
        for partition in list(self._partitions):
            self.close(partition)

    def seen(self, partition: int, order_id: str) -> bool:
        window = self._partitions.get(partition)
        return window is not None and order_id in window

    def add(self, partition: int, order_id: str) -> None:
        if not self._window:
            return
        self.open(partition)
        self._partitions[partition].add(order_id)
