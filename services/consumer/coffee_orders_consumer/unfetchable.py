"""Records the Kafka client cannot fetch: retried a few times, then dead-lettered and skipped.

A record batch that does not decompress (a zstd "bomb" that expands past
``receive.message.max.bytes``, a corrupt batch, an unknown codec) never becomes a message:
librdkafka reports an error at the batch's first offset every fetch, for ever, and every order
behind it on that partition waits. Such an error is about the record, not the cluster, so
retrying cannot help once it has recurred ``ATTEMPTS`` times at one offset: the record is
described in a metadata record (topic, partition, offset, the batch's offset, compressed size,
codec, reason) that goes to the dead-letter topic like any bad record, and the consumer seeks
past it. Its offset is stored once that copy settles, so a restart never meets it again.

A batch of several records fails at its first offset whatever offset inside it is fetched:
once one record of it was skipped, an error at an offset before the skip position is the same
batch, and the next record is skipped at once. Errors about the cluster (no leader,
authorisation, an unknown topic) are never a reason to skip: the records are fine and will be
read; a partition stuck for such a reason is the membership judge's (``membership``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from coffee_orders_common.kafka_errors import describe
from confluent_kafka import KafkaError, Message

ATTEMPTS = 3
# Errors librdkafka reports for one record (batch) it cannot turn into a message.
RECORD_ERRORS = frozenset(
    {
        KafkaError._BAD_COMPRESSION,
        KafkaError._BAD_MSG,
        KafkaError._NOT_IMPLEMENTED,  # an unsupported compression codec
        KafkaError.MSG_SIZE_TOO_LARGE,  # larger than the fetch limits
        KafkaError.INVALID_MSG,  # the broker's CORRUPT_MESSAGE
        KafkaError.INVALID_RECORD,
    }
)
_CODECS = {1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_DECOMPRESSION = re.compile(r"codec 0x([0-9a-fA-F]+)\) of message at \d+ of (\d+) bytes")


@dataclass(frozen=True)
class Skip:
    """A record to skip: ``record`` stands in for it (its coordinates, the metadata as value)."""

    record: Message
    reason: str
    next_offset: int


def is_record_error(message: Message) -> bool:
    error, partition, offset = message.error(), message.partition(), message.offset()
    return (
        error is not None
        and error.code() in RECORD_ERRORS
        and partition is not None
        and partition >= 0
        and offset is not None
        and offset >= 0
    )


class UnfetchableRecords:
    """Per partition: the offset failing now and how often, and how far skipping has gone."""

    def __init__(self, attempts: int = ATTEMPTS):
        self._attempts = attempts
        self._failing: dict[int, tuple[int, int]] = {}  # partition -> (offset, times)
        self._skipped_to: dict[int, int] = {}  # partition -> first offset after the skips

    @property
    def active(self) -> bool:
        return bool(self._failing or self._skipped_to)

    def offer(self, message: Message) -> Skip | None:
        """A record error (``is_record_error``): the record to skip now, or None to retry."""
        error = message.error()
        assert error is not None
        partition, offset = message.partition() or 0, message.offset() or 0
        skipped_to = self._skipped_to.get(partition)
        if skipped_to is not None and offset < skipped_to:  # the batch also holds skipped_to
            return self._skip(message, error, skipped_to, attempts=1)
        failing, times = self._failing.get(partition, (offset, 0))
        times = times + 1 if failing == offset else 1
        self._failing[partition] = (offset, times)
        if times < self._attempts:
            return None
        return self._skip(message, error, offset, attempts=times)

    def delivered(self, partition: int, offset: int) -> None:
        """A message was read from ``partition``: what failed before it is behind us."""
        skipped_to = self._skipped_to.get(partition)
        if skipped_to is not None and offset >= skipped_to:
            del self._skipped_to[partition]
        failing = self._failing.get(partition)
        if failing is not None and offset >= failing[0]:
            del self._failing[partition]

    def forget(self, partitions: list[int]) -> None:
        """Partitions revoked or lost: their new owner starts from the committed offsets."""
        for number in partitions:
            self._failing.pop(number, None)
            self._skipped_to.pop(number, None)

    def _skip(self, message: Message, error: KafkaError, offset: int, attempts: int) -> Skip:
        partition = message.partition() or 0
        self._skipped_to[partition] = offset + 1
        self._failing.pop(partition, None)
        found = _DECOMPRESSION.search(error.str())
        codec = _CODECS.get(int(found.group(1), 16), found.group(1)) if found else None
        description = {
            "unfetchable_record": {
                "topic": message.topic() or "",
                "partition": partition,
                "offset": offset,
                "batch_offset": message.offset(),
                "compressed_bytes": int(found.group(2)) if found else None,
                "codec": codec,
                "error": error.name(),
                "reason": error.str(),
                "attempts": attempts,
            }
        }
        reason = (
            f"the Kafka client cannot fetch the record at offset {offset} "
            f"({describe(error)}; seen {attempts} times): skipped"
        )
        record = Message(
            topic=message.topic() or "",
            partition=partition,
            offset=offset,
            key=None,
            value=json.dumps(description, separators=(",", ":")).encode(),
            headers=None,
        )
        return Skip(record, reason, offset + 1)
