"""Our log output read back strictly; shared with the fault run (coffee_orders_devtools)."""

from __future__ import annotations

from coffee_orders_devtools.log_lines import (
    Record,
    parse_json_log,
    parse_text_line,
    parse_text_log,
    unescape,
)

__all__ = ["Record", "parse_json_log", "parse_text_line", "parse_text_log", "unescape"]
