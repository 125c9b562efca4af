"""Validating a ``ModelServerConfig`` with TF Serving's rules, plus what it only fails on at run time.

TF Serving checks (``server_core.cc``): duplicate names, relative base paths, the platform, labels
against AVAILABLE versions. It does not check, and then hangs or unloads at run time: base paths
that are missing or hold no numeric version folder, policies that select nothing, version folders
that cannot load. Both kinds are reported here, each with what to do.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from tfsk._base import rules
from tfsk._base.layout import SAVED_MODEL_FILE, InvalidNameError, check_model_name
from tfsk._base.messages import ModelConfig, ModelServerConfig

from ._disk import ModelFolder, inspect_model_folder
from ._findings import Finding, FindingList, ValidationReport
from ._models_config import LABEL_PATTERN, PLATFORM, label_name_ok, model_entries, model_server_config
from ._paths import PathMapping
from ._policy import VersionPolicy

_ALLOW_FLAG = "--allow_version_labels_for_unavailable_models"


@dataclass(frozen=True)
class ServerState:
    """What the server that will read the config is serving, for the label rule.

    ``available``: per model, every version that is AVAILABLE. A model missing from it is
    unknown, unless ``complete`` (then nothing of it is loaded: the state at start-up).
    ``labels``: the label map in effect (TF Serving's flag lets a label be new or keep its
    version, never move to an unloaded one).
    """

    available: Mapping[str, Collection[int]] = field(default_factory=dict)
    labels: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    complete: bool = False

    @classmethod
    def startup(cls) -> ServerState:
        """A server starting with this config: nothing is loaded yet, no label exists."""
        return cls(complete=True)

    def available_versions(self, model: str) -> frozenset[int] | None:
        if model in self.available:
            return frozenset(self.available[model])
        return frozenset() if self.complete else None


def validate_model_server_config(
    config: ModelServerConfig,
    *,
    mapping: PathMapping | None = None,
    check_disk: bool = True,
    server: ServerState | None = None,
    allow_version_labels_for_unavailable_models: bool = False,
    source: str = "<config>",
) -> ValidationReport:
    """Every finding for ``config``.

    ``mapping``: base paths are container paths; check them in the host folder they are
    mounted from. ``check_disk=False`` skips every file-system check. ``server``: what the
    receiving server has loaded (``None``: unknown; :meth:`ServerState.startup` for a start-up
    config).
    """
    found = FindingList()
    choice = config.WhichOneof("config")
    if choice == "custom_model_config":
        found.error("custom-model-config", "custom_model_config",
                    "tensorflow_model_server does not support custom_model_config: it aborts at start-up "
                    "and refuses it on reload",
                    "list the models in model_config_list { config { ... } }",
                    "ModelServer does not yet support custom model config.")
        return ValidationReport(source, "models", tuple(found.items))
    models = model_entries(config)
    if not models:
        found.warning("no-models", "model_config_list" if choice else None,
                      "the config lists no model: TF Serving accepts it, starts, and serves nothing",
                      "add model_config_list { config { name: ... base_path: ... model_platform: \"tensorflow\" } }")
    counts = Counter(m.name for m in models)
    for refused in rules.config_list_refusals(config):
        if refused.rule == "duplicate-name":
            assert refused.model is not None  # a duplicate is always of a named model
            duplicate = FindingList(refused.model)
            duplicate.error("duplicate-name", "name",
                            f"the model is listed {counts[refused.model]} times; TF Serving refuses the whole config",
                            "keep one entry per model name (two names may share a base_path)",
                            refused.message, refused.code)
            found.extend(duplicate.items)
    for model in models:
        found.extend(_check_model(model, mapping, check_disk, server, allow_version_labels_for_unavailable_models))
    return ValidationReport(source, "models", tuple(found.items))


def _check_model(model: ModelConfig, mapping: PathMapping | None, check_disk: bool, server: ServerState | None,
                 allow_unavailable: bool) -> list[Finding]:
    found = FindingList(model.name)
    _check_name(model, found)
    _check_platform(model, found)
    policy = VersionPolicy.from_model_config(model)
    _check_policy(model, policy, found, check_disk)
    folder = None
    relative = next((r for r in rules.config_list_refusals(model_server_config([model]))
                     if r.rule == "relative-base-path"), None)
    if relative is not None:
        found.error("relative-base-path", "base_path",
                    f"base_path {model.base_path!r} is not absolute: TF Serving refuses the whole config",
                    "give an absolute path (or a URI such as gs://...); inside the container e.g. /models/<name>",
                    relative.message, relative.code)
    elif check_disk:
        folder = inspect_model_folder(model.base_path, mapping)
        _check_folder(model, folder, found, mapping is not None)
    _check_labels(model, policy, folder, server, allow_unavailable, found)
    return found.items


def _check_name(model: ModelConfig, found: FindingList) -> None:
    if not model.name:
        found.error("empty-name", "name", "the model has no name, so no request can address it",
                    "give it the name clients use (the folder name under the model root, by convention)",
                    "ModelSpec has no name specified.")
        return
    try:
        check_model_name(model.name)
    except InvalidNameError:
        rest = " REST URLs cannot address it;" if any(c in model.name for c in "/:") else ""
        found.warning("model-name", "name",
                      f"{model.name!r} is not a plain name ([A-Za-z0-9_.-]+):{rest} tfsk's exporter and client "
                      f"refuse it", "rename the model with letters, digits, '_', '.', '-'")


_PLATFORM_ADVICE = {
    "platform-and-model-type": ("model_type", "both model_platform and the deprecated model_type are set: TF Serving "
                                "refuses the config", "delete model_type and keep model_platform: \"tensorflow\""),
    "missing-platform": ("model_platform", "model_platform is not set: TF Serving refuses a config file without it",
                         "add model_platform: \"tensorflow\""),
}


def _check_platform(model: ModelConfig, found: FindingList) -> None:
    platform, refused = rules.platform_of(model)
    if refused is None and platform != PLATFORM:
        refused = rules.route_refusals(model_server_config([model]))[0]
    if refused is None:
        if model.model_type == rules.MODEL_TYPE_TENSORFLOW:
            found.warning("deprecated-model-type", "model_type",
                          "model_type: TENSORFLOW is deprecated (it still means model_platform \"tensorflow\")",
                          "replace it with model_platform: \"tensorflow\"")
        return
    if refused.rule in _PLATFORM_ADVICE:
        field_name, message, action = _PLATFORM_ADVICE[refused.rule]
    elif model.model_type:
        field_name, message, action = ("model_type", f"model_type {model.model_type} is not supported",
                                       "use model_platform: \"tensorflow\"")
    else:
        field_name, message, action = ("model_platform", f"platform {platform!r} is unknown to tensorflow_model_server "
                                       f"(only {PLATFORM!r} exists)", f"set model_platform: \"{PLATFORM}\"")
    found.error(refused.rule, field_name, message, action, refused.message, refused.code)


def _check_policy(model: ModelConfig, policy: VersionPolicy, found: FindingList, check_disk: bool) -> None:
    field_name = f"model_version_policy.{policy.kind}"
    if policy.kind == "latest" and policy.num_versions == 0:
        found.warning("latest-zero", f"{field_name}.num_versions",
                      "latest { num_versions: 0 } serves one version (0 counts as 1)",
                      "write num_versions: 1 to say what you mean")
    if policy.kind == "specific":
        if not policy.versions and not check_disk:
            found.error("specific-empty", f"{field_name}.versions",
                        "specific {} lists no version: TF Serving loads nothing (a new model never becomes "
                        "available, so start-up and the reload RPC wait forever; a running model is unloaded)",
                        "list the versions to serve, or use latest { num_versions: 1 }",
                        f"No specific versions requested for servable {model.name}.")
        repeated = sorted(v for v, n in Counter(policy.versions).items() if n > 1)
        if repeated:
            found.warning("specific-repeated", f"{field_name}.versions", f"versions {repeated} are listed twice",
                          "list each version once")
    if policy.kind == "latest" and model.version_labels:
        found.warning("label-on-latest", "version_labels",
                      f"labels with policy {policy.describe()}: when newer versions are exported, TF Serving "
                      f"unloads the labelled version and requests by label fail with NOT_FOUND",
                      "pin the labelled versions with model_version_policy { specific { versions: ... } }")


def _check_folder(model: ModelConfig, folder: ModelFolder, found: FindingList, mapping_given: bool) -> None:
    where = _where(folder)
    if not folder.checked:
        _check_remote(model, folder, found)
        return
    export = (f"tfsk export ... --base {folder.host_path.parent} --name {folder.host_path.name}"
              if folder.host_path is not None else "tfsk export ...")
    poll = rules.poll_servable(model, local=folder.host_path)
    if poll.error is not None and not folder.exists:
        found.error("base-path-missing", "base_path",
                    f"{where} does not exist: TF Serving waits forever at start-up for this model, and on a "
                    f"running server the failing poll stops version updates for every model",
                    f"export the model there ({export}), or fix base_path / the mount"
                    + ("" if mapping_given else "; for a container path, validate with --host-root/--container-root"),
                    poll.error.message, poll.error.code)
        return
    if poll.error is not None:
        found.error("base-path-not-folder", "base_path",
                    f"{where} is not a readable folder of versions: every poll fails, for every model",
                    "point base_path at the folder that holds the numeric version folders",
                    poll.error.message, poll.error.code)
        return
    for note in poll.notes:
        _report_note(note, poll, folder, export, found)
    if not poll.versions:
        return
    assert folder.host_path is not None  # versions were read from it
    for version, child in sorted(poll.versions.items()):
        problem = rules.folder_problem(model.name, version, rules.version_path(model.base_path, child),
                                       folder.host_path / child)
        if problem is not None:
            message, action = _LOAD_PROBLEMS.get(problem.rule, _LOAD_PROBLEMS["version-corrupt"])
            found.error(problem.rule, "base_path", f"version {version} ({folder.host_path / child}) {message}",
                        action, problem.message, problem.code)


_LOAD_PROBLEMS = {
    "version-not-folder": ("is a file: TF Serving tries to load it and fails",
                           "remove or rename it (a non-numeric name is ignored)"),
    "version-unreadable": ("cannot be read: TF Serving tries to load it and fails",
                           "let the server's user read it, or delete it"),
    "version-incomplete": (f"has no {SAVED_MODEL_FILE}: its load fails (by default retried 5 times a minute apart; at "
                           "start-up the server then exits)",
                           "export a complete version (tfsk export writes and renames atomically) or delete this "
                           "folder"),
    "version-corrupt": (f"holds a {SAVED_MODEL_FILE} that is cut short or corrupt (a half-copied version?): its load fails",
                        "export it again (tfsk export writes and renames atomically) or delete this folder"),
    "version-session-bundle": ("is an old SessionBundle export, which TF Serving no longer loads",
                               "export it again as a SavedModel"),
}


def _report_note(note: rules.Verdict, poll: rules.Poll, folder: ModelFolder, export: str, found: FindingList) -> None:
    """Turn what TF Serving logs about a poll into a finding."""
    where = _where(folder)
    if note.rule == "duplicate-version" and note.message.startswith("Duplicate"):
        version = int(note.message.split("Version ", 1)[1].split(" ", 1)[0])
        names = sorted(v.path.name for v in folder.versions if v.version == version)
        found.warning("duplicate-version", "base_path",
                      f"folders {names} are all version {version}: TF Serving keeps {poll.versions.get(version)!r} "
                      f"and ignores the other{'s' if len(names) > 2 else ''}", "rename or delete all but one of them",
                      note.message)
    elif note.rule == "specific-version-missing" and poll.versions:
        found.warning("specific-version-missing", "model_version_policy.specific.versions",
                      f"{note.message.split(',')[0]} is not in {where}: TF Serving logs a warning and serves the "
                      "others",
                      "export it, or remove it from the list", note.message)
    elif note.rule == "specific-empty":
        found.error("specific-empty", "model_version_policy.specific.versions",
                    "specific {} lists no version: TF Serving loads nothing (a new model never becomes available, so "
                    "start-up and the reload RPC wait forever; a running model is unloaded)",
                    "list the versions to serve, or use latest { num_versions: 1 }", note.message)
    elif note.rule == "no-versions" and not folder.versions:
        seen = f" (it holds {', '.join(repr(n) for n in folder.other_children[:5])})" if folder.other_children else ""
        hint = ("; it looks like a SavedModel itself: move it into a numeric version folder, e.g. <base_path>/1/"
                if SAVED_MODEL_FILE in folder.other_children else
                "; version folders are named by integers (1, 2, ...), names like 'v1' are ignored")
        found.error("no-versions", "base_path",
                    f"{where} holds no numeric version folder{seen}: TF Serving waits forever at start-up, and "
                    f"a running server unloads every version of this model",
                    f"export a version into it ({export}){hint}", note.message)
    elif note.rule == "no-versions":
        found.error("nothing-to-load", "model_version_policy.specific.versions",
                    f"none of the versions its policy names is in {where} (it has "
                    f"{sorted(folder.version_numbers())}): TF Serving loads nothing, so it waits forever at "
                    f"start-up and a running server unloads the model", "list versions that exist, or export them",
                    note.message)


def _check_remote(model: ModelConfig, folder: ModelFolder, found: FindingList) -> None:
    unsupported = rules.unreadable_scheme(model.base_path)
    if unsupported is not None and folder.host_path is None and rules.local_path(model.base_path) is None:
        poll = rules.poll_servable(model, readable=rules.TF_SERVING_SCHEMES)
        assert poll.error is not None
        found.error("unsupported-file-system", "base_path",
                    f"tensorflow_model_server has no file system for {model.base_path!r} (it reads local folders "
                    f"and gs://; S3 support left TensorFlow in 2.6): every poll fails, and the model never loads",
                    "copy the model to a local folder (or a mounted volume) and point base_path at it",
                    poll.error.message, poll.error.code)
        return
    devserver = rules.poll_servable(model).error if rules.local_path(model.base_path) is None else None
    found.warning("not-checked", "base_path", f"the folder was not checked: {folder.unchecked}"
                  + ("; tfsk's devserver reads local folders only and waits for this model" if devserver else ""),
                  "give --host-root/--container-root for container paths, or check the URI yourself",
                  devserver.message if devserver else None, devserver.code if devserver else None)


def _check_labels(model: ModelConfig, policy: VersionPolicy, folder: ModelFolder | None,
                  server: ServerState | None, allow_unavailable: bool, found: FindingList) -> None:
    on_disk: set[int] | None = None  # None: the folder was not read
    aspired: set[int] = set()
    if folder is not None and folder.checked and folder.is_dir:
        on_disk = folder.version_numbers()
        aspired = {v.version for v in policy.aspired(folder.versions)}
    for label, version in sorted(model.version_labels.items()):
        field_name = f"version_labels[{label!r}]"
        if not label or any(c in label for c in "/:"):
            found.error("label-name", field_name,
                        f"label {label!r} cannot be used: REST paths (/labels/<label>) cannot carry it",
                        f"rename it to match {LABEL_PATTERN}")
        elif not label_name_ok(label):
            found.warning("label-name", field_name,
                          f"label {label!r} is outside TF Serving's documented {LABEL_PATTERN}",
                          "rename it with letters, digits and '_' only")
        move = f"tfsk config plan-label FILE --model {model.name} --label {label} --version {version}"
        not_loaded = policy.allows(version) is False or (
            policy.kind == "latest" and on_disk is not None and version in on_disk and version not in aspired)
        if not_loaded:
            found.error("label-not-loaded-by-policy", field_name,
                        f"label {label!r} names version {version}, which policy {policy.describe()} does not load: "
                        f"TF Serving refuses labels for versions that are not loaded (unless {_ALLOW_FLAG}; "
                        f"then requests by this label fail with NOT_FOUND)",
                        f"let the policy load version {version} first, wait until it is AVAILABLE, then label it "
                        f"({move})")
            continue
        if on_disk is not None and version not in on_disk:
            report = found.warning if allow_unavailable else found.error
            report("label-version-missing", field_name,
                   f"label {label!r} names version {version}, which is not in {_where(folder)}: TF Serving refuses "
                   f"labels for versions that are not loaded (unless {_ALLOW_FLAG}; then requests by this label "
                   f"fail with NOT_FOUND until the version loads)",
                   f"export version {version} first, or point the label at a version on disk")
            continue
        _check_label_availability(model.name, label, version, server, allow_unavailable, move, found)


def _check_label_availability(model: str, label: str, version: int, server: ServerState | None,
                              allow_unavailable: bool, move: str, found: FindingList) -> None:
    available = server.available_versions(model) if server is not None else None
    current = server.labels.get(model, {}).get(label) if server is not None else None
    if rules.label_admitted(version, available or (), current, allow_unavailable):
        return
    field_name = f"version_labels[{label!r}]"
    flag_note = (f"{_ALLOW_FLAG} does not help: it never lets a label move to an unloaded version"
                 if current not in (None, version) else f"unless the server runs with {_ALLOW_FLAG}")
    refusal = rules.label_refusal(model, version)
    if available is None:
        found.warning("label-needs-available", field_name,
                      f"TF Serving accepts label {label!r} -> {version} only while version {version} is AVAILABLE: "
                      f"it checks labels before loading the versions of the same config, so at start-up, or in the "
                      f"reload that first loads version {version}, it refuses the config ({flag_note})",
                      f"start without the label and add it by a reload once version {version} is AVAILABLE ({move})",
                      refusal.message, refusal.code)
    else:
        found.error("label-unavailable", field_name,
                    f"version {version} is not AVAILABLE on the server, so TF Serving refuses the whole label map "
                    f"with FAILED_PRECONDITION ({flag_note})",
                    f"push a config that loads version {version}, wait until it is AVAILABLE, then the label ({move})",
                    refusal.message, refusal.code)


def _where(folder: ModelFolder | None) -> str:
    if folder is None:
        return "the base path"
    if folder.host_path is not None and os.fspath(folder.host_path) != folder.base_path:
        return f"{folder.base_path!r} (host folder {str(folder.host_path)!r})"
    return repr(folder.base_path)
