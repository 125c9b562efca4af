"""tfsk.deploy: the serving stack of ``docker-compose.yml``, on Docker or, without it, on the devserver.

- :func:`load_stack` reads ``docker-compose.yml`` (Compose's variable substitution included) with
  ``tfsk.toml``; :func:`check_stack` checks them against each other and the files they mount.
- :class:`DockerStack` drives ``docker compose``; :class:`DevserverStack` runs the compose file's
  serving service on the devserver (container paths and ports mapped to the host's).
- :class:`Rollout` (``tfsk rollout``) takes a new part version into a composed model on running
  servers behind the labels ``stable``/``canary``; :func:`apply_declaration` writes the configs of
  ``tfsk.toml``, pushes them and waits for every target.
- :func:`render_kubernetes` turns the same serving service and ``tfsk.toml``'s ``[kubernetes]`` into
  Kubernetes manifests (:func:`check_manifests`, :func:`validate_with_kubernetes_schemas`);
  :func:`build_serving_image` bakes the models into an image ``FROM`` the serving image.
- :func:`prepare_stack` is the exporter service's step: export the demo when no model exists,
  write the configs.

This package uses the other packages' public APIs only; the devserver runs as a process.
"""

from ._apply import ApplyError, Targets, apply_declaration, wait_for_versions
from ._checks import (
    ComposeValidation,
    check_stack,
    validate_with_compose_cli,
    validate_with_promtool,
)
from ._compose import (
    COMPOSE_FILE,
    ComposeFile,
    Mount,
    PortBinding,
    ServiceSpec,
    load_compose,
)
from ._devserver import DevserverStack, devserver_arguments
from ._docker import DockerStack, docker_engine_problem
from ._errors import StackError
from ._interpolate import interpolate
from ._k8s import KubernetesManifests, render_kubernetes, write_manifests
from ._k8s_checks import (
    KUBERNETES_VERSION,
    SchemaResult,
    check_manifests,
    validate_with_kubernetes_schemas,
)
from ._k8s_image import (
    SERVING_DOCKERFILE,
    ServingImage,
    build_serving_image,
    serving_dockerfile,
)
from ._k8s_settings import MODEL_SOURCES, KubernetesSettings, read_kubernetes_settings
from ._prepare import DEMO_MODELS, PreparedStack, prepare_stack
from ._prune import prune_unreferenced
from ._rollout import CANARY, STABLE, Rollout, RolloutError, Source
from ._rollout_state import RolloutState, load_state
from ._spec import Endpoints, StackSpec, load_stack
from ._wait import ModelState, wait_for_models

__all__ = [
    "CANARY",
    "COMPOSE_FILE",
    "DEMO_MODELS",
    "KUBERNETES_VERSION",
    "MODEL_SOURCES",
    "SERVING_DOCKERFILE",
    "STABLE",
    "ApplyError",
    "ComposeFile",
    "ComposeValidation",
    "DevserverStack",
    "DockerStack",
    "Endpoints",
    "KubernetesManifests",
    "KubernetesSettings",
    "ModelState",
    "Mount",
    "PortBinding",
    "PreparedStack",
    "Rollout",
    "RolloutError",
    "RolloutState",
    "SchemaResult",
    "ServiceSpec",
    "ServiceSpec",
    "ServingImage",
    "Source",
    "StackError",
    "StackError",
    "StackSpec",
    "StackSpec",
    "Targets",
    "apply_declaration",
    "build_serving_image",
    "check_manifests",
    "check_stack",
    "devserver_arguments",
    "docker_engine_problem",
    "interpolate",
    "load_compose",
    "load_stack",
    "load_state",
    "prepare_stack",
    "prune_unreferenced",
    "read_kubernetes_settings",
    "render_kubernetes",
    "serving_dockerfile",
    "validate_with_compose_cli",
    "validate_with_kubernetes_schemas",
    "validate_with_promtool",
    "wait_for_models",
    "wait_for_versions",
    "write_manifests",
]
