"""``tfsk.toml``: the one declaration every TF Serving config of a repository is derived from.

It names the models, the host folder they are exported to, the folder the serving container
mounts it at, and per model a version policy and labels. From it come ``models.config`` for the
container (container paths) and for the devserver (absolute host paths), so nobody edits two
copies by hand; ``[monitoring]`` and ``[batching]`` describe the other two config files, and a
model's own ``[models.NAME.batching]`` the ``batching_params.pbtxt`` TF Serving reads from each of
its version folders with ``--enable_per_model_batching_parameters``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from tfsk._base.declared import DECLARATION_FILE, LABELS_KEY, MODELS_TABLE, declared_labels, declared_models
from tfsk._base.layout import InvalidNameError, check_model_name
from tfsk._base.messages import ModelServerConfig

from ._batching import BatchingSettings
from ._errors import ConfigError, DeclarationError
from ._gate import GateSettings, read_gate_settings
from ._models_config import check_label_name, model_config, model_server_config
from ._monitoring import DEFAULT_PROMETHEUS_PATH, MonitoringSettings
from ._paths import PathMapping
from ._policy import POLICY_KINDS, VersionPolicy
from ._textproto import write_atomic

Target = Literal["container", "host"]
TARGETS: tuple[Target, ...] = ("container", "host")
_INT64 = range(-(2**63), 2**63)

# [kubernetes] is read by tfsk.deploy (`tfsk stack render k8s`), not here.
_TOP_KEYS = {"paths", "outputs", MODELS_TABLE, "monitoring", "batching", "kubernetes", "rollout"}
_ROLLOUT_KEYS = {"gate"}
_MODEL_KEYS = {"folder", "policy", "num_versions", "versions", LABELS_KEY, "batching"}
_OUTPUT_DEFAULTS = {
    "models_config": "models.config",
    "host_models_config": "models.host.config",
    "monitoring_config": "monitoring.config",
    "batching_parameters": "batching_parameters.config",
}


@dataclass(frozen=True)
class ModelDeclaration:
    """One model: its folder under the roots, its version policy, its labels, its own batching."""

    name: str
    folder: str
    policy: VersionPolicy
    labels: tuple[tuple[str, int], ...] = ()
    #: ``[models.NAME.batching]``: written as ``batching_params.pbtxt`` into the model's version folders.
    batching: BatchingSettings | None = None

    @property
    def label_map(self) -> dict[str, int]:
        return dict(self.labels)


@dataclass(frozen=True)
class DeclaredOutputs:
    """Where ``tfsk config write`` puts each file (absolute host paths)."""

    models_config: Path
    host_models_config: Path
    monitoring_config: Path | None
    batching_parameters: Path | None


@dataclass(frozen=True)
class Declaration:
    """A parsed ``tfsk.toml``."""

    source: Path | None
    mapping: PathMapping
    models: tuple[ModelDeclaration, ...]
    outputs: DeclaredOutputs
    monitoring: MonitoringSettings | None = None
    batching: BatchingSettings | None = None
    #: ``[rollout.gate]``: the thresholds a canary is judged against (defaults when not declared)
    gate: GateSettings = GateSettings()

    def base_path(self, model: ModelDeclaration, target: Target) -> str:
        """The model's base path as the ``target`` server sees it."""
        if target == "container":
            return self.mapping.container_path(model.folder)
        return str(self.mapping.host_path(model.folder))

    def model_server_config(self, target: Target = "container") -> ModelServerConfig:
        """The ``ModelServerConfig`` for the container (container paths) or the host (host paths)."""
        if target not in TARGETS:
            raise ConfigError(f"unknown target {target!r}: use 'container' or 'host'")
        return model_server_config(
            model_config(m.name, self.base_path(m, target), m.policy, m.label_map) for m in self.models
        )

    def model(self, name: str) -> ModelDeclaration:
        for model in self.models:
            if model.name == name:
                return model
        raise DeclarationError(f"model {name!r} is not declared in {self.source or 'the declaration'}; declared: "
                               f"{', '.join(m.name for m in self.models) or 'none'}")


def load_declaration(path: str | os.PathLike[str] = DECLARATION_FILE) -> Declaration:
    """Read a ``tfsk.toml``; relative paths in it are relative to its folder."""
    file = Path(os.path.abspath(path))
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise DeclarationError(f"cannot read the declaration {os.fspath(path)!r}: {error.strerror or error}; "
                               f"give its path with --declaration (the repository root holds {DECLARATION_FILE})"
                               ) from None
    return parse_declaration(text, file.parent, source=file)


