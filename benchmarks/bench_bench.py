"""The ceiling of ``tfsk bench``'s generator against the best hand-written Python generators, on the
same devserver, the same pre-serialized request, the same number of processes, the same concurrency:

- ``callbacks``: raw ``channel.unary_unary`` futures, each answer's callback sending the next
  (what ``tfsk bench`` does, minus its timing and bookkeeping);
- ``threads``: one thread per request in flight, blocking raw calls in a loop (what most
  hand-written load scripts do, e.g. ``benchmarks/_common.run_clients``).

Each counts the answers that arrive in the same measured window after the same warmup. Rounds
rotate the order of the contenders, so drift on a shared machine hits all of them. The best
hand-written generator is the one with the higher median requests per second; the ratio per round
is ``tfsk bench`` / that one, reported as median (min-max), with each contender's median requests
per second and CPU microseconds per request. ``tfsk_threads`` is ``tfsk bench`` with its
thread-per-slot engine (``run_bench(engine="threads")``). Target: ratio >= 0.9. Writes
benchmarks/results/bench.json.

    .venv/bin/python benchmarks/bench_bench.py [--concurrency 32] [--processes 1,2] [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import export_demo_once, spread, write_results  # noqa: E402

PREDICT = "/tensorflow.serving.PredictionService/Predict"
MODEL = "tower_c"


def request_bytes() -> bytes:
    import numpy as np

    from tfsk._base.codec import encode_tensor
    from tfsk._base.messages import MESSAGES

    request = MESSAGES["PredictRequest"]()
    request.model_spec.name = MODEL
    encode_tensor(np.ones((1, 5), np.float32), request.inputs["features"])
    return request.SerializeToString()


def _channel(target):
    import grpc

    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", -1)])
    grpc.channel_ready_future(channel).result(timeout=30)
    return channel


def _callbacks(call, body, concurrency, measure_from, stop_at) -> int:
    counted, lock, done, live = [0], threading.Lock(), threading.Event(), [concurrency]

    def answered(future):
        now = time.perf_counter()
        if measure_from <= now < stop_at and future.exception() is None:
            counted[0] += 1
        if now < stop_at:
            call.future(body, timeout=30).add_done_callback(answered)
            return
        with lock:
            live[0] -= 1
            if live[0] == 0:
                done.set()

    for _ in range(concurrency):
        call.future(body, timeout=30).add_done_callback(answered)
    done.wait()
    return counted[0]


def _threads(call, body, concurrency, measure_from, stop_at) -> int:
    counts = [0] * concurrency

    def loop(slot):
        while time.perf_counter() < stop_at:
            call(body, timeout=30)
            if time.perf_counter() >= measure_from:
                counts[slot] += 1

    workers = [threading.Thread(target=loop, args=(slot,)) for slot in range(concurrency)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts)


def hand_written_process(kind, target, body, concurrency, warmup, seconds, ready, go, results):
    """One process of a hand-written generator: connect, wait for the start, count answers in the window."""
    channel = _channel(target)
    call = channel.unary_unary(PREDICT)
    ready.put(1)
    go.wait()
    begin, cpu = time.perf_counter(), time.process_time()
    count = (_callbacks if kind == "callbacks" else _threads)(call, body, concurrency, begin + warmup,
                                                              begin + warmup + seconds)
    results.put((count, (time.process_time() - cpu) / (time.perf_counter() - begin)))
    channel.close()


def hand_written(kind, target, body, concurrency, processes, warmup, seconds) -> tuple[float, float]:
    """Requests per second in the window, and the generator's CPU seconds per wall second (all processes)."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    shares = [concurrency // processes + (1 if k < concurrency % processes else 0) for k in range(processes)]
    children = [context.Process(target=hand_written_process, args=(kind, target, body, share, warmup, seconds, ready,
                                                                   go, results)) for share in shares if share]
    for child in children:
        child.start()
    for _ in children:
        ready.get(timeout=120)
    go.set()
    found = [results.get(timeout=seconds + warmup + 120) for _ in children]
    for child in children:
        child.join(30)
    return sum(count for count, _ in found) / seconds, sum(cpu for _, cpu in found)


def tfsk_bench(target, concurrency, processes, warmup, seconds, engine) -> tuple[float, float]:
    from tfsk.deploy.bench import LoadStep, run_bench

    report = run_bench(target, MODEL, [LoadStep(concurrency=concurrency, duration_seconds=seconds,
                                                warmup_seconds=warmup)], processes=processes, engine=engine)
    step = report.steps[0]
    if step.errors:
        raise RuntimeError(f"tfsk bench saw errors: {step.errors}")
    return step.throughput, step.generator_cpu


