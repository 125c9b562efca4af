"""tfsk.deploy: the serving stack of ``docker-compose.yml``, on Docker or, without it, on the devserver.

- :func:`load_stack` reads ``docker-compose.yml`` (Compose's variable substitution included) with
  ``tfsk.toml``; :func:`check_stack` checks them against each other and the files they mount.
- :class:`DockerStack` drives ``docker compose``; :class:`DevserverStack` runs the compose file's
  serving service on the devserver (container paths and ports mapped to the host's).
- :func:`render_kubernetes` turns the same serving service and ``tfsk.toml``'s ``[kubernetes]`` into
  Kubernetes manifests (:func:`check_manifests`, :func:`validate_with_kubernetes_schemas`);
  :func:`build_serving_image` bakes the models into an image ``FROM`` the serving image.
- :func:`prepare_stack` is the exporter service's step: export the demo when no model exists,
  write the configs.

This package uses the other packages' public APIs only; the devserver runs as a process.
"""

from ._checks import ComposeValidation, check_stack, validate_with_compose_cli, validate_with_promtool
from ._compose import COMPOSE_FILE, ComposeFile, Mount, PortBinding, ServiceSpec, load_compose
from ._devserver import DevserverStack, devserver_arguments
from ._docker import DockerStack, docker_engine_problem
from ._errors import StackError
from ._interpolate import interpolate
from ._k8s import KubernetesManifests, render_kubernetes, write_manifests
from ._k8s_checks import KUBERNETES_VERSION, SchemaResult, check_manifests, validate_with_kubernetes_schemas
from ._k8s_image import SERVING_DOCKERFILE, ServingImage, build_serving_image, serving_dockerfile
from ._k8s_settings import MODEL_SOURCES, KubernetesSettings, read_kubernetes_settings
from ._prepare import DEMO_MODELS, PreparedStack, prepare_stack
from ._spec import Endpoints, StackSpec, load_stack
from ._wait import ModelState, wait_for_models

__all__ = [
    "COMPOSE_FILE",
    "DEMO_MODELS",
    "KUBERNETES_VERSION",
    "MODEL_SOURCES",
    "SERVING_DOCKERFILE",
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
    "SchemaResult",
    "ServiceSpec",
    "ServingImage",
    "StackError",
    "StackSpec",
    "build_serving_image",
    "check_manifests",
    "check_stack",
    "devserver_arguments",
    "docker_engine_problem",
    "interpolate",
    "load_compose",
    "load_stack",
    "prepare_stack",
    "read_kubernetes_settings",
    "render_kubernetes",
    "serving_dockerfile",
    "validate_with_compose_cli",
    "validate_with_kubernetes_schemas",
    "validate_with_promtool",
    "wait_for_models",
    "write_manifests",
]
