"""Anchors of Markdown headings, as GitHub makes them (for links into the docs)."""

from __future__ import annotations

import re
from pathlib import Path


def heading_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchor of every heading of ``path`` (outside fenced blocks)."""
    found: set[str] = set()
    fenced = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"^#{1,6}\s+(.*)$", line)):
            found.add(heading_anchor(heading.group(1)))
    return found
