"""tfsk.deploy: the serving stack of ``docker-compose.yml``, on Docker or, without it, on the devserver.

- :func:`load_stack` reads ``docker-compose.yml`` (Compose's variable substitution included) with
  ``tfsk.toml``; :func:`check_stack` checks them against each other and the files they mount.
- :class:`DockerStack` drives ``docker compose``; :class:`DevserverStack` runs the compose file's
  serving service on the devserver (container paths and ports mapped to the host's).
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
from ._prepare import DEMO_MODELS, PreparedStack, prepare_stack
from ._spec import Endpoints, StackSpec, load_stack
from ._wait import ModelState, wait_for_models

__all__ = [
    "COMPOSE_FILE",
    "DEMO_MODELS",
    "ComposeFile",
    "ComposeValidation",
    "DevserverStack",
    "DockerStack",
    "Endpoints",
    "ModelState",
    "Mount",
    "PortBinding",
    "PreparedStack",
    "ServiceSpec",
    "StackError",
    "StackSpec",
    "check_stack",
    "devserver_arguments",
    "docker_engine_problem",
    "interpolate",
    "load_compose",
    "load_stack",
    "prepare_stack",
    "validate_with_compose_cli",
    "validate_with_promtool",
    "wait_for_models",
]
