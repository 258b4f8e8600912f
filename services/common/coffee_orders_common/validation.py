"""The rules an order must follow, shared by the producer (requests) and consumer (messages)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .characters import has_control_characters, has_surrogates, is_invisible

MAX_FIELD_CHARS = 100
MAX_REQUEST_ID_CHARS = 128
ORDER_FIELDS = ("customer_name", "coffee_type")


class ViolationKind(Enum):
    MISSING = "missing"
    WRONG_TYPE = "wrong_type"
    BLANK = "blank"
    OVERSIZED = "oversized"
    CONTROL_CHARACTERS = "control_characters"
    # An escaped lone surrogate ("\ud800" in JSON): text no UTF-8 encoder can write.
    INVALID_UNICODE = "invalid_unicode"


@dataclass(frozen=True)
class FieldViolation:
    field: str
    kind: ViolationKind
    description: str


@dataclass(frozen=True)
class Order:
    """A valid order: both fields trimmed, visible, short, printable."""

    customer_name: str
    coffee_type: str


class InvalidOrder(ValueError):
    """One or more fields break the rules; ``violations`` says which and why."""

    def __init__(self, violations: list[FieldViolation]):
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))


def check_text_field(
    field: str, value: object, max_chars: int = MAX_FIELD_CHARS, required: bool = True
) -> tuple[str, FieldViolation | None]:
    """Trim one field and return it, or the first rule it breaks."""
    if value is None or (value == "" and required):
        return "", FieldViolation(field, ViolationKind.MISSING, f"{field} is required")
    if not isinstance(value, str):
        kind = type(value).__name__
        return "", FieldViolation(
            field, ViolationKind.WRONG_TYPE, f"{field} must be a string, not {kind}"
        )
    text = value.strip()
    if required and is_invisible(text):  # empty, or zero-width and format characters only
        return "", FieldViolation(field, ViolationKind.BLANK, f"{field} must not be blank")
    if len(text) > max_chars:
        return "", FieldViolation(
            field,
            ViolationKind.OVERSIZED,
            f"{field} must be at most {max_chars} characters, got {len(text)}",
        )
    if has_control_characters(text):
        return "", FieldViolation(
            field,
            ViolationKind.CONTROL_CHARACTERS,
            f"{field} must not contain control characters",
        )
    if has_surrogates(text):
        return "", FieldViolation(
            field,
            ViolationKind.INVALID_UNICODE,
            f"{field} must not contain lone surrogates (\\ud800-\\udfff)",
        )
    return text, None


def validate_order(customer_name: object, coffee_type: object) -> Order:
    """Return the cleaned order, or raise InvalidOrder listing every broken field."""
    name, name_problem = check_text_field("customer_name", customer_name)
    coffee, coffee_problem = check_text_field("coffee_type", coffee_type)
    violations = [v for v in (name_problem, coffee_problem) if v is not None]
    if violations:
        raise InvalidOrder(violations)
    return Order(customer_name=name, coffee_type=coffee)
