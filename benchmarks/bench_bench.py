"""The ceiling of ``tfsk bench``'s generator against the best hand-written Python generators, on the
same devserver, the same pre-serialized request, the same number of processes, the same concurrency:

- ``callbacks``: raw ``channel.unary_unary`` futures, each answer's callback sending the next
  (what ``tfsk bench`` does, minus its timing and bookkeeping);
- ``threads``: one thread per request in flight, blocking raw calls in a loop (what most
  hand-written load scripts do, e.g. ``benchmarks/_common.run_clients``).

Each counts the answers that arrive in the same measured window after the same warmup. Rounds
rotate the order of the contenders, so drift on a shared machine hits all of them; the ratio per
round is ``tfsk bench`` / the best hand-written one in that round, reported as median (min-max),
with each contender's median requests per second. Target: ratio >= 0.9. Writes
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


def tfsk_bench(target, concurrency, processes, warmup, seconds) -> tuple[float, float]:
    from tfsk.deploy.bench import LoadStep, run_bench

    report = run_bench(target, MODEL, [LoadStep(concurrency=concurrency, duration_seconds=seconds,
                                                warmup_seconds=warmup)], processes=processes)
    step = report.steps[0]
    if step.errors:
        raise RuntimeError(f"tfsk bench saw errors: {step.errors}")
    return step.throughput, step.generator_cpu


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
            contenders = ["tfsk", "callbacks", "threads"]
            rounds = []
            for number in range(args.rounds):
                order = contenders[number % 3:] + contenders[:number % 3]
                found: dict = {}
                for name in order:
                    if name == "tfsk":
                        found["tfsk"], found["tfsk_generator_cpu"] = tfsk_bench(server.address, args.concurrency,
                                                                                processes, args.warmup, args.seconds)
                    else:
                        found[name], found[f"{name}_generator_cpu"] = hand_written(name, server.address, body, args.concurrency, processes, args.warmup,
                                                   args.seconds)
                found["best_hand_written"] = max(found["callbacks"], found["threads"])
                for name in contenders:  # what each spends per request: less CPU leaves more to a server on the same cores
                    found[f"{name}_cpu_us_per_request"] = found[f"{name}_generator_cpu"] / found[name] * 1e6
                found["ratio"] = found["tfsk"] / found["best_hand_written"]
                found["load_average"] = os.getloadavg()[0]
                rounds.append(found)
                print(f"processes {processes} round {number + 1}: " + ", ".join(
                    f"{name} {found[name]:.0f} rps ({found[f'{name}_cpu_us_per_request']:.0f} us CPU/request)"
                    for name in contenders) + f", ratio {found['ratio']:.3f} (load {found['load_average']:.1f})",
                    flush=True)
            ratio = spread([r["ratio"] for r in rounds])
            results[f"processes_{processes}"] = {
                "rounds": rounds, "ratio_tfsk_over_best_hand_written": ratio,
                **{f"{name}_rps_median": statistics.median(r[name] for r in rounds) for name in contenders},
                **{f"{name}_cpu_us_per_request_median": statistics.median(r[f"{name}_cpu_us_per_request"] for r in rounds)
                   for name in contenders},
                "target_ratio_at_least_0.9": ratio["median"] >= 0.9}
    print(f"{'processes':<10}{'tfsk rps':>10}{'callbacks':>11}{'threads':>9}{'ratio tfsk/best':>28}"
          f"{'CPU us/request tfsk/callbacks/threads':>40}")
    for key, entry in results.items():
        r = entry["ratio_tfsk_over_best_hand_written"]
        ratio_text = f"{r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f})"
        print(f"{key.split('_')[1]:<10}{entry['tfsk_rps_median']:>10.0f}{entry['callbacks_rps_median']:>11.0f}"
              f"{entry['threads_rps_median']:>9.0f}{ratio_text:>28}"
              + "{:>40}".format("/".join(f"{entry[f'{n}_cpu_us_per_request_median']:.0f}"
                                         for n in ("tfsk", "callbacks", "threads")))
              + f"  target >= 0.9 {'met' if entry['target_ratio_at_least_0.9'] else 'MISSED'}")
    path = write_results("bench", {"concurrency": args.concurrency, "seconds": args.seconds, "warmup": args.warmup,
                                   "rounds": args.rounds, "model": MODEL, "results": results})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
