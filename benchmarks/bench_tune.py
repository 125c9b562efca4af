"""``tfsk tune batching`` against the hand-picked batching parameters of bench_batching.py, same load, same run.

Exports the heavy composed model of bench_batching.py (68.5 MiB of tower weights) and the demo,
declares both in a tfsk.toml of the work folder, and runs the command a user would:

    tfsk tune batching heavy --concurrency 32 --p99 500ms --trials 8 --duration 5s --declaration WORK/tfsk.toml
    tfsk tune batching composed --concurrency 32 --p99 500ms --trials 8 --duration 5s --declaration WORK/tfsk.toml

Then, for the heavy model, three devservers at once — no batching, the hand-picked ``BATCHING``,
and the tune's best — measured with ``run_bench`` at the same load in interleaved rounds (the
order rotates each round); the medians and the per-round ratios against the hand-picked are
reported. Writes benchmarks/results/tune.json.

    .venv/bin/python benchmarks/bench_tune.py [--trials 8] [--duration 5] [--repeats 5] [--clients 32] [--p99 500ms]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import REPO, export_demo_once, write_results  # noqa: E402
from bench_batching import BATCHING, export_heavy  # noqa: E402

DECLARATION = """[paths]
host_root = "models"
container_root = "/models"

[models.heavy]   # bench_batching.py's 68.5 MiB composed model

[models.composed]   # the demo's composed model (tiny towers)
"""


def tune(work: Path, model: str, args: argparse.Namespace) -> tuple[list[str], dict]:
    out = work / f"tune-{model}.json"
    command = ["tfsk", "tune", "batching", model, "--concurrency", str(args.clients), "--p99", args.p99,
               "--trials", str(args.trials), "--duration", f"{args.duration:g}s", "--declaration",
               str(work / "tfsk.toml"), "--json", str(out)]
    print("$ " + " ".join(command), flush=True)
    run = subprocess.run([sys.executable, "-m", "tfsk", *command[1:]], cwd=REPO, text=True, capture_output=True)
    print(run.stdout + run.stderr, flush=True)
    if run.returncode not in (0, 1):
        raise SystemExit(f"the tune failed (exit {run.returncode})")
    return command, json.loads(out.read_text())


def compare(work: Path, tuned: dict, args: argparse.Namespace) -> dict:
    """No batching, the hand-picked parameters and the tune's best on three servers, interleaved rounds."""
    from tests.server_process import free_port
    from tfsk import serving_config as sc
    from tfsk.deploy import LoadStep, run_bench
    from tfsk.devserver import start_process

    declaration = sc.load_declaration(work / "tfsk.toml")
    config = work / "heavy.config"
    sc.write_model_server_config(sc.model_server_config([sc.model_config(
        "heavy", declaration.base_path(declaration.model("heavy"), "host"))]), config)
    settings = {"off": None, "hand-picked": sc.BatchingSettings(**BATCHING),
                "tuned": sc.BatchingSettings(**{k: tuple(v) if isinstance(v, list) else v
                                                for k, v in tuned["best_batching"].items()})}
    servers = {}
    try:
        for name, batching in settings.items():
            flags = [f"--port={free_port()}", f"--model_config_file={config}"]
            if batching is not None:
                params = work / f"batching-{name}.config"
                sc.write_batching_parameters(batching, params)
                flags += ["--enable_batching", f"--batching_parameters_file={params}"]
            servers[name] = start_process(flags, log=work / f"server-{name}.log")
        step = LoadStep(concurrency=args.clients, duration_seconds=args.duration, warmup_seconds=2.0)
        runs: dict[str, list[dict]] = {name: [] for name in servers}
        names = list(servers)
        for round_ in range(args.repeats):
            for name in names[round_ % 3:] + names[:round_ % 3]:
                result = run_bench(servers[name].address, "heavy", [step]).steps[0]
                runs[name].append({"throughput": result.throughput, "p50_ms": result.latency_ms["p50"],
                                   "p99_ms": result.latency_ms["p99"], "errors": result.errors})
                print(f"round {round_ + 1} {name:<12}: {result.throughput:8.1f} req/s  p50 "
                      f"{result.latency_ms['p50']:7.1f} ms  p99 {result.latency_ms['p99']:7.1f} ms", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    ratio = [t["throughput"] / h["throughput"] for t, h in zip(runs["tuned"], runs["hand-picked"])]
    off = [h["throughput"] / o["throughput"] for h, o in zip(runs["hand-picked"], runs["off"])]
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in ("throughput", "p50_ms", "p99_ms")}
               for name, rs in runs.items()}
    return {"settings": {k: None if v is None else v.to_json() for k, v in settings.items()}, "runs": runs,
            "median": medians, "tuned_over_hand_picked": {"median": statistics.median(ratio), "rounds": ratio},
            "hand_picked_over_off": {"median": statistics.median(off), "rounds": off}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per trial and per comparison round")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved comparison rounds")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--p99", default="500ms")
    parser.add_argument("--work", type=Path, help="folder for the models (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-tune-"))
    export_demo_once(work / "models")
    _, heavy_bytes = export_heavy(work / "models")
    (work / "tfsk.toml").write_text(DECLARATION)
    load = os.getloadavg()
    began = time.monotonic()
    heavy_command, heavy = tune(work, "heavy", args)
    comparison = compare(work, heavy, args) if heavy["best_batching"] else None
    tiny_command, tiny = tune(work, "composed", args)
    print(f"heavy: verdict {heavy['verdict']}; {heavy['message']}")
    if comparison:
        med = comparison["median"]
        print(f"heavy, medians of {args.repeats} interleaved rounds at {args.clients} clients: off "
              f"{med['off']['throughput']:.1f} req/s, hand-picked {med['hand-picked']['throughput']:.1f}, tuned "
              f"{med['tuned']['throughput']:.1f}; tuned/hand-picked {comparison['tuned_over_hand_picked']['median']:.2f}x "
              f"(rounds {', '.join(f'{r:.2f}' for r in comparison['tuned_over_hand_picked']['rounds'])})")
    print(f"demo composed: verdict {tiny['verdict']}; {tiny['message']}")
    path = write_results("tune", {"heavy_weight_bytes": heavy_bytes, "load_average_before": load,
                                  "load_average_after": os.getloadavg(), "seconds": time.monotonic() - began,
                                  "heavy": {"command": heavy_command, "report": heavy, "comparison": comparison},
                                  "tiny": {"command": tiny_command, "report": tiny}})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
