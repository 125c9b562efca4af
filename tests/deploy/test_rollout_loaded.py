"""The whole rollout (start, promote, rollback, promote, finish) on real devservers with clients asking all along.

Clients ask ``composed`` with no label, by ``stable`` and (once it exists) by ``canary``; no request
may fail, ``stable`` never answers from the canary before promote, nor from the old version after.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers beside this file
from test_rollout_support import ClientLoop, composed_inputs, new_tower, rollout_dir, start_replica

from tfsk import deploy
from tfsk import serving_config as sc

FIGURES = os.environ.get("TFSK_ROLLOUT_FIGURES")  # a file to append the measured figures to (JSON lines)


@pytest.mark.parametrize("replicas", [1, 3])
def test_rollout_under_load_never_fails_a_request_and_stable_moves_only_on_promote(tmp_path, demo_base, replicas):
    folder = rollout_dir(tmp_path, demo_base)
    servers = [start_replica(folder) for _ in range(replicas)]
    try:
        addresses = [s.address for s in servers]
        targets = deploy.Targets(tuple(addresses), "host", timeout=120)
        inputs = composed_inputs(addresses[0])
        progress: list[tuple[float, str]] = []
        rollout = deploy.Rollout(folder / "tfsk.toml", "composed", targets,
                                 on_progress=lambda line: progress.append((time.monotonic(), line)))
        loops = [ClientLoop(addresses, None, inputs).start(), ClientLoop(addresses, "stable", inputs).start()]
        source = deploy.Source(keras_file=str(new_tower(tmp_path)))

        began = time.monotonic()
        state = rollout.start("tower_a", source)
        started = time.monotonic()
        new = state.candidate
        assert (state.stable, new, state.part_version) == (1, 2, 2)
        canary = ClientLoop(addresses, "canary", inputs).start()
        time.sleep(1.0)
        loops.append(canary)

        promote_began = time.monotonic()
        assert rollout.promote() == new
        promoted = time.monotonic()
        time.sleep(1.0)
        rollback_began = time.monotonic()
        assert rollout.rollback() == 1
        assert rollout.rollback() == 1  # again: nothing moves
        rolled_back = time.monotonic()
        time.sleep(1.0)
        second_promote_began = time.monotonic()
        rollout.promote()
        promoted_again = time.monotonic()
        time.sleep(1.0)
        rollout.finish()
        finished = time.monotonic()
        time.sleep(1.0)
        for loop in loops:
            loop.stop()

        failures = [a for loop in loops for a in loop.failures]
        assert failures == [], failures[:5]
        stable = loops[1]
        assert stable.versions(before=promote_began) == {1}  # never the canary before promote
        assert stable.versions(after=promoted, before=rollback_began) == {new}
        assert stable.versions(after=rolled_back, before=second_promote_began) == {1}
        assert stable.versions(after=promoted_again) == {new}  # never the old one after promote
        assert canary.versions() == {new}
        assert loops[0].versions(after=finished) == {new}
        assert all(len(loop.answers) > 10 for loop in loops)

        declared = sc.load_declaration(folder / "tfsk.toml").model("composed")
        assert declared.label_map == {"stable": new, "canary": new}
        assert declared.policy.versions == (new,)
        assert sorted(p.name for p in (folder / "demo-models" / "composed").iterdir() if p.name.isdigit()) == [str(new)]
        status = rollout.status()
        assert status["healthy"] and len(status["targets"]) == replicas
        assert all(t["labels"] == {"canary": new, "stable": new} for t in status["targets"])

        loaded = next(t for t, line in progress if line.startswith("AVAILABLE") and f"composed [1, {new}]" in line)
        figures = {"replicas": replicas, "requests": sum(len(loop.answers) for loop in loops),
                   "failed": len(failures), "start_to_canary_available_s": round(loaded - began, 2),
                   "start_s": round(started - began, 2), "whole_rollout_s": round(finished - began, 2)}
        print(json.dumps(figures))
        if FIGURES:
            with open(FIGURES, "a", encoding="utf-8") as out:
                out.write(json.dumps(figures) + "\n")
    except BaseException:
        for server in servers:  # what the servers said, for the failure's report
            print("\n".join(line for line in server.log().splitlines()[-40:] if "tfsk." in line))
        raise
    finally:
        for server in servers:
            server.stop()
