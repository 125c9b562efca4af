"""What a batching tune tries and what it concludes, without servers: the grid, the coordinate descent
over it, the verdict against the baseline, and the best written into tfsk.toml."""

import itertools
from dataclasses import replace

import pytest
from support import REPO

from tfsk import serving_config as sc
from tfsk.deploy import AXES, MIN_GAIN, Candidate, LoadStep, SearchSpace, Trial, TuneReport, coordinate_descent


def _grid(space):
    return [Candidate(**dict(zip(AXES, values))) for values in itertools.product(*(space.values[a] for a in AXES))]


def _bowl(best: Candidate):
    """A score that peaks at ``best`` and falls off with the distance in grid steps on every axis."""
    def score(space, candidate):
        return (-sum(abs(space.values[a].index(getattr(candidate, a)) - space.values[a].index(getattr(best, a)))
                     for a in AXES),)
    return score


def test_the_grid_is_cut_to_what_the_load_and_the_bound_can_use():
    space = SearchSpace.for_load(concurrency=8, p99_ms=3, cpus=2)
    assert space.values["max_batch_size"] == (2, 4, 8)  # a closed loop of 8 never makes a batch above 8
    assert space.values["batch_timeout_micros"] == (0, 500, 1000)  # under half the 3 ms bound
    assert space.values["num_batch_threads"] == (1, 2, 4)
    assert space.start == Candidate(8, 0, 2, 100, False)
    open_loop = SearchSpace.for_load(concurrency=None, p99_ms=100, cpus=2)
    assert open_loop.values["max_batch_size"][-1] == 128 and open_loop.start.max_batch_size == 32
    assert open_loop.size == 7 * 7 * 3 * 3 * 2
    assert Candidate(16, 0, 2, 100, True).settings().allowed_batch_sizes == (4, 8, 16)
    assert sc.validate_batching_settings(Candidate(2, 0, 1, 10, True).settings()).ok
    assert all(sc.validate_batching_settings(c.settings()).ok for c in _grid(open_loop))


def test_coordinate_descent_finds_the_peak_in_far_fewer_trials_than_the_grid():
    space = SearchSpace.for_load(concurrency=64, p99_ms=100, cpus=2)
    peak = Candidate(16, 2000, 1, 1000, True)
    score = _bowl(peak)
    tried = coordinate_descent(space, lambda c: score(space, c), trials=100, seed=3)
    assert tried[0] == space.start and tried[-1] != tried[0]
    assert peak in tried and len(tried) == len(set(tried))  # each candidate measured once
    assert len(tried) < space.size / 10, (len(tried), space.size)


