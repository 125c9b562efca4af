"""The engine under tests/engine: podman of the test's own, the two stand-in images, the project copied with
an engine compose file derived from the real docker-compose.yml (unchanged) and compose.override.yml."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _podman import Podman, podman_problem  # noqa: E402
from support import REPO  # noqa: E402

HERE = Path(__file__).parent
PYTHON_STANDIN = "localhost/tfsk-standin/python:3.11-bookworm"
SERVING_STANDIN = "localhost/tfsk-standin/serving:2.21.0"
#: The build context of docker-compose.yml's images and the stack's files, copied into the project.
SOURCES = ("Dockerfile", ".dockerignore", "pyproject.toml", "constraints.txt", "README.md", "docker-compose.yml",
           "tfsk.toml", "monitoring", "tfsk", "exporter", "serving_config", "client", "devserver", "deploy")
#: The owner of the project's tfsk.toml: not root, not the uid the image creates (1000).
OWNER = (4321, 4321)
TIMINGS: dict[str, float] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(name: str, started: float) -> None:
    TIMINGS[name] = time.monotonic() - started
    print(f"[engine] {name}: {TIMINGS[name]:.0f}s", flush=True)


@pytest.fixture(scope="session")
def engine():
    reason = podman_problem()
    if reason is not None:
        pytest.skip(f"skipped: {reason}")
    podman = Podman()
    try:
        started = time.monotonic()
        podman.start()
        timed("podman service", started)
        yield podman
    finally:
        podman.stop()
        assert not podman.base.exists(), f"{podman.base} is still there"
        left = [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _names(p, podman.base)]
        assert not left, f"processes of the engine still running: {left}"
        print("[engine] timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMINGS.items()), flush=True)


def _names(process: Path, folder: Path) -> bool:
    try:
        return str(folder).encode() in (process / "cmdline").read_bytes()
    except OSError:
        return False


def _python_standin(engine: Podman) -> None:
    """Debian bookworm's python3 (3.11) from debootstrap, a venv on PATH so `pip install` works as in the
    python image, and this machine's CA bundle and pip certificate setting so pip reaches the index."""
    started = time.monotonic()
    rootfs = engine.base / "rootfs"
    process = subprocess.Popen(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,bash",
                                "bookworm", str(rootfs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    engine.groups.append(process.pid)  # killed whole if the run is interrupted
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-5000:]
    venv = subprocess.run(["chroot", str(rootfs), "python3", "-m", "venv", "/usr/local/python"],
                          capture_output=True, text=True, timeout=300)
    assert venv.returncode == 0, venv.stdout + venv.stderr
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    (rootfs / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    shutil.copy(bundle, rootfs / "etc/ssl/certs/ca-certificates.crt")
    (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(["podman", *engine.globals, "import",
                               "--change", "ENV PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:"
                                           "/usr/sbin:/usr/bin:/sbin:/bin",
                               "--change", "ENV LANG=C.UTF-8",
                               "--change", 'CMD ["python3"]', "-", PYTHON_STANDIN],
                              stdin=tar.stdout, env=engine.env, capture_output=True, text=True, timeout=600)
    tar.wait()
    assert imported.returncode == 0, imported.stderr
    shutil.rmtree(rootfs, ignore_errors=True)
    timed("python stand-in (debootstrap + import)", started)


@pytest.fixture(scope="session")
def standins(engine):
    _python_standin(engine)
    started = time.monotonic()
    build = engine.podman("build", "--network", "host", "-f", str(HERE / "standin-serving.Containerfile"),
                          "-t", SERVING_STANDIN, str(REPO), check=False, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    timed("serving stand-in build", started)
    names = engine.podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert PYTHON_STANDIN in names and SERVING_STANDIN in names
    assert not [n for n in names if n.startswith(("docker.io/", "tensorflow/", "python:"))], names
    return PYTHON_STANDIN, SERVING_STANDIN


def engine_file(project: Path, env: dict[str, str], grpc: int, rest: int) -> Path:
    """docker-compose.yml + compose.override.yml resolved by docker-compose, then put on the host network:
    ports: dropped, network_mode: host, and the serving ports moved to free ones (the host's ports are the
    container's there, and 8500/8501 may be taken on a shared machine)."""
    config = subprocess.run(["docker-compose", "-f", str(project / "docker-compose.yml"), "-f",
                             str(project / "compose.override.yml"), "config"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=120)
    assert config.returncode == 0, config.stderr
    data = yaml.safe_load(config.stdout)
    for service in data["services"].values():
        service.pop("ports", None)
        service.pop("networks", None)
        service["network_mode"] = "host"
    serving = data["services"]["serving"]
    serving["command"] = [re.sub(r"^--port=8500$", f"--port={grpc}",
                                 re.sub(r"^--rest_api_port=8501$", f"--rest_api_port={rest}", a))
                          for a in serving["command"]]
    serving["healthcheck"]["test"] = [str(rest) if a == "8501" else a for a in serving["healthcheck"]["test"]]
    smoke = data["services"]["smoke"]
    smoke["command"] = [a.replace("serving:8500", f"serving:{grpc}") for a in smoke["command"]]
    data.pop("networks", None)
    # Prometheus (not run here: its image cannot be pulled) scrapes the REST port: the moved one.
    prometheus = project / "monitoring" / "prometheus.yml"
    text = prometheus.read_text()
    assert "port: 8501" in text
    prometheus.write_text(text.replace("port: 8501", f"port: {rest}"))
    path = project / "engine-compose.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def project(engine, standins, tmp_path_factory):
    root = tmp_path_factory.mktemp("engine-project")
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)
    shutil.copy(HERE / "compose.override.yml", root / "compose.override.yml")
    assert (root / "docker-compose.yml").read_bytes() == (REPO / "docker-compose.yml").read_bytes()
    # composed version 1 labelled stable from start-up on (the compose flag allows it before it loads),
    # so a client can ask `stable` through a rollout
    from tfsk import serving_config as sc

    sc.record_versions(sc.load_declaration(root / "tfsk.toml"), "composed", [1], {"stable": 1})
    os.chown(root / "tfsk.toml", *OWNER)
    os.chown(root, *OWNER)
    root.chmod(0o755)
    grpc, rest = free_port(), free_port()
    env = {**engine.env, "COMPOSE_PROJECT_NAME": "tfskengine"}
    path = engine_file(root, env, grpc, rest)
    return root, path, env, grpc, rest
