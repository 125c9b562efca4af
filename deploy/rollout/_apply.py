"""Applying a declaration to running servers: write the config files, push them, wait for the result.

The written ``models.config`` is the source of truth: a server that polls it
(``--model_config_file_poll_wait_seconds``) puts the file's content back at its next poll,
whatever was pushed by RPC. So the file is written first, then the *same* config is pushed with
``HandleReloadConfigRequest`` to every target. Whether the server polls or not, it ends with that
config; a poll that reloads an unchanged config changes nothing (TF Serving's reload is a no-op
for a config it already runs). Then each target is asked (``GetModelStatus``, and
``GetModelMetadata`` by label) until it reports the versions and labels the config names.

Every call has a deadline. A config that names a base path missing on disk is refused before
anything is written or sent: TF Serving's reload waits forever for a new model whose folder is
missing, and holds its config lock meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tfsk import serving_config as sc

from .._errors import StackError

__all__ = ["ApplyError", "Targets", "apply_declaration", "wait_for_versions"]

Progress = Callable[[str], None]


class ApplyError(StackError):
    """A config could not be applied to every target (the message says which and why)."""


@dataclass(frozen=True)
class Targets:
    """The servers a rollout drives (replicas of one deployment) and which models.config they read."""

    addresses: tuple[str, ...]
    paths: Literal["host", "container"] = "host"  # "host": absolute host paths (the devserver); "container": TF Serving's image
    timeout: float = 120.0

    def describe(self) -> str:
        return ", ".join(self.addresses)


def _client(address: str, timeout: float):  # type: ignore[no-untyped-def]
    from tfsk.client import Client

    return Client(address, timeout=timeout, retries=0)


def apply_declaration(declaration: sc.Declaration, targets: Targets, *, expect: Mapping[str, Sequence[int]],
                      labels: Mapping[str, Mapping[str, int]] | None = None,
                      on_progress: Progress = lambda _: None) -> None:
    """Write every config of ``declaration``, push the models.config to each target, then wait until
    each target reports every version of ``expect`` AVAILABLE and each label of ``labels`` resolving."""
    config = declaration.model_server_config(targets.paths)
    mapping = declaration.mapping if targets.paths == "container" else None
    report = sc.validate_model_server_config(config, mapping=mapping, check_disk=True,
                                             allow_version_labels_for_unavailable_models=True,
                                             source=str(declaration.source))
    if not report.ok:
        problems = "; ".join(str(finding) for finding in report.errors)
        raise ApplyError(f"the config from {declaration.source} would be refused or hang the server, so it was not "
                         f"sent: {problems}")
    written = sc.write_configs(declaration)
    changed = [item.path.name for item in written if item.changed]
    on_progress(f"wrote {', '.join(changed)}" if changed else "config files already up to date")
    failures = []
    for address in targets.addresses:
        try:
            with _client(address, targets.timeout) as client:
                client.reload_config(config, timeout=targets.timeout)
        except Exception as error:  # noqa: BLE001 - every client error is reported with its target
            failures.append(f"{address}: {_describe(error)}")
    if failures:
        raise ApplyError("the config could not be pushed to every target (it is written; a polling server picks "
                         "it up): " + "; ".join(failures))
    on_progress(f"pushed models.config to {targets.describe()}")
    wait_for_versions(targets, expect, labels or {}, on_progress=on_progress)


def wait_for_versions(targets: Targets, expect: Mapping[str, Sequence[int]],
                      labels: Mapping[str, Mapping[str, int]], *, on_progress: Progress = lambda _: None) -> None:
    """Until ``targets.timeout``: every target has every version of ``expect`` AVAILABLE and answers
    each label with its version. A version that ends in an error fails at once."""
    deadline = time.monotonic() + targets.timeout
    for address in targets.addresses:
        with _client(address, 10.0) as client:
            for model, versions in expect.items():
                for version in versions:
                    remaining = deadline - time.monotonic()
                    try:
                        client.wait_until_available(model, version, timeout=max(remaining, 0.5), poll_interval=0.1)
                    except Exception as error:  # noqa: BLE001
                        raise ApplyError(f"{address}: version {version} of {model!r} did not become AVAILABLE: "
                                         f"{_describe(error)}") from None
            for model, named in labels.items():
                for label, version in named.items():
                    _wait_for_label(client, address, model, label, version, deadline)
    summary = ", ".join(f"{m} {sorted(v)}" for m, v in expect.items())
    on_progress(f"AVAILABLE on {len(targets.addresses)} target(s): {summary}")


def _wait_for_label(client, address: str, model: str, label: str, version: int,  # type: ignore[no-untyped-def]
                    deadline: float) -> None:
    last = "no answer"
    while True:
        try:
            answered = client.metadata(model, label=label, timeout=5).version
        except Exception as error:  # noqa: BLE001 - not applied yet: ask again until the deadline
            last = _describe(error)
        else:
            if answered == version:
                return
            last = f"it answers version {answered}"
        if time.monotonic() > deadline:
            raise ApplyError(f"{address}: label {label!r} of {model!r} does not name version {version} ({last})")
        time.sleep(0.1)


def _describe(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
