"""The machine's processes as /proc lists them: for tests and benchmarks that look for what a
command started (a voice's session under the console, every process of a run)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["processes"]


def processes() -> dict[int, tuple[str, int]]:
    """Every process now: its name and its parent's pid."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # "pid (name) state ppid ...": the name may hold spaces and parentheses
            name, _, rest = stat.read_text().partition(" (")[2].rpartition(")")
            found[int(stat.parent.name)] = (name, int(rest.split()[1]))
        except (OSError, ValueError, IndexError):
            continue  # ended while read
    return found
