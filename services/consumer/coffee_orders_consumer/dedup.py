"""Remember the orders processed on each partition, across restarts, within a bounded window.

An order's identity is its order_id together with its content: a producer's retry (same
order_id, same customer_name and coffee_type) is a duplicate; a record that borrows another
order's order_id with other content is a different order and never suppresses it.

A retried order has the same order_id and key, so it lands on the same partition as its first
copy: a per-partition window is enough. Each partition's identities are appended to a state file
(format in ``state_file``) and read back when the partition is assigned again, so redeliveries
after a crash are recognised too. A state file that fails its checks is reported, set aside and
not trusted: the window then starts empty and redelivered orders are processed again
(at-least-once), never skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from . import state_file
from .decoder import DecodedOrder

log = logging.getLogger("coffee_orders.consumer")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")

# (partition, what happened): called on the consume thread for each state file problem.
OnProblem = Callable[[int, str], None]


def identity(decoded: DecodedOrder) -> bytes:
    """A fixed-size digest of (order_id, customer_name, coffee_type).

    Each part is prefixed with its length, so no choice of characters makes two different
    triples meet (``"1:a" + "b"`` and ``"1" + ":ab"`` differ).
    """
    order_id, name, coffee = (
        decoded.order_id,
        decoded.order.customer_name,
        decoded.order.coffee_type,
    )
    text = f"{len(order_id)}:{order_id}{len(name)}:{name}{len(coffee)}:{coffee}"
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=state_file.DIGEST_BYTES).digest()


class _PartitionWindow:
    def __init__(self, path: Path, size: int, report: Callable[[str], None]):
        self._path = path
        self._size = size
        self._report = report
        self.keys: OrderedDict[bytes, None] = OrderedDict()  # the window, oldest first
        self._pending: list[bytes] = []  # added since the last flush
        self._in_file = 0  # identities in the file
        self._file: BinaryIO | None = None  # the open file; None until it is (re)written
        self._hands_off = False  # a damaged file could not be set aside: never overwrite it
        self._last_failure = ""
        self._load()

    def add(self, key: bytes) -> None:
        self.keys[key] = None
        while len(self.keys) > self._size:
            self.keys.popitem(last=False)
        self._pending.append(key)  # written out by flush(), once per batch

    def flush(self) -> None:
        """Append what was added since the last flush as one frame (one write).

        With no usable file (a failed write, an unreadable file) the whole window is written
        anew instead, so the file heals itself once the disk does.
        """
        pending, self._pending = self._pending, []
        if not pending or self._hands_off:
            return
        try:
            if self._file is None or self._in_file > 2 * self._size:
                self._rewrite()
            else:
                _write_all(self._file, state_file.frames(pending))
                self._in_file += len(pending)
        except OSError as exc:
            self.close()  # a failed append may have left half a frame: rewrite next time
            self._failed(f"cannot write {self._path}: {exc.strerror or exc}")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _load(self) -> None:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            self._failed(f"cannot read {self._path}: {exc.strerror or exc}")
            return
        parsed = state_file.parse(data)
        for key in parsed.digests[-self._size :]:
            self.keys[key] = None
        self._in_file = len(parsed.digests)
        if parsed.problem is not None:
            self._set_aside(parsed)
        try:
            if data and parsed.problem is None:
                self._file = self._path.open("ab", buffering=0)
            elif not self._hands_off:
                self._rewrite()
        except OSError as exc:
            self.close()
            self._failed(f"cannot write {self._path}: {exc.strerror or exc}")

    def _set_aside(self, parsed: state_file.Parsed) -> None:
        """Rename the damaged file (kept for a post-mortem) and report what was kept."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        label = "torn" if parsed.torn else "corrupt"
        aside = self._path.with_name(f"{self._path.name}.{label}-{stamp}")
        try:
            self._path.replace(aside)
            where = f"set aside as {aside.name}"
        except OSError as exc:
            self._hands_off = True
            where = f"could not be set aside ({exc.strerror or exc}), left as it is"
        if parsed.torn:
            kept = f"kept the {len(self.keys)} entries before it"
        else:
            kept = (
                "nothing in it is trusted: orders redelivered since the last commit are "
                "processed again"
            )
        self._report(f"state file {self._path} {parsed.problem}: {where}; {kept}")

    def _rewrite(self) -> None:
        """Write the window to a new file, flush it to disk and swap it in."""
        self.close()
        temporary = self._path.with_name(self._path.name + ".tmp")
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as out:
            out.write(state_file.MAGIC + state_file.frames(list(self.keys)))
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self._path)
        self._in_file = len(self.keys)
        self._last_failure = ""
        self._file = self._path.open("ab", buffering=0)

    def _failed(self, text: str) -> None:
        """Report a failing read or write once, not once per batch while it lasts."""
        if text != self._last_failure:
            self._last_failure = text
            self._report(f"{text}; the duplicate window is kept in memory meanwhile")


def _write_all(file: BinaryIO, data: bytes) -> None:
    written = file.write(data)  # unbuffered: one write(2), in the OS's hands when it returns
    if written != len(data):
        raise OSError(f"short write: {written} of {len(data)} bytes")


class ProcessedOrders:
    def __init__(
        self,
        state_dir: str | Path,
        group_id: str,
        topic: str,
        window: int,
        on_problem: OnProblem | None = None,
    ):
        self._dir = Path(state_dir).expanduser() / _SAFE.sub("_", group_id) / topic
        self._window = window
        self._on_problem = on_problem
        self._partitions: dict[int, _PartitionWindow] = {}
        self._last: tuple[DecodedOrder | None, bytes] = (None, b"")

    def open(self, partition: int) -> None:
        """Load a partition's window (on assignment)."""
        if self._window and partition not in self._partitions:
            self._partitions[partition] = _PartitionWindow(
                self._dir / f"{partition}.{state_file.SUFFIX}",
                self._window,
                lambda text: self._problem(partition, text),
            )

    def close(self, partition: int) -> None:
        """Drop a partition's window (on revocation); its file stays for the next owner."""
        window = self._partitions.pop(partition, None)
        if window is not None:
            window.flush()
            window.close()

    def flush(self) -> None:
        """Hand every order added so far to the OS (before their batch's offsets are stored)."""
        for window in self._partitions.values():
            window.flush()

    def close_all(self) -> None:
        for partition in list(self._partitions):
            self.close(partition)

    def seen(self, partition: int, decoded: DecodedOrder) -> bool:
        window = self._partitions.get(partition)
        if window is None:
            return False
        key = identity(decoded)
        self._last = (decoded, key)  # add() of the same order reuses it
        return key in window.keys

    def add(self, partition: int, decoded: DecodedOrder) -> None:
        if not self._window:
            return
        self.open(partition)
        last, key = self._last
        self._partitions[partition].add(key if last is decoded else identity(decoded))

    def _problem(self, partition: int, text: str) -> None:
        log.warning(text, extra={"fields": {"partition": partition}})
        if self._on_problem is not None:
            self._on_problem(partition, text)