def test_the_search_is_deterministic_given_a_seed_and_stops_at_the_trial_bound_or_when_told():
    space = SearchSpace.for_load(concurrency=64, p99_ms=100, cpus=2)
    score = _bowl(Candidate(4, 5000, 4, 10, False))
    runs = [coordinate_descent(space, lambda c: score(space, c), trials=100, seed=seed) for seed in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert len(coordinate_descent(space, lambda c: score(space, c), trials=3, seed=7)) == 3
    budget = iter([(1.0,), (2.0,), None])
    assert len(coordinate_descent(space, lambda c: next(budget), trials=100)) == 2


POINT = Candidate(8, 0, 2, 100)


def _trial(index, throughput, p99, candidate=POINT, meets=True):
    return Trial(index, candidate, throughput, {"p50": p99 / 2, "p99": p99}, int(throughput * 10), {}, 0, True,
                 3.0, meets)


def _report(*trials, rate=None):
    load = LoadStep(rate=rate) if rate else LoadStep(concurrency=8)
    return TuneReport("m", 1, "devserver", load, 50.0, 0, 100, list(trials))


def test_the_verdict_batching_off_or_none_against_the_baseline():
    base = _trial(0, 100.0, 10.0, candidate=None)
    report = _report(base, _trial(1, 150.0, 12.0), _trial(2, 300.0, 60.0, meets=False))
    assert report.best.index == 1 and report.verdict == "batching"
    assert "trial #1, 150.0 req/s" in report.message() and "100.0 req/s (p99 10.0 ms) without batching" in report.message()
    assert report.to_json()["best_batching"]["max_batch_size"] == 8
    within_noise = _report(base, _trial(1, 100.0 * (1 + MIN_GAIN / 2), 9.0))
    assert within_noise.verdict == "off" and "batching does not pay" in within_noise.message()
    none = _report(replace(base, meets=False), _trial(1, 300.0, 60.0, meets=False))
    assert none.verdict == "none" and none.best is None and "batching should stay off" in none.message()
    assert none.to_json()["best"] is None
    at_rate = _report(replace(base, throughput=50.0), _trial(1, 50.0, 5.0), _trial(2, 50.0, 8.0), rate=50.0)
    assert at_rate.best.index == 1 and at_rate.verdict == "batching" and "p99 5.0 ms" in at_rate.message()


def test_the_verdict_takes_the_medians_of_the_confirmation_rounds():
    base, lucky = _trial(0, 100.0, 10.0, candidate=None), _trial(1, 200.0, 12.0)  # one lucky measurement
    report = _report(base, lucky)
    assert report.verdict == "batching" and report.measurements == 1
    report.confirmations += [_trial(1, 90.0, 14.0), _trial(0, 104.0, 9.0, candidate=None), _trial(1, 95.0, 13.0),
                             _trial(0, 100.0, 11.0, candidate=None)]
    judged = report.judged(lucky)
    assert judged.throughput == 95.0 and judged.p99 == 13.0 and judged.requests == 2000 + 900 + 950
    assert report.judged(base).throughput == 100.0 and report.verdict == "off"
    assert "medians of 3 interleaved measurements; 0.91x the baseline, median of the rounds" in report.message()
    assert report.to_json()["judged"]["best"]["throughput"] == 95.0
    # a confirmation with errors: the best no longer meets the bound, whatever its median
    report.confirmations.append(replace(_trial(1, 500.0, 1.0), errors={"UNAVAILABLE": 3}))
    assert not report.judged(lucky).meets and report.judged(lucky).errors == {"UNAVAILABLE": 3}


def test_the_search_leaves_the_starting_point_only_for_a_confirmed_gain():
    base, start = _trial(0, 100.0, 10.0, candidate=None), _trial(1, 200.0, 12.0)
    lucky = _trial(2, 260.0, 11.0, candidate=Candidate(16, 500, 1, 100))
    report = _report(base, start, lucky)
    assert report.top is lucky and report.best is lucky  # measured once each: the top one
    report.confirmations += [_trial(0, 100.0, 10.0, candidate=None), _trial(1, 205.0, 12.0),
                             _trial(2, 150.0, 11.0, candidate=lucky.candidate)]
    assert report.best is start and report.verdict == "batching"  # medians 205 vs 202.5: within the noise
    assert report.to_json()["best_batching"]["max_batch_size"] == 8
    assert "the search's top trial #2 (205.0 req/s (p99 11.0 ms)) did not beat this starting point" in report.message()
    report.confirmations += [_trial(1, 200.0, 12.0), _trial(2, 300.0, 11.0, candidate=lucky.candidate)]
    assert report.best is lucky  # per-round ratios 0.73 and 1.5: a median gain beyond the noise


def test_record_batching_keeps_the_users_comments_and_puts_the_threads_in_the_servers_table(tmp_path):
    path = tmp_path / "tfsk.toml"
    original = (REPO / "tfsk.toml").read_text()
    path.write_text(original)
    settings = Candidate(16, 1000, 1, 100, True).settings()
    declaration = sc.record_batching(sc.load_declaration(path), "composed", settings, "from the tune")
    text = path.read_text()
    assert all(line in text.splitlines() for line in original.splitlines() if line != "num_batch_threads = 2")
    model = declaration.model("composed").batching
    assert model == sc.BatchingSettings(max_batch_size=16, batch_timeout_micros=1000, max_enqueued_batches=100,
                                        allowed_batch_sizes=(4, 8, 16))
    assert declaration.batching.num_batch_threads == 1 and declaration.batching.max_batch_size == 32
    assert "[models.composed.batching] # from the tune" in text
    assert sc.load_declaration(path) == declaration
    # again with other settings: the model's table is replaced key by key, its comment stays
    again = sc.record_batching(declaration, "composed", Candidate(4, 0, 2, 10).settings(), "second")
    assert again.model("composed").batching == sc.BatchingSettings(max_batch_size=4, batch_timeout_micros=0,
                                                                   max_enqueued_batches=10)
    assert "# from the tune" in path.read_text() and "second" not in path.read_text()
    # settings TF Serving would refuse at load are not written; an unknown model neither
    before = path.read_text()
    with pytest.raises(sc.DeclarationError, match="Last entry|last allowed batch size"):
        sc.record_batching(again, "composed", sc.BatchingSettings(max_batch_size=8, allowed_batch_sizes=(4,)), "x")
    with pytest.raises(sc.DeclarationError, match="not declared"):
        sc.record_batching(again, "nope", settings, "x")
    assert path.read_text() == before
