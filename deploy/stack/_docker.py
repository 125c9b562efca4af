"""The stack on a Docker engine: ``docker compose`` for this file, health from ``docker inspect``.

Compose's own command does the work (build, pull, start in order, stop); we add what a user
otherwise does by hand: the files written as the host user, a wait until the serving container is
healthy and every declared model is AVAILABLE, the last log lines when it is not, the endpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence

from .._errors import StackError
from ._checks import compose_cli
from ._spec import Endpoints, StackSpec
from ._wait import ModelState, models_state, wait_for_models

__all__ = ["DockerStack", "docker_engine_problem"]

ALL_PROFILES = ("monitoring", "smoke")


def docker_engine_problem() -> str | None:
    """Why no Docker engine can be used here (one line), or ``None`` when one answers."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker command on PATH"
    try:
        info = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=20)
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer within 20 s"
    if info.returncode != 0 or not info.stdout.strip():
        reason = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"no reachable Docker engine ({reason})"
    if compose_cli() is None:
        return "Docker answers but neither `docker compose` nor `docker-compose` is installed"
    return None


class DockerStack:
    """``tfsk stack up|down|status|logs`` with ``docker compose``."""

    name = "docker"

    def __init__(self, spec: StackSpec) -> None:
        self.spec = spec
        command = compose_cli()
        if command is None:
            raise StackError("neither `docker compose` nor `docker-compose` is installed; install Docker Compose, "
                             "or use --engine devserver")
        self.compose = [*command, "-f", str(spec.compose.path), "--project-directory", str(spec.compose.project_dir)]

    def _run(self, *arguments: str, env: dict[str, str] | None = None, check: bool = True,
             capture: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        run = subprocess.run([*self.compose, *arguments], capture_output=capture, text=True,
                             env={**os.environ, **(env or {})}, timeout=timeout)
        if check and run.returncode != 0:
            output = ((run.stdout or "") + (run.stderr or "")).strip()
            raise StackError(f"`{' '.join(['docker compose', *arguments])}` failed (exit {run.returncode})",
                             "\n".join(output.splitlines()[-25:]))
        return run

    def _container(self, service: str) -> str | None:
        ids = self._run("ps", "-a", "-q", service, check=False).stdout.split()
        return ids[0] if ids else None

    def _state(self, container: str) -> dict:  # type: ignore[type-arg]
        inspect = subprocess.run(["docker", "inspect", "--format", "{{json .State}}", container], capture_output=True,
                                 text=True, timeout=30)
        return json.loads(inspect.stdout) if inspect.returncode == 0 and inspect.stdout.strip() else {}

    def logs_tail(self, service: str, lines: int = 25) -> str:
        return self._run("logs", "--no-color", "--tail", str(lines), service, check=False).stdout.strip()

    def up(self, *, profiles: Sequence[str] = (), batching: bool = False, build: bool = False,
           timeout: float = 600, on_progress: Callable[[str], None] = lambda _: None) -> Endpoints:
        env: dict[str, str] = {}
        if batching:
            batching_file = self.spec.declaration.outputs.batching_parameters
            container = self.spec.declaration.mapping.to_container(batching_file) if batching_file else None
            if container is None:
                raise StackError("--batching needs [batching] in tfsk.toml, written under the mounted model folder")
            env.update(TFSK_BATCHING="true", TFSK_BATCHING_PARAMETERS_FILE=container)
        selected = [argument for profile in profiles for argument in ("--profile", profile)]
        self.spec.declaration.mapping.host_root.mkdir(parents=True, exist_ok=True)  # ours, not Docker's (root's)
        on_progress("docker compose " + " ".join([*selected, "up", "-d", *(["--build"] if build else [])]))
        run = self._run(*selected, "up", "-d", *(["--build"] if build else []), env=env, check=False)
        if run.returncode != 0:
            raise StackError(f"`docker compose up` failed (exit {run.returncode}); the exporter's log follows",
                             self.logs_tail("exporter") or (run.stdout + run.stderr).strip())

        def unhealthy() -> StackError | None:
            container = self._container(self.spec.serving.name)
            state = self._state(container) if container else {}
            health = (state.get("Health") or {}).get("Status")
            if state.get("Status") in ("exited", "dead") or state.get("Restarting") or health == "unhealthy":
                probes = (state.get("Health") or {}).get("Log") or []
                detail = f"; last healthcheck: {probes[-1].get('Output', '').strip()}" if probes else ""
                return StackError(f"the serving container is {health or state.get('Status')} (exit code "
                                  f"{state.get('ExitCode')}){detail}", self.logs_tail(self.spec.serving.name))
            return None

        endpoints = self.spec.endpoints(tuple(profiles))
        wait_for_models(endpoints.grpc, self.spec.served_models(), timeout=timeout, on_progress=on_progress,
                        failure=unhealthy)
        self._wait_healthy(timeout, on_progress)
        return endpoints

    def _wait_healthy(self, timeout: float, on_progress: Callable[[str], None]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            container = self._container(self.spec.serving.name)
            health = ((self._state(container) if container else {}).get("Health") or {}).get("Status")
            if health in ("healthy", None):
                return
            on_progress(f"container health: {health}")
            time.sleep(2)
        raise StackError(f"the serving container is not healthy after {timeout:.0f}s",
                         self.logs_tail(self.spec.serving.name))

    def down(self, timeout: float = 60) -> bool:
        selected = [argument for profile in ALL_PROFILES for argument in ("--profile", profile)]
        self._run(*selected, "down", "--timeout", str(int(timeout)))
        return True

    def status(self) -> tuple[str, list[ModelState]]:
        listing = self._run("ps", "-a", check=False).stdout.strip()
        from tfsk.client import Client

        with Client(self.spec.endpoints().grpc, timeout=5, retries=0) as client:
            return listing, models_state(client, self.spec.served_models())

    def logs(self, follow: bool = False) -> int:
        return self._run("logs", *(["--follow"] if follow else []), self.spec.serving.name, check=False,
                         capture=False).returncode
