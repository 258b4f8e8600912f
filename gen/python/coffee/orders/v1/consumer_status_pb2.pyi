import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConsumerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSUMER_STATE_UNSPECIFIED: _ClassVar[ConsumerState]
    CONSUMER_STATE_STARTING: _ClassVar[ConsumerState]
    CONSUMER_STATE_RUNNING: _ClassVar[ConsumerState]
    CONSUMER_STATE_DEGRADED: _ClassVar[ConsumerState]
    CONSUMER_STATE_STOPPING: _ClassVar[ConsumerState]
    CONSUMER_STATE_FAILED: _ClassVar[ConsumerState]

class ErrorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_KIND_UNSPECIFIED: _ClassVar[ErrorKind]
    ERROR_KIND_EMPTY_VALUE: _ClassVar[ErrorKind]
    ERROR_KIND_INVALID_UTF8: _ClassVar[ErrorKind]
    ERROR_KIND_NOT_JSON: _ClassVar[ErrorKind]
    ERROR_KIND_NOT_AN_OBJECT: _ClassVar[ErrorKind]
    ERROR_KIND_MISSING_FIELD: _ClassVar[ErrorKind]
    ERROR_KIND_WRONG_TYPE: _ClassVar[ErrorKind]
    ERROR_KIND_BLANK_FIELD: _ClassVar[ErrorKind]
    ERROR_KIND_OVERSIZED_FIELD: _ClassVar[ErrorKind]
    ERROR_KIND_CONTROL_CHARACTERS: _ClassVar[ErrorKind]
    ERROR_KIND_KAFKA: _ClassVar[ErrorKind]
    ERROR_KIND_DEAD_LETTER_FAILED: _ClassVar[ErrorKind]
    ERROR_KIND_OVERSIZED_VALUE: _ClassVar[ErrorKind]
    ERROR_KIND_STATE_FILE: _ClassVar[ErrorKind]
    ERROR_KIND_WORKER_FAILED: _ClassVar[ErrorKind]
    ERROR_KIND_UNFETCHABLE_RECORD: _ClassVar[ErrorKind]
    ERROR_KIND_GROUP_MEMBERSHIP: _ClassVar[ErrorKind]

class MembershipState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBERSHIP_STATE_UNSPECIFIED: _ClassVar[MembershipState]
    MEMBERSHIP_STATE_JOINING: _ClassVar[MembershipState]
    MEMBERSHIP_STATE_ASSIGNED: _ClassVar[MembershipState]
    MEMBERSHIP_STATE_IDLE: _ClassVar[MembershipState]
    MEMBERSHIP_STATE_OUT_OF_GROUP: _ClassVar[MembershipState]
    MEMBERSHIP_STATE_STALLED: _ClassVar[MembershipState]
CONSUMER_STATE_UNSPECIFIED: ConsumerState
CONSUMER_STATE_STARTING: ConsumerState
CONSUMER_STATE_RUNNING: ConsumerState
CONSUMER_STATE_DEGRADED: ConsumerState
CONSUMER_STATE_STOPPING: ConsumerState
CONSUMER_STATE_FAILED: ConsumerState
ERROR_KIND_UNSPECIFIED: ErrorKind
ERROR_KIND_EMPTY_VALUE: ErrorKind
ERROR_KIND_INVALID_UTF8: ErrorKind
ERROR_KIND_NOT_JSON: ErrorKind
ERROR_KIND_NOT_AN_OBJECT: ErrorKind
ERROR_KIND_MISSING_FIELD: ErrorKind
ERROR_KIND_WRONG_TYPE: ErrorKind
ERROR_KIND_BLANK_FIELD: ErrorKind
ERROR_KIND_OVERSIZED_FIELD: ErrorKind
ERROR_KIND_CONTROL_CHARACTERS: ErrorKind
ERROR_KIND_KAFKA: ErrorKind
ERROR_KIND_DEAD_LETTER_FAILED: ErrorKind
ERROR_KIND_OVERSIZED_VALUE: ErrorKind
ERROR_KIND_STATE_FILE: ErrorKind
ERROR_KIND_WORKER_FAILED: ErrorKind
ERROR_KIND_UNFETCHABLE_RECORD: ErrorKind
ERROR_KIND_GROUP_MEMBERSHIP: ErrorKind
MEMBERSHIP_STATE_UNSPECIFIED: MembershipState
MEMBERSHIP_STATE_JOINING: MembershipState
MEMBERSHIP_STATE_ASSIGNED: MembershipState
MEMBERSHIP_STATE_IDLE: MembershipState
MEMBERSHIP_STATE_OUT_OF_GROUP: MembershipState
MEMBERSHIP_STATE_STALLED: MembershipState

