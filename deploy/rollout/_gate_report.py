"""The gate's report: per-label figures, how far each output moved (and which part it belongs to), and
the verdict, one named check at a time, against ``[rollout.gate]``.

A composed model's ``serving_default`` returns the head's output and each part's output
(``<part>__<output>``); a rollout changes one part on purpose, so by default only the head's
outputs are gated and the parts' outputs say *which* tower moved.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from tfsk import serving_config as sc
from tfsk._base.naming import DEFAULT_SIGNATURE, INPUT_SEPARATOR, part_of_signature

from ._gate_replay import LabelAnswers
from ._measures import compare_distributions, compare_outputs, describe_latency

__all__ = ["MIN_DRIFT_VALUES", "MIN_RANK_VALUES", "MOVED_ATOL", "judge", "label_figures", "live_output_figures", "moved_parts", "output_figures",
           "part_of_output"]

#: A drift measure of few values is mostly noise: live, the labels answer different requests (PSI of
#: two samples of one distribution is about (bins - 1) * (1/n1 + 1/n2): 0.36 for 50 values each, 0.04
#: for 500); replayed, a handful of values each in its own decile cross bin edges at the least move.
#: Below this many values a label, drift is reported but not judged.
MIN_DRIFT_VALUES = 500
#: The same for the rank agreement of scores: a correlation of a dozen values says little.
MIN_RANK_VALUES = 30
#: A part's output "moved" past this (the consistency check's default tolerance): float noise is not a move.
MOVED_ATOL = 1e-5


def output_key(signature: str, name: str) -> str:
    return name if signature == DEFAULT_SIGNATURE else f"{signature}/{name}"


def part_of_output(signature: str, name: str, parts: Collection[str]) -> str | None:
    """The part whose output this is (``<part>__<output>`` of serving_default, or any output of ``part_<name>``)."""
    part = part_of_signature(signature)
    if part is not None:
        return part
    prefix, separator, _ = name.partition(INPUT_SEPARATOR)
    return prefix if separator and prefix in parts else None


def label_figures(answers: LabelAnswers, addresses: Sequence[str]) -> dict[str, Any]:
    """Requests, errors by status code, error rate, p50/p90/p99 (answered requests), per target too."""
    total = len(answers.statuses)
    errors = answers.errors()
    failed = sum(errors.values())
    figures: dict[str, Any] = {"requests": total, "errors": errors, "error_rate": failed / total if total else 0.0,
                               **describe_latency(answers.ok_seconds()),
                               "versions": {str(v): n for v, n in sorted(answers.versions.items())}}
    if len(addresses) > 1:
        figures["targets"] = {a: describe_latency(answers.ok_seconds(a)) for a in addresses}
    return figures


def output_figures(stable: LabelAnswers, canary: LabelAnswers, parts: Collection[str],
                   threshold: float) -> dict[str, Any]:
    """Per output: how far canary's answers are from stable's to the same requests (both answered)."""
    pairs: dict[str, tuple[list[Any], list[Any]]] = {}
    compared: set[int] = set()
    for request_id, signature, old, new in zip(stable.request_ids, stable.signatures, stable.outputs,
                                               canary.outputs, strict=True):
        if old is None or new is None or request_id in compared:
            continue  # a request sent again (for latency samples) counts once
        compared.add(request_id)
        for name in sorted(set(old) | set(new)):
            key = output_key(signature, name)
            if name not in old or name not in new:
                pairs.setdefault(key, ([], []))  # an output only one side has: reported, not compared
                continue
            if old[name].dtype.kind not in "biuf":
                continue  # strings (ids, lineage) have no distance
            pairs.setdefault(key, ([], []))[0].append(old[name])
            pairs[key][1].append(new[name])
    figures = {}
    for key, (old_values, new_values) in pairs.items():
        signature, _, name = key.rpartition("/")
        figures[key] = compare_outputs(old_values, new_values, threshold) if old_values else \
            {"values": 0, "problem": "only one label has this output"}
        figures[key]["part"] = part_of_output(signature or DEFAULT_SIGNATURE, name, parts)
    return figures


def live_output_figures(stable: Mapping[str, list[Any]], canary: Mapping[str, list[Any]],
                        parts: Collection[str]) -> dict[str, Any]:
    """Per output: the drift of canary's distribution from stable's (live traffic: different requests)."""
    figures = {}
    for key in sorted(set(stable) | set(canary)):
        signature, _, name = key.rpartition("/")
        figures[key] = compare_distributions(stable.get(key, []), canary.get(key, []))
        figures[key]["part"] = part_of_output(signature or DEFAULT_SIGNATURE, name, parts)
    return figures


def _check(name: str, ok: bool, value: Any, limit: Any, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "value": value, "limit": limit, "detail": detail}


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def judge(labels: Mapping[str, Mapping[str, Any]], outputs: Mapping[str, Mapping[str, Any]],
          settings: sc.GateSettings, stable: str = "stable", canary: str = "canary") -> dict[str, Any]:
    """The checks and the verdict: ``pass`` when every check is ok, else ``fail`` with each failed check named."""
    checks = []
    old, new = labels[stable], labels[canary]
    if new["p99_ms"] is not None and old["p99_ms"] is not None:
        limit = old["p99_ms"] * settings.latency_p99_ratio + settings.latency_p99_slack_ms
        checks.append(_check("latency_p99", new["p99_ms"] <= limit, new["p99_ms"], round(limit, 3),
                             f"canary p99 {new['p99_ms']:.1f} ms, stable {old['p99_ms']:.1f} ms (limit "
                             f"{settings.latency_p99_ratio}x + {settings.latency_p99_slack_ms} ms = {limit:.1f} ms)"))
    increase = new["error_rate"] - old["error_rate"]
    checks.append(_check("error_rate", increase <= settings.error_rate_increase, round(new["error_rate"], 4),
                         round(old["error_rate"] + settings.error_rate_increase, 4),
                         f"canary failed {new['error_rate']:.1%} of requests {_codes(new['errors'])}, stable "
                         f"{old['error_rate']:.1%}"))
    moved = moved_parts(outputs)
    has_head = any(figures.get("part") is None for figures in outputs.values())
    for key, figures in sorted(outputs.items()):
        if settings.outputs == "head" and has_head and figures.get("part") is not None:
            continue
        if "problem" in figures:
            checks.append(_check(f"output:{key}", False, None, None, figures["problem"]))
            continue
        counted = figures.get("values", 0)
        counted = min(counted) if isinstance(counted, list) else counted
        for name, value, limit, ok in _output_limits(figures, settings):
            least = {"psi": MIN_DRIFT_VALUES, "rank_agreement": MIN_RANK_VALUES}.get(name, 0)
            if counted < least:
                checks.append({**_check(f"{name}:{key}", True, _rounded(value), limit,
                                        f"{key}: {counted} values a label, too few to judge its {name.replace('_', ' ')}"
                                        f" (at least {least}): send or capture more requests"), "skipped": True})
                continue
            checks.append(_check(f"{name}:{key}", ok, _rounded(value), limit,
                                 f"{key}: {name.replace('_', ' ')} {_rounded(value)} (limit {limit})"))
    failed = [c["name"] for c in checks if not c["ok"]]
    said = ", ".join(f"{part} (max |diff| {amount:.3g})" for part, amount in sorted(moved.items()))
    return {"verdict": "fail" if failed else "pass", "failed": failed, "checks": checks,
            "moved_parts": sorted(moved), "moved": f"moved: {said}" if moved else "no part's output moved",
            "settings": asdict(settings)}


def _output_limits(figures: Mapping[str, Any], settings: sc.GateSettings) -> list[tuple[str, Any, Any, bool]]:
    """(check, value, limit, ok) for one output: replayed outputs have paired figures, live ones only drift."""
    found = []
    if "max_abs_difference" in figures:
        found.append(("max_abs_difference", figures["max_abs_difference"], settings.max_abs_difference,
                      figures["max_abs_difference"] <= settings.max_abs_difference))
        found.append(("mean_abs_difference", figures["mean_abs_difference"], settings.mean_abs_difference,
                      figures["mean_abs_difference"] <= settings.mean_abs_difference))
    if figures.get("flip_rate") is not None:
        found.append(("flip_rate", figures["flip_rate"], settings.max_flip_rate,
                      figures["flip_rate"] <= settings.max_flip_rate))
    if figures.get("rank_agreement") is not None:
        found.append(("rank_agreement", figures["rank_agreement"], settings.min_rank_agreement,
                      figures["rank_agreement"] >= settings.min_rank_agreement))
    if figures.get("psi") is not None:
        found.append(("psi", figures["psi"], settings.max_psi, figures["psi"] <= settings.max_psi))
    return found


def moved_parts(outputs: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Each part with an output that moved, and its largest move (replay), or largest drift (live: PSI)."""
    moved: dict[str, float] = {}
    for figures in outputs.values():
        part = figures.get("part")
        if part is None:
            continue
        if "max_abs_difference" in figures:
            amount = figures["max_abs_difference"]
            if amount > MOVED_ATOL:
                moved[part] = max(moved.get(part, 0.0), amount)
        elif figures.get("psi") is not None and figures["psi"] > 0.1:  # live: a small shift is noise
            moved[part] = max(moved.get(part, 0.0), figures["psi"])
    return moved


def _codes(errors: Mapping[str, int]) -> str:
    return "(" + ", ".join(f"{code} x{count}" for code, count in errors.items()) + ")" if errors else ""

