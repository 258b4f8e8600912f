"""The format of the consumer's dedup state file, and how a damaged one is told apart.

::

    file  = MAGIC frame*
    MAGIC = b"coffee-orders seen v1\\n"
    frame = count (uint32, big-endian, 1..MAX_FRAME_ENTRIES)
            crc   (uint32, big-endian: CRC-32 of the count's 4 bytes and the digests)
            count digests of DIGEST_BYTES bytes each

Only fixed-size digests are stored, never text from a record, so no byte of input can split or
corrupt an entry. Each batch is appended as one frame with one write. A crash or power loss in
the middle of that write leaves an incomplete *last* frame (cut short, failing its CRC with
nothing after it, or zero-filled): the frames before it are intact and are kept ("torn").
Anything else (a wrong header, a frame that fails its CRC with more data after it, an impossible
count) is "corrupt": nothing in the file is trusted.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

MAGIC = b"coffee-orders seen v1\n"
SUFFIX = "seen"
DIGEST_BYTES = 16
MAX_FRAME_ENTRIES = 4096
_HEAD = struct.Struct(">II")


@dataclass
class Parsed:
    digests: list[bytes] = field(default_factory=list)  # what can be trusted, oldest first
    problem: str | None = None  # what is wrong with the file, None when nothing is
    torn: bool = False  # the problem is an incomplete last write: ``digests`` are still good


def _frame(digests: list[bytes]) -> bytes:
    count = len(digests).to_bytes(4, "big")
    body = b"".join(digests)
    return count + zlib.crc32(count + body).to_bytes(4, "big") + body


def frames(digests: list[bytes]) -> bytes:
    """``digests`` as frames of at most MAX_FRAME_ENTRIES each."""
    return b"".join(
        _frame(digests[start : start + MAX_FRAME_ENTRIES])
        for start in range(0, len(digests), MAX_FRAME_ENTRIES)
    )


def parse(data: bytes) -> Parsed:
    """The digests in ``data``, and what is wrong with it if anything is."""
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):  # empty, or a crash while its header was being written
            return Parsed(problem="has an incomplete header" if data else None, torn=bool(data))
        return Parsed(problem="is corrupt: not a coffee-orders state file (wrong header)")
    parsed = Parsed()
    position = len(MAGIC)
    while position < len(data):
        problem = _read_frame(data, position, parsed.digests)
        if isinstance(problem, int):
            position = problem
            continue
        parsed.problem, parsed.torn = problem
        if not parsed.torn:
            parsed.digests = []
        break
    return parsed


def _read_frame(data: bytes, position: int, digests: list[bytes]) -> int | tuple[str, bool]:
    """Append the frame at ``position`` and return where the next one starts, or the problem."""
    remaining = len(data) - position
    where = f"at byte {position}"
    if remaining < _HEAD.size:
        return f"ends in an incomplete write ({remaining} bytes {where})", True
    count: int
    crc: int
    count, crc = _HEAD.unpack_from(data, position)
    start = position + _HEAD.size
    end = start + count * DIGEST_BYTES
    plausible = 0 < count <= MAX_FRAME_ENTRIES
    whole = plausible and end <= len(data)
    if whole and zlib.crc32(data[start:end], zlib.crc32(data[position : position + 4])) == crc:
        digests.extend(data[i : i + DIGEST_BYTES] for i in range(start, end, DIGEST_BYTES))
        return end
    if not data[position:].strip(b"\0"):  # the file grew but its last write never reached disk
        return f"ends in {remaining} zero bytes {where} (an unwritten last write)", True
    if not plausible:
        return f"is corrupt: impossible entry count {count} {where}", False
    if end > len(data):
        return f"ends in an incomplete write ({remaining} of {end - position} bytes {where})", True
    if end == len(data):
        return f"ends in a damaged last write (checksum mismatch {where})", True
    return f"is corrupt: checksum mismatch {where}, with more entries after it", False