class Membership(_message.Message):
    __slots__ = ("state", "reason", "since", "member_id", "group_members", "topic_partitions", "rejoins")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    REJOINS_FIELD_NUMBER: _ClassVar[int]
    state: MembershipState
    reason: str
    since: _timestamp_pb2.Timestamp
    member_id: str
    group_members: int
    topic_partitions: int
    rejoins: int
    def __init__(self, state: _Optional[_Union[MembershipState, str]] = ..., reason: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., member_id: _Optional[str] = ..., group_members: _Optional[int] = ..., topic_partitions: _Optional[int] = ..., rejoins: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("state", "group_id", "topic", "dead_letter_topic", "counters", "partitions", "recent_errors", "last_order_time", "start_time", "failure_reason", "membership")
    STATE_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_TOPIC_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    RECENT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    LAST_ORDER_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    MEMBERSHIP_FIELD_NUMBER: _ClassVar[int]
    state: ConsumerState
    group_id: str
    topic: str
    dead_letter_topic: str
    counters: Counters
    partitions: _containers.RepeatedCompositeFieldContainer[PartitionStatus]
    recent_errors: _containers.RepeatedCompositeFieldContainer[ConsumerError]
    last_order_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    failure_reason: str
    membership: Membership
    def __init__(self, state: _Optional[_Union[ConsumerState, str]] = ..., group_id: _Optional[str] = ..., topic: _Optional[str] = ..., dead_letter_topic: _Optional[str] = ..., counters: _Optional[_Union[Counters, _Mapping]] = ..., partitions: _Optional[_Iterable[_Union[PartitionStatus, _Mapping]]] = ..., recent_errors: _Optional[_Iterable[_Union[ConsumerError, _Mapping]]] = ..., last_order_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_reason: _Optional[str] = ..., membership: _Optional[_Union[Membership, _Mapping]] = ...) -> None: ...

class Counters(_message.Message):
    __slots__ = ("processed", "duplicates_skipped", "errors_by_kind", "errors_total", "dead_lettered")
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_BY_KIND_FIELD_NUMBER: _ClassVar[int]
    ERRORS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    processed: int
    duplicates_skipped: int
    errors_by_kind: _containers.RepeatedCompositeFieldContainer[ErrorCount]
    errors_total: int
    dead_lettered: int
    def __init__(self, processed: _Optional[int] = ..., duplicates_skipped: _Optional[int] = ..., errors_by_kind: _Optional[_Iterable[_Union[ErrorCount, _Mapping]]] = ..., errors_total: _Optional[int] = ..., dead_lettered: _Optional[int] = ...) -> None: ...

class ErrorCount(_message.Message):
    __slots__ = ("kind", "count")
    KIND_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    kind: ErrorKind
    count: int
    def __init__(self, kind: _Optional[_Union[ErrorKind, str]] = ..., count: _Optional[int] = ...) -> None: ...

class PartitionStatus(_message.Message):
    __slots__ = ("partition", "committed_offset", "high_watermark", "lag", "position", "lag_seconds")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_OFFSET_FIELD_NUMBER: _ClassVar[int]
    HIGH_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    LAG_SECONDS_FIELD_NUMBER: _ClassVar[int]
    partition: int
    committed_offset: int
    high_watermark: int
    lag: int
    position: int
    lag_seconds: float
    def __init__(self, partition: _Optional[int] = ..., committed_offset: _Optional[int] = ..., high_watermark: _Optional[int] = ..., lag: _Optional[int] = ..., position: _Optional[int] = ..., lag_seconds: _Optional[float] = ...) -> None: ...

class ConsumerError(_message.Message):
    __slots__ = ("time", "kind", "topic", "partition", "offset", "message", "payload_excerpt")
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_EXCERPT_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    kind: ErrorKind
    topic: str
    partition: int
    offset: int
    message: str
    payload_excerpt: bytes
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[ErrorKind, str]] = ..., topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., message: _Optional[str] = ..., payload_excerpt: _Optional[bytes] = ...) -> None: ...

class WatchErrorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchErrorsResponse(_message.Message):
    __slots__ = ("error", "dropped")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    error: ConsumerError
    dropped: int
    def __init__(self, error: _Optional[_Union[ConsumerError, _Mapping]] = ..., dropped: _Optional[int] = ...) -> None: ...
