"""Does a slow shadow slow the caller? Predict p50/p99 with and without a shadow copy of every call
sent to a label that takes 500 ms to answer.

The slow label is made by a gRPC proxy in front of a devserver (tests/delay_proxy.py) that holds
Predict calls for label ``slow`` back by ``--delay`` seconds; both clients go through the proxy, so
they pay the same hop. Rounds interleave the two clients (order alternating); each round's p99 with
shadow over p99 without is one ratio; the median and range of those ratios are the result. Writes
benchmarks/results/shadow.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import export_demo_once, latency_stats, spread, write_results


def _round(client, calls: int) -> list[float]:  # type: ignore[no-untyped-def]
    inputs = {"features": np.ones((1, 5), np.float32)}
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        client.predict("tower_c", inputs, label="stable")
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--calls", type=int, default=400, help="calls per client per round")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds the shadow label takes to answer")
    parser.add_argument("--sample", type=float, default=1.0, help="share of calls copied to the shadow")
    args = parser.parse_args()
    from tests.delay_proxy import DelayProxy
    from tests.server_process import ServerProcess
    from tfsk.client import Client, Shadow

    base = export_demo_once(Path(tempfile.mkdtemp(prefix="bench-shadow-")) / "models")
    config = base / "bench.config"
    config.write_text(f'model_config_list {{ config {{ name: "tower_c" base_path: "{base / "tower_c"}" '
                      f'model_platform: "tensorflow" version_labels {{ key: "stable" value: 1 }} '
                      f'version_labels {{ key: "slow" value: 1 }} }} }}\n')
    with ServerProcess(f"--model_config_file={config}", "--allow_version_labels_for_unavailable_models") as server, \
            DelayProxy(server.address, "slow", args.delay) as proxy, \
            Client(proxy.address) as plain, \
            Client(proxy.address, shadow=Shadow(label="slow", sample=args.sample, queue=100, workers=4)) as shadowed:
        for client in (plain, shadowed):
            _round(client, 50)  # warm: channels, signature cache, proxy threads
        rounds: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
        for number in range(args.repeats):
            order = [("without", plain), ("with", shadowed)]
            for name, client in order if number % 2 == 0 else reversed(order):
                rounds[name].append(latency_stats(_round(client, args.calls)))
        shadow = shadowed.shadow_stats()
    ratios = {stat: spread([w[stat] / o[stat] for w, o in zip(rounds["with"], rounds["without"], strict=True)])
              for stat in ("p50_ms", "p99_ms")}
    medians = {name: {stat: statistics.median(r[stat] for r in per) for stat in ("p50_ms", "p99_ms")}
               for name, per in rounds.items()}
    print(f"{'Predict tower_c, batch 1':<28}{'without':>10}{'with shadow':>14}{'ratio (median, min-max)':>30}")
    for stat in ("p50_ms", "p99_ms"):
        r = ratios[stat]
        print(f"{stat:<28}{medians['without'][stat]:>10.3f}{medians['with'][stat]:>14.3f}"
              f"{r['median']:>14.2f} ({r['min']:.2f}-{r['max']:.2f})")
    print(f"shadow copies: {shadow.offered} sampled, {shadow.dropped} dropped (queue full), {shadow.answered} answered, "
          f"p50 {shadow.p50 and shadow.p50 * 1e3:.0f} ms")
    path = write_results("shadow", {"repeats": args.repeats, "calls_per_round": args.calls, "delay_seconds": args.delay,
                                    "sample": args.sample, "medians_ms": medians, "ratios_with_over_without": ratios,
                                    "rounds": rounds, "shadow": vars(shadow)})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
