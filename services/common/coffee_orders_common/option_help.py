"""How a command's --help names a setting's environment variable and default: one shape for the
services' flags (``runner``), the client commands and the local tools."""

from __future__ import annotations


def option_help(text: str, *, default: object = None, env: str | None = None) -> str:
    """``text [env NAME; default X]``; argparse's own % signs are escaped."""
    notes = [f"env {env}"] if env else []
    if default is not None:
        notes.append(f"default {default}")
    suffix = f" [{'; '.join(notes)}]" if notes else ""
    return f"{text}{suffix}".replace("%", "%%")
