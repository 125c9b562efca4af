"""Version policies: which version folders TF Serving's file-system source aspires to serve."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tfsk._base import rules
from tfsk._base.layout import VersionDir
from tfsk._base.messages import ModelConfig, ServableVersionPolicy

from ._errors import ConfigError

PolicyKind = Literal["latest", "all", "specific"]
POLICY_KINDS: tuple[str, ...] = ("latest", "all", "specific")


@dataclass(frozen=True)
class VersionPolicy:
    """``latest {num_versions}``, ``all {}`` or ``specific {versions}``.

    ``num_versions`` is kept as written (0 included, which TF Serving treats as 1); use
    :attr:`effective_num_versions` for what the server does.
    """

    kind: PolicyKind = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in POLICY_KINDS:
            raise ConfigError(f"unknown version policy {self.kind!r}: use one of {', '.join(POLICY_KINDS)}")
        if self.kind == "latest" and not 0 <= self.num_versions < 2**32:
            raise ConfigError(f"latest num_versions must be a uint32 (0 counts as 1), got {self.num_versions}")

    @classmethod
    def latest(cls, num_versions: int = 1) -> VersionPolicy:
        return cls("latest", num_versions=num_versions)

    @classmethod
    def all(cls) -> VersionPolicy:
        return cls("all")

    @classmethod
    def specific(cls, versions: Iterable[int]) -> VersionPolicy:
        return cls("specific", versions=tuple(versions))

    @property
    def effective_num_versions(self) -> int:
        return max(self.num_versions, 1)

    @classmethod
    def from_model_config(cls, config: ModelConfig) -> VersionPolicy:
        """The policy of a ``ModelConfig``; an unset policy is TF Serving's default, latest 1."""
        if not config.HasField("model_version_policy"):
            return cls.latest(1)
        policy = config.model_version_policy
        choice = policy.WhichOneof("policy_choice")
        if choice == "all":
            return cls.all()
        if choice == "specific":
            return cls.specific(policy.specific.versions)
        # An empty ServableVersionPolicy {} behaves like latest 1 too.
        return cls.latest(policy.latest.num_versions if choice == "latest" else 1)

    def to_proto(self) -> ServableVersionPolicy:
        policy = ServableVersionPolicy()
        if self.kind == "latest":
            policy.latest.num_versions = self.num_versions
        elif self.kind == "all":
            policy.all.SetInParent()
        else:
            policy.specific.SetInParent()
            policy.specific.versions.extend(self.versions)
        return policy

    def aspired(self, on_disk: Sequence[VersionDir]) -> list[VersionDir]:
        """The version folders TF Serving would load from ``on_disk`` (all numeric children).

        :func:`tfsk._base.rules.select_versions` decides, as for the devserver: of ``5`` and
        ``005`` latest and specific load ``5`` (the last name), ``all`` loads ``005`` (the
        manager keeps the first it is given and refuses the second).
        """
        model = ModelConfig(name="m")
        model.model_version_policy.CopyFrom(self.to_proto())
        by_name = {entry.path.name: entry for entry in on_disk}
        chosen = rules.select_versions(model, list(by_name)).versions
        return sorted(by_name[child] for child in chosen.values() if child in by_name)

    def allows(self, version: int) -> bool | None:
        """Whether the policy can ever serve ``version``; ``None`` for latest (it depends on the disk)."""
        if self.kind == "specific":
            return version in self.versions
        if self.kind == "all":
            return True
        return None

    def describe(self) -> str:
        if self.kind == "latest":
            return f"latest {self.num_versions}"
        if self.kind == "all":
            return "all"
        return f"specific {list(self.versions)}"

    def to_json(self) -> dict[str, Any]:
        if self.kind == "latest":
            return {"kind": "latest", "num_versions": self.num_versions}
        if self.kind == "all":
            return {"kind": "all"}
        return {"kind": "specific", "versions": list(self.versions)}
