"""What the consumer group did with each order: the order-state event and the window of them.

The consumer writes one event per order it processed (and per rejected record that carried an
order_id) to the order-state topic, in the Kafka transaction that also commits the consumed
offsets. Every instance of either service reads that compacted topic into an ``OrderIndex``: the
duplicate check of the consumer and the answers of GetOrder / WatchOrder come from it.

An event is a JSON object (readable with kcat)::

    {"order_id": "...", "state": "PROCESSED", "identity": "<32 hex>", "time_ms": 1796557103791,
     "processed_by": "host/1234 coffee-orders-consumer-<uuid>", "topic": "coffee_orders",
     "partition": 0, "offset": 12, "error_kind": "", "reason": ""}

Its key is ``<order_id>|<identity>`` for a processed order (a record that borrows an order_id
with other content is another order and never replaces the first under compaction), and
``<order_id>|<partition>:<offset>`` for a rejected record.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

from .validation import Order
from .wire import json_string

IDENTITY_BYTES = 16


class State(Enum):
    PROCESSED = "PROCESSED"
    DEAD_LETTERED = "DEAD_LETTERED"


@dataclass(frozen=True)
class StateEvent:
    order_id: str
    state: State
    identity: bytes  # b"" for a rejected record
    time_ms: int
    processed_by: str
    topic: str
    partition: int
    offset: int
    error_kind: str = ""  # DEAD_LETTERED: the ErrorKind's name without its prefix
    reason: str = ""

    def key(self) -> bytes:
        if self.state is State.PROCESSED:
            return f"{self.order_id}|{self.identity.hex()}".encode()
        return f"{self.order_id}|{self.partition}:{self.offset}".encode()

    def value(self) -> bytes:
        """The event's JSON, byte for byte what ``json.dumps(ensure_ascii=False,
        separators=(",", ":"))`` writes of it, without building a dict and an encoder per event
        (once per order)."""
        text = json_string
        return (
            f'{{"order_id":{text(self.order_id)},"state":"{self.state.value}",'
            f'"identity":"{self.identity.hex()}","time_ms":{self.time_ms},'
            f'"processed_by":{text(self.processed_by)},"topic":{text(self.topic)},'
            f'"partition":{self.partition},"offset":{self.offset},'
            f'"error_kind":{text(self.error_kind)},"reason":{text(self.reason)}}}'
        ).encode("utf-8", "surrogatepass")


def processed_key(key: bytes | None) -> tuple[str, bytes] | None:
    """The order_id and identity a processed order's event key (``<order_id>|<identity hex>``)
    names; None for any other key."""
    if not key:
        return None
    order_id, bar, hex_ = key.rpartition(b"|")
    if not bar or len(hex_) != 2 * IDENTITY_BYTES:
        return None
    try:
        return order_id.decode("utf-8"), bytes.fromhex(hex_.decode("ascii"))
    except ValueError:  # UnicodeDecodeError included
        return None


class BadEvent(ValueError):
    """A record on the order-state topic that is not an event of ours."""


def parse_event(value: bytes | None) -> StateEvent:
    try:
        body = json.loads(value or b"")
        event = StateEvent(
            order_id=_text(body, "order_id"),
            state=State(body["state"]),
            identity=bytes.fromhex(_text(body, "identity")),
            time_ms=_number(body, "time_ms"),
            processed_by=_text(body, "processed_by"),
            topic=_text(body, "topic"),
            partition=_number(body, "partition"),
            offset=_number(body, "offset"),
            error_kind=_text(body, "error_kind"),
            reason=_text(body, "reason"),
        )
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BadEvent(f"not an order-state event: {exc}") from None
    if event.state is State.PROCESSED and len(event.identity) != IDENTITY_BYTES:
        raise BadEvent("not an order-state event: a processed order without its identity")
    return event


def _text(body: dict[str, object], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


def _number(body: dict[str, object], name: str) -> int:
    """A whole number in the range the index packs it in (time and offset int64, partition
    int32, none negative): a record's numbers are data, never what decides a process's fate."""
    value = body[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} is not an integer")
    if not 0 <= value < _LIMITS.get(name, 2**63):
        raise ValueError(f"{name} {value} is out of range")
    return value


_LIMITS = {"partition": 2**31}


def identity(order_id: str, order: Order) -> bytes:
    """A fixed-size digest of (order_id, customer_name, coffee_type): a producer's retry has the
    same identity; a record borrowing an order_id with other content has another.

    Each part is prefixed with its length, so no choice of characters makes two different
    triples meet (``"1:a" + "b"`` and ``"1" + ":ab"`` differ).
    """
    name, coffee = order.customer_name, order.coffee_type
    text = f"{len(order_id)}:{order_id}{len(name)}:{name}{len(coffee)}:{coffee}"
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=IDENTITY_BYTES).digest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# An entry of the index, packed (about 70 bytes a Python object, against some 400 for a dataclass
# with its strings): identity, state, time, partition, offset, index into the processed_by names.
_ENTRY = struct.Struct("<16sBqiqI")
_STATES = list(State)
_MAX_NAMES = 100_000  # processed_by names kept: one per instance and member id, bounded
# The index's keys: a digest of the order_id, keyed per process (nobody can choose order_ids that
# collide in it), as an int (36 bytes, against some 85 for the order_id string).
_KEY_SECRET = os.urandom(16)


# An order's key is asked for about four times in a second (the duplicate check, the index, the
# view reading the event back): a keyed digest costs 2 us, a hit in this cache 0.2 (some 3 MB).
@functools.lru_cache(maxsize=16_384)
def _order_key(order_id: str) -> int:
    digest = hashlib.blake2b(
        order_id.encode("utf-8", "surrogatepass"), digest_size=8, key=_KEY_SECRET
    ).digest()
    return int.from_bytes(digest, "little")


class OrderIndex:
    """The events of the last ``window_s`` seconds, at most ``max_orders`` of them, oldest out
    first; for each order_id its first PROCESSED event (else its first DEAD_LETTERED one).

    Not thread-safe: the caller holds a lock.
    """

    def __init__(self, window_s: float, max_orders: int):
        self.window_ms = int(window_s * 1000)
        self.max_orders = max_orders
        self._entries: OrderedDict[int, bytes] = OrderedDict()
        # Other identities seen under an order_id already taken (rare: a borrowed order_id).
        self._others: OrderedDict[tuple[int, bytes], bytes] = OrderedDict()
        self._details: dict[int, tuple[str, str]] = {}  # DEAD_LETTERED: kind and reason
        self._names: list[str] = [""]  # 0: not known (past _MAX_NAMES)
        self._name_numbers: dict[str, int] = {}
        self.evicted_early = 0  # taken out before their window ended, to keep max_orders

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, event: StateEvent) -> bool:
        """Record ``event``; False if it told nothing new (the same order seen before)."""
        key = _order_key(event.order_id)
        packed = self._entries.get(key)
        if packed is not None:
            known = _ENTRY.unpack(packed)
            known_state = _STATES[known[1]]
            if known_state is State.PROCESSED or event.state is State.DEAD_LETTERED:
                if event.state is State.PROCESSED and known[0] != event.identity:
                    other = (key, event.identity)
                    if other not in self._others:
                        self._others[other] = self._pack(event)
                        return True
                return False
        self._entries[key] = self._pack(event)
        if event.state is State.DEAD_LETTERED:
            self._details[key] = (event.error_kind, event.reason)
        else:
            self._details.pop(key, None)
        self._evict()
        return True

    def processed(self, order_id: str, order_identity: bytes) -> bool:
        """Whether this very order (order_id and content) was processed within the window."""
        key = _order_key(order_id)
        packed = self._entries.get(key)
        if packed is None:
            return False
        known_identity, state, *_ = _ENTRY.unpack(packed)
        if _STATES[state] is State.PROCESSED and known_identity == order_identity:
            return True
        return (key, order_identity) in self._others

    def get(self, order_id: str, topic: str, order_identity: bytes = b"") -> StateEvent | None:
        """The order's event; ``topic`` is the orders topic (the index does not keep it).

        With ``order_identity``, the event of that very order (order_id and content) only: a
        record that borrowed the order_id does not answer for it.
        """
        key = _order_key(order_id)
        packed = self._entries.get(key)
        if packed is not None and order_identity and _ENTRY.unpack(packed)[0] != order_identity:
            packed = self._others.get((key, order_identity))
        if packed is None:
            return None
        identity_, state, time_ms, partition, offset, name = _ENTRY.unpack(packed)
        kind, reason = self._details.get(key, ("", ""))
        return StateEvent(
            order_id,
            _STATES[state],
            identity_,
            time_ms,
            self._names[name],
            topic,
            partition,
            offset,
            kind,
            reason,
        )

    def _pack(self, event: StateEvent) -> bytes:
        return _ENTRY.pack(
            event.identity.ljust(IDENTITY_BYTES, b"\0"),
            _STATES.index(event.state),
            event.time_ms,
            event.partition,
            event.offset,
            self._name_number(event.processed_by),
        )

    def _name_number(self, name: str) -> int:
        number = self._name_numbers.get(name)
        if number is None:
            if len(self._names) > _MAX_NAMES:
                return 0
            number = self._name_numbers[name] = len(self._names)
            self._names.append(name)
        return number

    def _evict(self) -> None:
        oldest_kept = now_ms() - self.window_ms
        entries = self._entries
        while entries:
            key, packed = next(iter(entries.items()))
            if len(entries) <= self.max_orders and _ENTRY.unpack(packed)[2] >= oldest_kept:
                break
            if len(entries) > self.max_orders:
                self.evicted_early += 1
            entries.popitem(last=False)
            self._details.pop(key, None)
        others = self._others
        while others and (
            len(others) > self.max_orders
            or _ENTRY.unpack(next(iter(others.values())))[2] < oldest_kept
        ):
            others.popitem(last=False)
