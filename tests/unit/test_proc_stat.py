"""/proc/<pid>/stat fields, read past a command name that holds ") " itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from coffee_orders_devtools.waiting import wait_until
from coffee_orders_localkafka.proc_stat import process_gone, stat_fields


def test_the_fields_start_after_the_last_parenthesis_of_the_name(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("4242 (a) Z 1 (b) S 1 4242 4242 0 -1 4194560 5 0 0 0 170 31 0 0 20 0\n")
    fields = stat_fields(stat)
    assert fields[0] == "S" and (fields[11], fields[12]) == ("170", "31")


def test_this_process_reads_itself_running_with_its_cpu_ticks() -> None:
    fields = stat_fields(Path(f"/proc/{os.getpid()}/stat"))
    assert fields[0] == "R"  # reading its own stat file
    assert fields[11].isdigit() and fields[12].isdigit()  # user and system clock ticks


def test_a_running_process_is_not_gone_an_unreaped_or_reaped_one_is() -> None:
    assert not process_gone(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_until(lambda: stat_fields(Path(f"/proc/{child.pid}/stat"))[0] == "Z", 30, "a zombie")
    assert process_gone(child.pid)  # exited, not yet reaped
    child.wait()
    assert process_gone(child.pid)  # reaped: no /proc entry