def parse_declaration(text: str, base_dir: str | os.PathLike[str], source: Path | None = None) -> Declaration:
    """Parse declaration text; relative paths are resolved against ``base_dir``."""
    where = str(source or "<declaration>")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DeclarationError(f"{where}: not valid TOML: {error}") from None
    return _Reader(where, Path(os.path.abspath(base_dir))).declaration(data, source)


class _Reader:
    """Turns the TOML tables into a :class:`Declaration`, naming the key of every mistake."""

    def __init__(self, where: str, base_dir: Path) -> None:
        self.where = where
        self.base_dir = base_dir

    def fail(self, key: str, problem: str) -> DeclarationError:
        return DeclarationError(f"{self.where}: {key}: {problem}")

    def table(self, data: Mapping[str, Any], key: str, allowed: set[str], required: bool = False) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(f"[{key}]", "missing; see the tfsk.toml format in the README")
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table ([{key}]), not {type(value).__name__}")
        self.known_keys(value, allowed, f"[{key}]")
        return value

    def known_keys(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(where, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")

    def typed(self, table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
        value = table[key]
        # bool is an int in Python; a TOML `true` is never meant as a number.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"{where}.{key}", f"must be {kind.__name__}, got {value!r}")
        return value

    def declaration(self, data: Mapping[str, Any], source: Path | None) -> Declaration:
        self.known_keys(data, _TOP_KEYS, "top level")
        paths = self.table(data, "paths", {"host_root", "container_root"}, required=True)
        for key in ("host_root", "container_root"):
            if key not in paths:
                raise self.fail(f"[paths] {key}", "missing")
            self.typed(paths, key, str, "paths")
        container_root = paths["container_root"]
        if not container_root.startswith("/"):
            raise self.fail("[paths] container_root", f"{container_root!r} must be absolute (e.g. '/models'): "
                            f"TF Serving refuses relative base paths")
        mapping = PathMapping.of(self.base_dir / paths["host_root"], container_root)
        models_table = declared_models(data)
        if not isinstance(models_table, dict) or not models_table:
            raise self.fail("[models]", "declares no model; add a table per model, e.g. [models.my_model] "
                            "policy = \"latest\"")
        models = tuple(self.model(name, spec) for name, spec in models_table.items())
        monitoring = self.monitoring(data) if "monitoring" in data else None
        batching = self.batching(data, "[batching]") if "batching" in data else None
        rollout = self.table(data, "rollout", _ROLLOUT_KEYS)
        gate = rollout.get("gate", {})
        if not isinstance(gate, dict):
            raise self.fail("[rollout] gate", f"must be a table ([rollout.gate]), not {type(gate).__name__}")
        return Declaration(source, mapping, models, self.outputs(data, mapping, monitoring, batching),
                           monitoring, batching, read_gate_settings(gate, self.fail))

    def model(self, name: str, spec: Any) -> ModelDeclaration:
        where = f"[models.{name}]"
        try:
            check_model_name(name)
        except InvalidNameError as error:
            raise self.fail(where, str(error)) from None
        if not isinstance(spec, dict):
            raise self.fail(where, "must be a table of settings (policy, num_versions, versions, labels, folder, "
                                   "batching)")
        self.known_keys(spec, _MODEL_KEYS, where)
        folder = self.typed(spec, "folder", str, where) if "folder" in spec else name
        parts = PurePosixPath(folder).parts
        if not folder or folder.startswith("/") or ".." in parts:
            raise self.fail(f"{where} folder", f"{folder!r} must be a relative path inside host_root (no '..')")
        policy = self.policy(spec, where)
        labels = declared_labels(spec)
        if not isinstance(labels, dict):
            raise self.fail(f"{where} labels", "must be a table, e.g. labels = { stable = 3 }")
        checked = []
        for label, version in sorted(labels.items()):
            try:
                check_label_name(label)
            except ConfigError as error:
                raise self.fail(f"{where} labels", str(error)) from None
            self.typed(labels, label, int, f"{where} labels")
            if version not in _INT64:
                raise self.fail(f"{where} labels.{label}", f"{version} is not an int64 version number")
            if policy.allows(version) is False:
                raise self.fail(f"{where} labels.{label}",
                                f"names version {version}, which policy {policy.describe()} never loads; TF Serving "
                                f"only labels loaded versions: add {version} to versions")
            checked.append((label, version))
        batching = self.batching(spec, f"{where}.batching") if "batching" in spec else None
        return ModelDeclaration(name, str(PurePosixPath(folder)), policy, tuple(checked), batching)

    def policy(self, spec: Mapping[str, Any], where: str) -> VersionPolicy:
        kind = self.typed(spec, "policy", str, where) if "policy" in spec else "latest"
        if kind not in POLICY_KINDS:
            raise self.fail(f"{where} policy", f"{kind!r} is not a policy; use one of {', '.join(POLICY_KINDS)}")
        if "num_versions" in spec and kind != "latest":
            raise self.fail(f"{where} num_versions", f"only applies to policy \"latest\" (policy is {kind!r})")
        if "versions" in spec and kind != "specific":
            raise self.fail(f"{where} versions", f"only applies to policy \"specific\" (policy is {kind!r})")
        if kind == "latest":
            count = self.typed(spec, "num_versions", int, where) if "num_versions" in spec else 1
            if not 1 <= count < 2**32:
                raise self.fail(f"{where} num_versions", f"must be >= 1, got {count}")
            return VersionPolicy.latest(count)
        if kind == "all":
            return VersionPolicy.all()
        if "versions" not in spec:
            raise self.fail(where, "policy \"specific\" needs versions = [ ... ]")
        versions = spec["versions"]
        if (not isinstance(versions, list) or not versions
                or any(not isinstance(v, int) or isinstance(v, bool) or v not in _INT64 for v in versions)):
            raise self.fail(f"{where} versions", f"must be a non-empty list of version numbers, got {versions!r}")
        if len(set(versions)) != len(versions):
            raise self.fail(f"{where} versions", f"lists a version twice: {versions}")
        return VersionPolicy.specific(sorted(versions))

    def monitoring(self, data: Mapping[str, Any]) -> MonitoringSettings:
        table = self.table(data, "monitoring", {"prometheus", "path"})
        enabled = self.typed(table, "prometheus", bool, "[monitoring]") if "prometheus" in table else True
        path = self.typed(table, "path", str, "[monitoring]") if "path" in table else DEFAULT_PROMETHEUS_PATH
        return MonitoringSettings(enabled, path)

    def batching(self, data: Mapping[str, Any], where: str) -> BatchingSettings:
        """``[batching]`` (the server's file) or ``[models.NAME.batching]`` (the model's own): same keys."""
        kinds = {"thread_pool_name": str, "enable_large_batch_splitting": bool, "pad_variable_length_inputs": bool,
                 "allowed_batch_sizes": list}
        names = {f.name for f in fields(BatchingSettings)}
        table = data["batching"]
        if not isinstance(table, dict):
            raise self.fail(where, f"must be a table of batching parameters, not {type(table).__name__}")
        self.known_keys(table, names, where)
        values: dict[str, Any] = {}
        for key in table:
            values[key] = self.typed(table, key, kinds.get(key, int), where)
        if "allowed_batch_sizes" in values:
            sizes = values["allowed_batch_sizes"]
            if any(not isinstance(s, int) or isinstance(s, bool) for s in sizes):
                raise self.fail(f"{where} allowed_batch_sizes", f"must be a list of integers, got {sizes!r}")
            values["allowed_batch_sizes"] = tuple(sizes)
        return BatchingSettings(**values)

    def outputs(self, data: Mapping[str, Any], mapping: PathMapping, monitoring: MonitoringSettings | None,
                batching: BatchingSettings | None) -> DeclaredOutputs:
        table = self.table(data, "outputs", set(_OUTPUT_DEFAULTS))
        chosen: dict[str, Path] = {}
        for key, default in _OUTPUT_DEFAULTS.items():
            relative = self.typed(table, key, str, "[outputs]") if key in table else None
            chosen[key] = (Path(os.path.normpath(self.base_dir / relative)) if relative is not None
                           else mapping.host_path(default))
        if chosen["models_config"] == chosen["host_models_config"]:
            raise self.fail("[outputs]", "models_config and host_models_config must be different files")
        return DeclaredOutputs(chosen["models_config"], chosen["host_models_config"],
                               chosen["monitoring_config"] if monitoring else None,
                               chosen["batching_parameters"] if batching else None)


_RECORDED = "versions and labels are kept by `tfsk rollout`"


def _edit_file(declaration: Declaration, what: str, edit: Callable[[Any], None]) -> Declaration:
    """Apply ``edit`` to the ``tomlkit`` document of the declaration's file, parse the result back,
    and only then replace the file (atomically); the declaration as re-read.

    ``tomlkit`` keeps every comment, blank line and key order of the user's file, so only what
    ``edit`` touches changes, and nothing the tools refuse is ever written.
    """
    import tomlkit  # only the writers need it

    if declaration.source is None:
        raise DeclarationError(f"the declaration was not read from a file: there is no tfsk.toml to record {what} in")
    document = tomlkit.parse(declaration.source.read_text(encoding="utf-8"))
    edit(document)
    text = tomlkit.dumps(document)
    updated = parse_declaration(text, declaration.source.parent, source=declaration.source)
    write_atomic(declaration.source, text)
    return updated


def record_versions(declaration: Declaration, model: str, versions: Sequence[int],
                    labels: Mapping[str, int]) -> Declaration:
    """Pin ``model`` to ``policy = "specific"`` with ``versions`` and ``labels`` in its ``tfsk.toml``.

    Only the model table's ``policy``, ``num_versions``, ``versions`` and ``labels`` change; every
    comment and the layout stay (:func:`_edit_file`). Returns the declaration as re-read; an
    unchanged model leaves the file alone.
    """
    import tomlkit

    current = declaration.model(model)
    pinned = VersionPolicy.specific(sorted(set(versions)))
    if current.policy == pinned and current.label_map == dict(labels):
        return declaration

    def edit(document: Any) -> None:
        table = document[MODELS_TABLE][model]
        if "num_versions" in table:
            del table["num_versions"]
        if table.get("policy") != "specific":
            table["policy"] = "specific"
            table["policy"].comment(_RECORDED)
        table["versions"] = list(pinned.versions)
        inline = tomlkit.inline_table()
        inline.update(dict(sorted(labels.items())))
        table[LABELS_KEY] = inline

    return _edit_file(declaration, "versions", edit)


#: Fields TF Serving takes from the server's batching file only (a model's own file may not set them).
SERVER_BATCHING_FIELDS = ("num_batch_threads", "thread_pool_name")


def record_batching(declaration: Declaration, model: str, settings: BatchingSettings, note: str) -> Declaration:
    """Write ``settings`` into ``tfsk.toml``: ``[models.MODEL.batching]``, and ``num_batch_threads`` (which
    TF Serving takes from the server's file only) into ``[batching]``; ``note`` is the comment they get.

    Keys of those tables that ``settings`` leaves unset are removed, others and every comment stay.
    Settings that would fail the model's loads are refused (:class:`DeclarationError`) and nothing
    is written. Returns the declaration as re-read.
    """
    import tomlkit

    from ._batching import validate_batching_settings

    declaration.model(model)
    own = replace(settings, num_batch_threads=None, thread_pool_name=None)  # SERVER_BATCHING_FIELDS
    server = {name: getattr(settings, name) for name in SERVER_BATCHING_FIELDS if getattr(settings, name) is not None}
    errors = [f.message for f in validate_batching_settings(own, per_model=True, model=model).errors]
    if errors:
        raise DeclarationError(f"[models.{model}.batching] not written: {'; '.join(errors)}")

    def fill(parent: Any, values: Mapping[str, Any], *, replace_all: bool) -> None:
        created = "batching" not in parent
        if created:
            parent["batching"] = tomlkit.table()
            parent["batching"].comment(note)
        table = parent["batching"]
        for key in [k for k in table if replace_all and k not in values]:
            del table[key]
        for key, value in values.items():
            table[key] = list(value) if isinstance(value, tuple) else value
        if created:
            table.add(tomlkit.nl())  # a blank line before whatever table follows, as the user's file has

    def edit(document: Any) -> None:
        # unset fields and the defaults of the two plain fields are left out (0 is a value: no `in (None, False)`)
        values = {k: v for k, v in own.to_json().items() if v is not None and v is not False and v != []}
        fill(document[MODELS_TABLE][model], values, replace_all=True)
        if server:
            fill(document, server, replace_all=False)

    return _edit_file(declaration, "batching parameters", edit)
