"""``tfsk stack build-image``: the models baked into an image built ``FROM`` the pinned serving image.

``Dockerfile.serving`` copies each declared model folder and the container-side configs to the
paths the compose stack mounts them at, and runs the compose serving service's flags, so the
image serves on its own (``docker run -p 8500:8500 IMAGE``) and as the Kubernetes Deployment's
image (``[kubernetes] models = "image"``). A ``Dockerfile.serving.dockerignore`` beside it keeps
the build context to the model folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tfsk import serving_config as sc
from tfsk._base.flags import TFSERVING_ENTRYPOINT

from .._errors import StackError
from ..stack import StackSpec

__all__ = ["SERVING_DOCKERFILE", "ServingImage", "build_serving_image", "serving_dockerfile", "write_serving_dockerfile"]

SERVING_DOCKERFILE = "Dockerfile.serving"
_HEADER = "# Written by `tfsk stack build-image` from tfsk.toml and docker-compose.yml: change those and run it again.\n"


@dataclass(frozen=True)
class ServingImage:
    """What ``build-image`` did: the Dockerfile, the tag, and whether it was built (else why not)."""

    dockerfile: Path
    tag: str
    built: bool
    reason: str | None = None


def _relative(spec: StackSpec, host: Path) -> str:
    project = spec.compose.project_dir
    if not host.is_relative_to(project):
        raise StackError(f"{host} is outside {project}, the build context: export the models under the project "
                         f"folder ([paths] host_root in tfsk.toml)")
    return host.relative_to(project).as_posix()


def serving_dockerfile(spec: StackSpec) -> str:
    """The text of ``Dockerfile.serving`` for ``spec``: FROM its serving image, the models and configs, its flags."""
    declaration, image = spec.declaration, spec.serving.image
    if not image:
        raise StackError(f"{spec.compose.path}: the serving service has no image to build FROM")
    platform = f"--platform={spec.serving.raw['platform']} " if spec.serving.raw.get("platform") else ""
    lines = [_HEADER.rstrip("\n"), "# The pinned TF Serving image of the compose stack, with the models and configs in it.",
             f"FROM {platform}{image}"]
    for model in declaration.models:
        host = declaration.mapping.host_path(model.folder)
        lines.append(f"COPY {_relative(spec, host)}/ {declaration.base_path(model, 'container')}/")
    for rendered in sc.render_configs(declaration):
        if rendered.target != "host" and rendered.container_path:
            lines.append(f"COPY {_relative(spec, rendered.path)} {rendered.container_path}")
    arguments = [a.text for a in spec.serving.command_line().arguments  # an empty flag is the default
                 if not (a.flag is not None and a.flag.kind == "string" and a.value == "")]
    entrypoint = list(spec.serving.entrypoint or (TFSERVING_ENTRYPOINT,))
    lines += ["# The compose serving service's entrypoint and flags.", f"ENTRYPOINT {json.dumps(entrypoint)}",
              f"CMD {json.dumps(arguments)}"]
    return "\n".join(lines) + "\n"


def _dockerignore(spec: StackSpec) -> str:
    root = _relative(spec, spec.declaration.mapping.host_root)
    return f"{_HEADER}# Only the model folder goes into the build context of {SERVING_DOCKERFILE}.\n*\n!{root}\n"


def write_serving_dockerfile(spec: StackSpec, path: Path | None = None) -> Path:
    """Write ``Dockerfile.serving`` (and its ``.dockerignore``) beside the compose file; never over a hand-written one."""
    path = path or spec.compose.project_dir / SERVING_DOCKERFILE
    files = {path: serving_dockerfile(spec), path.with_name(path.name + ".dockerignore"): _dockerignore(spec)}
    for file in files:
        if file.exists() and not file.read_text(encoding="utf-8", errors="replace").startswith(_HEADER):
            raise StackError(f"{file} exists and was not written by `tfsk stack build-image`; not replacing it")
    for file, text in files.items():
        temporary = file.with_name(f".{file.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, file)
    return path


def build_serving_image(spec: StackSpec, tag: str, *, build: bool = True) -> ServingImage:
    """Write ``Dockerfile.serving`` and build it with ``docker build`` where Docker answers."""
    from ..stack import docker_engine_problem

    dockerfile = write_serving_dockerfile(spec)
    if not build:
        return ServingImage(dockerfile, tag, False, "--no-build")
    missing = [str(spec.declaration.mapping.host_path(m.folder)) for m in spec.declaration.models
               if not spec.declaration.mapping.host_path(m.folder).is_dir()]
    if missing:
        raise StackError(f"no model folder at {', '.join(missing)}: export the models first (`tfsk stack prepare` "
                         f"or `tfsk export`), then build")
    problem = docker_engine_problem()
    if problem is not None:
        return ServingImage(dockerfile, tag, False, problem)
    docker = shutil.which("docker") or "docker"
    run = subprocess.run([docker, "build", "-f", str(dockerfile), "-t", tag, str(spec.compose.project_dir)],
                         capture_output=True, text=True)
    if run.returncode != 0:
        tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-15:])
        raise StackError(f"docker build -f {dockerfile.name} failed:\n{tail}")
    return ServingImage(dockerfile, tag, True)
