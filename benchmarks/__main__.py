"""Run every benchmark: `python -m benchmarks [NAME ...]`.

Each benchmarks/bench_NAME.py has a `main() -> None` that measures shipyard beside a baseline
in the same run and prints a ratio. Results go into docs/benchmarks.md by hand, with the machine.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    names = argv or sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
