"""The serving stack of ``docker-compose.yml``, on Docker or, without it, on the devserver.

- :mod:`._compose` reads the compose file (:mod:`._interpolate`: Compose's variable substitution);
  :mod:`._spec` joins it with ``tfsk.toml`` (:func:`load_stack`).
- :mod:`._checks` checks them against each other and the files they mount.
- :mod:`._docker` and :mod:`._devserver` are the two engines; :mod:`._wait` waits for the models.
- :mod:`._prepare` is the exporter service's one-shot step (fill the models, write the configs).
"""

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
from ._interpolate import interpolate
from ._prepare import PreparedStack, prepare_stack
from ._spec import Endpoints, StackSpec, load_stack
from ._wait import ModelState, wait_for_models

__all__ = [
    "COMPOSE_FILE",
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
