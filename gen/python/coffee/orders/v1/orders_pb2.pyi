import datetime

from coffee.orders.v1 import order_tracking_pb2 as _order_tracking_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WaitFor(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WAIT_FOR_UNSPECIFIED: _ClassVar[WaitFor]
    WAIT_FOR_CONFIRMED: _ClassVar[WaitFor]
    WAIT_FOR_PROCESSED: _ClassVar[WaitFor]
WAIT_FOR_UNSPECIFIED: WaitFor
WAIT_FOR_CONFIRMED: WaitFor
WAIT_FOR_PROCESSED: WaitFor

class PlaceOrderRequest(_message.Message):
    __slots__ = ("customer_name", "coffee_type", "request_id", "wait_for")
    CUSTOMER_NAME_FIELD_NUMBER: _ClassVar[int]
    COFFEE_TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_FIELD_NUMBER: _ClassVar[int]
    customer_name: str
    coffee_type: str
    request_id: str
    wait_for: WaitFor
    def __init__(self, customer_name: _Optional[str] = ..., coffee_type: _Optional[str] = ..., request_id: _Optional[str] = ..., wait_for: _Optional[_Union[WaitFor, str]] = ...) -> None: ...

class PlaceOrderResponse(_message.Message):
    __slots__ = ("order_id", "topic", "partition", "offset", "timestamp", "processing")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    topic: str
    partition: int
    offset: int
    timestamp: _timestamp_pb2.Timestamp
    processing: _order_tracking_pb2.OrderStatus
    def __init__(self, order_id: _Optional[str] = ..., topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., processing: _Optional[_Union[_order_tracking_pb2.OrderStatus, _Mapping]] = ...) -> None: ...

class PlaceOrdersRequest(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[PlaceOrderRequest]
    def __init__(self, orders: _Optional[_Iterable[_Union[PlaceOrderRequest, _Mapping]]] = ...) -> None: ...

class PlaceOrdersResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[OrderResult]
    def __init__(self, results: _Optional[_Iterable[_Union[OrderResult, _Mapping]]] = ...) -> None: ...

class OrderResult(_message.Message):
    __slots__ = ("confirmed", "error")
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    confirmed: PlaceOrderResponse
    error: OrderError
    def __init__(self, confirmed: _Optional[_Union[PlaceOrderResponse, _Mapping]] = ..., error: _Optional[_Union[OrderError, _Mapping]] = ...) -> None: ...

class OrderError(_message.Message):
    __slots__ = ("code", "message", "placed")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PLACED_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    placed: PlaceOrderResponse
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., placed: _Optional[_Union[PlaceOrderResponse, _Mapping]] = ...) -> None: ...
