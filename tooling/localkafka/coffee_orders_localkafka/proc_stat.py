"""The fields of a Linux ``/proc/<pid>/stat`` (or ``/proc/<pid>/task/<tid>/stat``) file."""

from __future__ import annotations

from pathlib import Path


def stat_fields(stat_file: Path) -> list[str]:
    """The fields after the command name: ``[0]`` is the state letter (``Z`` a zombie, ``T``
    stopped), ``[11]`` and ``[12]`` the user and system CPU time in clock ticks (proc(5)).

    The name is cut at the last ``)``: a process may call itself ``a) b``. Raises what reading
    the file raises (FileNotFoundError once the process or thread is gone).
    """
    return stat_file.read_text().rsplit(")", 1)[1].split()


def process_gone(pid: int) -> bool:
    """No such process any more, or only its zombie (exited, not yet reaped by its parent)."""
    try:
        return stat_fields(Path(f"/proc/{pid}/stat"))[0] == "Z"
    except FileNotFoundError:
        return True
