"""tfsk.deploy: the serving stack of ``docker-compose.yml``, on Docker or, without it, on the devserver;
its Kubernetes manifests; rollouts on running servers. One subpackage per concept:

- ``stack``: :func:`load_stack` reads ``docker-compose.yml`` (Compose's variable substitution
  included) with ``tfsk.toml``; :func:`check_stack` checks them against each other and the files
  they mount. :class:`DockerStack` drives ``docker compose``; :class:`DevserverStack` runs the
  compose file's serving service on the devserver (container paths and ports mapped to the
  host's). :func:`prepare_stack` is the exporter service's step: fill the models when none
  exists (with what the caller passes; ``tfsk stack`` passes the demo), write the configs.
- ``k8s``: :func:`render_kubernetes` turns the same serving service and ``tfsk.toml``'s
  ``[kubernetes]`` into Kubernetes manifests (:func:`check_manifests`,
  :func:`validate_with_kubernetes_schemas`); :func:`build_serving_image` bakes the models into an
  image ``FROM`` the serving image.
- ``bench``: :func:`run_bench` (``tfsk bench``) measures throughput and latency percentiles of a
  served model under closed- or open-loop load (:class:`LoadStep`), TF-free, into a :class:`BenchReport`.
- ``rollout``: :class:`Rollout` (``tfsk rollout``) takes a new part version into a composed model
  on running servers behind the labels ``stable``/``canary``; :func:`apply_declaration` writes the
  configs of ``tfsk.toml``, pushes them and waits for every target.

Every error is a :class:`StackError` (a :class:`tfsk.TfskError`). This package uses the other
packages' public APIs only; the devserver runs as a process (:func:`tfsk.devserver.start_process`).
"""

from ._errors import StackError
from .bench import (
    ARRIVALS,
    PROTOCOLS,
    BenchError,
    BenchReport,
    LoadStep,
    StepResult,
    default_processes,
    parse_counts,
    parse_duration,
    parse_rates,
    report_from_json,
    run_bench,
    steps_for,
    synthesize,
)
from .k8s import (
    CONFIG_MAP_FILE,
    KUBERNETES_VERSION,
    MANIFESTS_DIR,
    MODEL_SOURCES,
    SERVING_DOCKERFILE,
    KubernetesManifests,
    KubernetesSettings,
    SchemaResult,
    ServingImage,
    build_serving_image,
    check_manifests,
    check_rendered_config_map,
    kubernetes_declared,
    read_kubernetes_settings,
    render_kubernetes,
    serving_dockerfile,
    validate_with_kubernetes_schemas,
    write_config_map,
    write_manifests,
)
from .rollout import (
    CANARY,
    STABLE,
    ApplyError,
    Rollout,
    RolloutError,
    RolloutState,
    Source,
    Targets,
    apply_declaration,
    load_state,
    prune_unreferenced,
    wait_for_versions,
)
from .stack import (
    COMPOSE_FILE,
    ComposeFile,
    ComposeValidation,
    DevserverStack,
    DockerStack,
    Endpoints,
    ModelState,
    Mount,
    PortBinding,
    PreparedStack,
    ServiceSpec,
    StackSpec,
    check_stack,
    devserver_arguments,
    docker_engine_problem,
    interpolate,
    load_compose,
    load_stack,
    prepare_stack,
    validate_with_compose_cli,
    validate_with_promtool,
    wait_for_models,
)

__all__ = [
    "ARRIVALS",
    "ApplyError",
    "BenchError",
    "BenchReport",
    "CANARY",
    "COMPOSE_FILE",
    "CONFIG_MAP_FILE",
    "ComposeFile",
    "ComposeValidation",
    "DevserverStack",
    "DockerStack",
    "Endpoints",
    "KUBERNETES_VERSION",
    "KubernetesManifests",
    "KubernetesSettings",
    "LoadStep",
    "MANIFESTS_DIR",
    "MODEL_SOURCES",
    "ModelState",
    "Mount",
    "PROTOCOLS",
    "PortBinding",
    "PreparedStack",
    "Rollout",
    "RolloutError",
    "RolloutState",
    "SERVING_DOCKERFILE",
    "STABLE",
    "SchemaResult",
    "ServiceSpec",
    "ServingImage",
    "Source",
    "StackError",
    "StackSpec",
    "StepResult",
    "Targets",
    "apply_declaration",
    "build_serving_image",
    "check_manifests",
    "check_rendered_config_map",
    "check_stack",
    "default_processes",
    "devserver_arguments",
    "docker_engine_problem",
    "interpolate",
    "kubernetes_declared",
    "load_compose",
    "load_stack",
    "load_state",
    "parse_counts",
    "parse_duration",
    "parse_rates",
    "prepare_stack",
    "prune_unreferenced",
    "read_kubernetes_settings",
    "render_kubernetes",
    "report_from_json",
    "run_bench",
    "serving_dockerfile",
    "steps_for",
    "synthesize",
    "validate_with_compose_cli",
    "validate_with_kubernetes_schemas",
    "validate_with_promtool",
    "wait_for_models",
    "wait_for_versions",
    "write_config_map",
    "write_manifests",
]
