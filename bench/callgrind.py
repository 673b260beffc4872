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
    return dumps(out)[0]


def dumps(out: Path) -> list[int]:
    """The instructions counted in each dump written into ``out``, in order (each since the one before)."""
    counts: dict[int, int] = {}
    for dump in out.glob("cg.*.*"):
        for line in dump.read_text().splitlines():
            if line.startswith("summary:"):
                counts[int(dump.name.rsplit(".", 1)[1])] = int(line.split()[1])
    if not counts:
        raise RuntimeError("callgrind wrote no dump")
    return [counts[k] for k in sorted(counts)]
