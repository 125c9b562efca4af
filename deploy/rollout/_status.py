"""``tfsk rollout status``: what is declared, what the notes say, and what every target serves."""

from __future__ import annotations

from typing import Any

from ._session import RolloutSession

__all__ = ["StatusReport"]


class StatusReport(RolloutSession):
    """The rollout's status on every target."""

    def status(self) -> dict[str, Any]:
        """Declared versions and labels, the notes, and per target: version states, labels, lineage, health."""
        from tfsk.client import Client

        per_target = []
        for address in self.targets.addresses:
            entry: dict[str, Any] = {"target": address, "versions": [], "labels": {}, "healthy": False}
            try:
                with Client(address, timeout=10, retries=0) as client:
                    for status in client.status(self.model):
                        lineage = client.lineage(self.model, version=status.version) \
                            if status.state == "AVAILABLE" else None
                        parts = {p["name"]: p["version"] for p in (lineage or {}).get("parts", [])}
                        entry["versions"].append({"version": status.version, "state": status.state,
                                                  "error": status.error_message or None, "parts": parts})
                    for label in self.labels:
                        try:
                            entry["labels"][label] = client.metadata(self.model, label=label).version
                        except Exception as error:  # noqa: BLE001 - shown as the label's state
                            entry["labels"][label] = str(error).splitlines()[0]
            except Exception as error:  # noqa: BLE001 - an unreachable target is part of the status
                entry["error"] = str(error).splitlines()[0]
            available = {v["version"] for v in entry["versions"] if v["state"] == "AVAILABLE"}
            entry["healthy"] = "error" not in entry and set(self.kept or self.labels.values()) <= available \
                and all(entry["labels"].get(k) == v for k, v in self.labels.items())
            per_target.append(entry)
        return {"model": self.model, "declared": {"versions": self.kept, "labels": self.labels},
                "rollout": {"part": self.state.part, "source": self.state.source, "part_version": self.state.part_version,
                            "candidate": self.state.candidate, "previous": self.state.previous,
                            "step": self.state.step, "done": self.state.done},
                "targets": per_target, "healthy": all(t["healthy"] for t in per_target)}
