"""How long a command-line answer takes as a whole process: ``tfsk export --help`` and ``tfsk predict
--help`` (which must not load TensorFlow) against the floor of starting Python with the same
interpreter and importing nothing (``python -c pass``), and against ``python -c "import tensorflow"``
(what the help would cost if TensorFlow were imported eagerly). Runs are interleaved; medians and
the ratio to the floor are printed and written to benchmarks/results/cli.json.

    .venv/bin/python benchmarks/bench_cli.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from _common import write_results

COMMANDS = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "tfsk export --help": [sys.executable, "-m", "tfsk", "export", "--help"],
    "tfsk predict --help": [sys.executable, "-m", "tfsk", "predict", "--help"],
    "import tensorflow (eager cost)": [sys.executable, "-c", "import tensorflow"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):  # interleaved: each round runs every command once
        for name, command in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    floor = statistics.median(times["python -c pass (floor)"])
    results = {}
    for name, samples in times.items():
        median = statistics.median(samples)
        results[name] = {"median_s": median, "min_s": min(samples), "max_s": max(samples), "vs_floor": median / floor}
        print(f"{name:<32} median {median:.3f} s  (min {min(samples):.3f}, max {max(samples):.3f})  "
              f"{median / floor:.1f}x the floor")
    write_results("cli", results)


if __name__ == "__main__":
    main()
