"""A podman engine of the test's own: its containers.conf, storage, run directories and Docker API socket
under one temporary folder, never the machine's (or a user's) engine; gone again by :meth:`Podman.stop`.

Every container runs on the host network (containers.conf ``netns = "host"``, builds too): nothing is
bridged, nothing published; the only address the stack is reached at is 127.0.0.1.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

CONTAINERS_CONF = """\
[containers]
# runc cannot raise rlimits in this sandbox ("error setting rlimit type 6"): keep the caller's.
default_ulimits = []
netns = "host"
utsns = "host"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{base}/events.log"
runtime = "runc"
tmp_dir = "{base}/tmp"
volume_path = "{base}/volumes"

[network]
network_config_dir = "{base}/networks"
default_network = "podman"
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{base}/root"
runroot = "{base}/runroot"
"""


def podman_problem() -> str | None:
    """Why no podman engine can be started here, or ``None``."""
    for tool in ("podman", "docker", "docker-compose", "debootstrap"):
        if shutil.which(tool) is None:
            return f"no {tool} command on PATH (make test-engine installs it from Debian as root)"
    if os.geteuid() != 0:
        return "the engine test runs podman as root (rootless podman needs subuids this machine may not have)"
    return None


class Podman:
    """``podman system service`` on a socket of its own; :attr:`env` points docker/docker-compose at it."""

    def __init__(self, base: Path | None = None) -> None:
        self.base = Path(base or tempfile.mkdtemp(prefix="tfsk-engine-"))
        self.socket = self.base / "podman.sock"
        for name in ("root", "runroot", "tmp", "volumes", "networks", "xdg"):
            (self.base / name).mkdir(parents=True, exist_ok=True)
        (self.base / "containers.conf").write_text(CONTAINERS_CONF.format(base=self.base))
        (self.base / "storage.conf").write_text(STORAGE_CONF.format(base=self.base))
        (self.base / "registries.conf").write_text('unqualified-search-registries = []\n')
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(self.base / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.base / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(self.base / "registries.conf"),
            "XDG_RUNTIME_DIR": str(self.base / "xdg"),
            "TMPDIR": str(self.base / "tmp"),
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_BUILDKIT": "0",
            "COMPOSE_DOCKER_CLI_BUILD": "0",
        }
        self.env.pop("DOCKER_CONTEXT", None)
        self.service: subprocess.Popen[bytes] | None = None
        #: Process groups started for the engine (debootstrap, ...): killed whole by :meth:`stop`.
        self.groups: list[int] = []
        self._log = None
        self._stopped = False

    @property
    def globals(self) -> list[str]:
        return ["--root", str(self.base / "root"), "--runroot", str(self.base / "runroot"),
                "--tmpdir", str(self.base / "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file"]

    def podman(self, *arguments: str, check: bool = True, timeout: float = 600,
               input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        run = subprocess.run(["podman", *self.globals, *arguments], env=self.env, capture_output=True, timeout=timeout,
                             input=input)
        result = subprocess.CompletedProcess(run.args, run.returncode, run.stdout.decode(errors="replace"),
                                             run.stderr.decode(errors="replace"))
        if check and run.returncode != 0:
            raise RuntimeError(f"podman {' '.join(arguments)} failed ({run.returncode}): {result.stderr[-3000:]}")
        return result

    def start(self, timeout: float = 60) -> None:
        atexit.register(self.stop)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous = signal.getsignal(signum)

            def handler(number, frame, previous=previous):  # noqa: ANN001
                self.stop()
                if callable(previous):
                    previous(number, frame)
                raise KeyboardInterrupt(f"signal {number}: the engine is stopped and removed")  # ends pytest

            signal.signal(signum, handler)
        self._log = open(self.base / "service.log", "wb")  # noqa: SIM115
        self.service = subprocess.Popen(["podman", *self.globals, "system", "service", "--time=0",
                                         f"unix://{self.socket}"], env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.service.poll() is not None:
                raise RuntimeError(f"podman system service exited: {self.service_log()}")
            if self.socket.exists() and subprocess.run(["docker", "version"], env=self.env, capture_output=True,
                                                       timeout=20).returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"podman system service did not answer on {self.socket}: {self.service_log()}")

    def service_log(self) -> str:
        path = self.base / "service.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        """Every container removed, the service ended, the storage unmounted and deleted. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.podman("rm", "--all", "--force", "--time", "5", check=False, timeout=120)
            self.podman("pod", "rm", "--all", "--force", check=False, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.service is not None and self.service.poll() is None:
            os.killpg(self.service.pid, signal.SIGTERM)
            try:
                self.service.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.service.pid, signal.SIGKILL)
                self.service.wait(timeout=20)
        if self._log is not None:
            self._log.close()
        try:
            self.podman("system", "reset", "--force", check=False, timeout=300)
        except (OSError, subprocess.TimeoutExpired):
            pass
        # conmon of `exec` sessions (healthchecks, docker exec) outlives them by up to 300 s: every process
        # that names this engine's folder is ours, and goes.
        self._kill_leftovers()
        # Anything still mounted under the folder (overlay layers, shm) goes before the folder does.
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if line.split()[1].startswith(str(self.base))]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        for _ in range(3):  # a process killed a moment ago may still have been writing
            shutil.rmtree(self.base, ignore_errors=True)
            self._kill_leftovers()
            if not self.base.exists():
                break
            time.sleep(1)

    def _kill_leftovers(self) -> None:
        marker = str(self.base).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if marker in (entry / "cmdline").read_bytes() or os.readlink(entry / "cwd").encode().startswith(marker):
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                continue
