"""Which characters are dangerous or invisible: one table for validation, order_ids and logs.

Ranges are written out instead of asking ``unicodedata`` at import time (a scan of every code
point costs a tenth of a second per process); tests/unit/test_log_escaping.py checks them against
the running Python's Unicode database.
"""

from __future__ import annotations

import re

# Unicode category Cc: C0 controls (TAB, LF, CR, ESC, ...), DEL and the C1 controls.
C0 = "\x00-\x1f"
DEL_AND_C1 = "\x7f-\x9f"
CONTROL = C0 + DEL_AND_C1
# Unicode category Cf (format characters, Unicode 15): soft hyphen, Arabic and Syriac marks,
# zero-width space and joiners, LRM/RLM/ALM, the bidi embeddings, overrides and isolates
# (U+202A-202E, U+2066-2069), word joiner and invisible operators, BOM, interlinear annotation,
# Egyptian and shorthand format controls, musical beams, tags (U+E0000 block).
FORMAT = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
# Line and paragraph separators (Zl, Zp): line breaks to many readers (str.splitlines, JS).
SEPARATORS = "\u2028\u2029"
# Spaces other than U+0020 (Zs): they look like the space that separates log fields.
OTHER_SPACES = "\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
# Lone UTF-16 halves: a JSON escape such as "\ud800" makes one, and no UTF-8 text holds it.
SURROGATES = "\ud800-\udfff"
# Letters and marks that draw nothing: combining grapheme joiner, Hangul fillers, Khmer
# inherent vowels, braille blank.
BLANK_LETTERS = "\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0"
# Variation selectors: invisible on their own, but part of ordinary emoji (U+FE0F), so logs keep
# them as they are.
VARIATION_SELECTORS = "\u180b-\u180d\u180f\ufe00-\ufe0f\U000e0100-\U000e01ef"

# What a log line never carries raw: it could break the line, move the cursor, reorder or hide
# text, or look like a field separator.
UNSAFE_IN_LOGS = CONTROL + FORMAT + SEPARATORS + OTHER_SPACES + SURROGATES + BLANK_LETTERS
# The part of it that json.dumps(ensure_ascii=False) writes raw (it escapes only C0 itself).
UNSAFE_IN_LOGS_BEYOND_C0 = UNSAFE_IN_LOGS.removeprefix(C0)

_INVISIBLE_ONLY = re.compile(f"[\\s{FORMAT}{BLANK_LETTERS}{VARIATION_SELECTORS}]*")
_CONTROL = re.compile(f"[{CONTROL}]")
_SURROGATE = re.compile(f"[{SURROGATES}]")
_NOT_IN_A_TOKEN = re.compile(f"[\\s{UNSAFE_IN_LOGS}{VARIATION_SELECTORS}]")


# Each check answers ASCII text (nearly all of it) with str methods, which are one C loop each;
# the regexes are for the rest: a class with ranges beyond U+FFFF costs the regex engine a
# test against every range for every character.


def is_invisible(text: str) -> bool:
    """True when ``text`` draws nothing: only whitespace, format characters, fillers."""
    if text.isascii():
        return not text.strip()
    return _INVISIBLE_ONLY.fullmatch(text) is not None


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds a Cc character."""
    if text.isascii():
        return not text.isprintable()  # ASCII's only unprintable characters are C0 and DEL
    return _CONTROL.search(text) is not None


def has_surrogates(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def is_token(text: str) -> bool:
    """True when ``text`` is one printable word: no space, control, format or invisible mark."""
    if text.isascii():
        return text.isprintable() and bool(text) and " " not in text
    return _NOT_IN_A_TOKEN.search(text) is None


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", '"': '\\"'}


def escape_character(match: re.Match[str]) -> str:
    """The matched character as in a Python literal: ``\\n``, ``\\"``, ``\\x1b``, ``\\u202e``,
    ``\\U000e0041`` (for ``re.sub`` with a pattern of the characters to escape)."""
    char = match.group()
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
