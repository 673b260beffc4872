"""Counting CPU instructions under valgrind's callgrind (bench/startup.py, bench/fanout.py): unlike wall time, a
count does not move with the machine's load or clock speed."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: A fixed hash seed: set and dict layouts, and so the count, are the same on every run.
ENV = {"PYTHONHASHSEED": "0"}


def command(out: Path, cmd: list[str]) -> list[str]:
    """``cmd`` run under callgrind, its dumps written into the directory ``out``."""
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p", *cmd]


def control(pid: int, action: str) -> None:
    """``callgrind_control <action> <pid>``: ``--zero`` counts from now, ``--dump`` writes the count so far."""
    subprocess.run(["callgrind_control", action, str(pid)], check=True, capture_output=True)


def first_dump(out: Path) -> int:
    """The instructions counted in the first dump written into ``out``."""
    for dump in out.glob("cg.*.1"):
        for line in dump.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no dump")