CONTENDERS = ("tfsk", "tfsk_threads", "callbacks", "threads")
HAND_WRITTEN = ("callbacks", "threads")


def measure_round(address, body, processes, number, args) -> dict:
    """Each contender once, in an order rotated by round: requests per second and CPU per request."""
    order = CONTENDERS[number % 4:] + CONTENDERS[:number % 4]
    found: dict = {}
    for name in order:
        if name.startswith("tfsk"):
            rps, cpu = tfsk_bench(address, args.concurrency, processes, args.warmup, args.seconds,
                                  "threads" if name == "tfsk_threads" else "callbacks")
        else:
            rps, cpu = hand_written(name, address, body, args.concurrency, processes, args.warmup, args.seconds)
        # CPU per request: what a generator costs; less leaves more to a server on the same cores
        found[name] = {"rps": rps, "generator_cpu": cpu, "cpu_us_per_request": cpu / rps * 1e6}
    found["load_average"] = os.getloadavg()[0]
    print(f"processes {processes} round {number + 1}: " + ", ".join(
        f"{name} {found[name]['rps']:.0f} rps ({found[name]['cpu_us_per_request']:.0f} us CPU/request)"
        for name in CONTENDERS) + f" (load {found['load_average']:.1f})", flush=True)
    return found


def summarize(rounds: list[dict]) -> dict:
    """Medians, and per-round ratios against the best hand-written generator: the one with the higher
    median. (Not each round's faster one: the larger of two noisy figures is biased upwards, and
    would put even an identical generator below 1.)"""
    entry: dict = {"rounds": rounds}
    for name in CONTENDERS:
        entry[name] = {f"{key}_median": statistics.median(r[name][key] for r in rounds)
                       for key in ("rps", "cpu_us_per_request")}
    best = max(HAND_WRITTEN, key=lambda name: entry[name]["rps_median"])
    entry["best_hand_written"] = best
    for name in ("tfsk", "tfsk_threads"):
        entry[f"{name}_over_best"] = spread([r[name]["rps"] / r[best]["rps"] for r in rounds])
    entry["target_ratio_at_least_0.9"] = entry["tfsk_over_best"]["median"] >= 0.9
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (the default sweep's top)")
    parser.add_argument("--processes", default="1,2", help="generator processes, each setting measured in turn")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured window per contender and round")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured load before each window")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args()
    from tests.server_process import ServerProcess

    base = export_demo_once(Path(tempfile.mkdtemp(prefix="bench-bench-")) / "models")
    config = base / "bench.config"
    config.write_text(f'model_config_list {{ config {{ name: "{MODEL}" base_path: "{base / MODEL}" '
                      f'model_platform: "tensorflow" }} }}\n')
    body = request_bytes()
    results = {}
    with ServerProcess(f"--model_config_file={config}") as server:
        for processes in [int(p) for p in args.processes.split(",")]:
            rounds = [measure_round(server.address, body, processes, number, args) for number in range(args.rounds)]
            results[f"processes_{processes}"] = summarize(rounds)
    print(f"{'processes':<10}" + "".join(f"{name + ' rps':>18}" for name in CONTENDERS)
          + f"{'best hand-written':>18}{'tfsk / best':>22}{'tfsk(threads) / best':>22}   CPU us/request "
          + "/".join(CONTENDERS))
    for key, entry in results.items():
        cells = [f"{entry[name]['rps_median']:>18.0f}" for name in CONTENDERS]
        ratios = [entry[f"{name}_over_best"] for name in ("tfsk", "tfsk_threads")]
        texts = [f"{r['median']:.3f} ({r['min']:.2f}-{r['max']:.2f})" for r in ratios]
        print(f"{key.split('_')[1]:<10}" + "".join(cells) + f"{entry['best_hand_written']:>18}"
              + "".join(f"{t:>22}" for t in texts) + "   "
              + "/".join(f"{entry[name]['cpu_us_per_request_median']:.0f}" for name in CONTENDERS)
              + f"  target >= 0.9 {'met' if entry['target_ratio_at_least_0.9'] else 'MISSED'}")
    path = write_results("bench", {"concurrency": args.concurrency, "seconds": args.seconds, "warmup": args.warmup,
                                   "rounds": args.rounds, "model": MODEL, "results": results})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
