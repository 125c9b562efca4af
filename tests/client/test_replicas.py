"""The client across replicas: three devserver processes on loopback, one killed (SIGKILL, with calls in flight to it) and
restarted while 16 threads call Predict, GetModelMetadata and GetModelStatus through
``Client([a, b, c])``: not one call may fail. Waiting and ``tfsk status`` ask every replica."""

import asyncio
import collections
import json
import re
import signal
import threading
import time

import numpy as np
import pytest
from server_process import ServerProcess, free_port, wait_for
from support import tfsk

from tfsk.client import AsyncClient, Client, WaitTimeoutError
from tfsk.client._channel import RECONNECT_BACKOFF_MS

THREADS = 16
FEATURES = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]], np.float32)


@pytest.fixture
def replicas(demo_base, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "tower_c" base_path: "{demo_base / "tower_c"}" '
                      f'model_platform: "tensorflow" }} }}\n')
    flags = (f"--model_config_file={config}",)
    servers = [ServerProcess(*flags, port=free_port(), wait=False) for _ in range(3)]
    try:
        for server in servers:
            server.wait_until_ready(180)
        yield servers, flags
    finally:
        for server in servers:
            server.stop()


def kill_with_calls_in_flight(process) -> None:
    """SIGKILL a replica while calls are surely in flight to it: frozen first (SIGSTOP), the calls
    the balancer sends it meanwhile wait on it, and the kill breaks them all."""
    process.send_signal(signal.SIGSTOP)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


class Load:
    """``THREADS`` threads calling predict / metadata / status in turn until stopped; every outcome counted."""

    def __init__(self, client: Client) -> None:
        self.client, self.stop = client, threading.Event()
        self.done: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(THREADS)]

    def _run(self, index: int) -> None:
        calls = (lambda: self.client.predict("tower_c", {"features": FEATURES}),
                 lambda: self.client.metadata("tower_c"), lambda: self.client.status("tower_c"))
        count = index
        while not self.stop.is_set():
            kind = ("predict", "metadata", "status")[count % 3]
            count += 1
            try:
                calls[count % 3 - 1]()
                outcome = None
            except Exception as error:  # noqa: BLE001 - every failure is what the test counts
                outcome = f"{kind}: {type(error).__name__}: {error}"
            with self.lock:
                self.done[kind] += 1
                if outcome:
                    self.failed[outcome] += 1

    def total(self) -> int:
        with self.lock:
            return sum(self.done.values())

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_a_replica_killed_and_restarted_under_load_costs_no_request(replicas):
    servers, flags = replicas
    with Client([s.address for s in servers], timeout=20) as client, Load(client) as load:
        wait_for(lambda: load.total() > 300, timeout=60)
        victim = servers[1]
        kill_with_calls_in_flight(victim.process)
        before_restart = load.total()
        wait_for(lambda: load.total() > before_restart + 300, timeout=60)  # served by the other two meanwhile
        servers[1] = ServerProcess(*flags, port=victim.port, wait=False)
        servers[1].wait_until_ready(180)
        restarted = load.total()
        wait_for(lambda: load.total() > restarted + 300, timeout=60)
        # The channel tries the lost server again at most RECONNECT_BACKOFF_MS after its last try.
        time.sleep(2 * RECONNECT_BACKOFF_MS / 1000)
        # The restarted replica is back in the rotation: with the other two gone, it alone answers.
        for other in (servers[0], servers[2]):
            other.process.send_signal(signal.SIGKILL)
            other.process.wait(timeout=30)
        alone = load.total()
        wait_for(lambda: load.total() > alone + 300, timeout=60)
    print(f"\nreplica test: {load.total()} calls ({dict(load.done)}), {sum(load.failed.values())} failed")
    assert not load.failed, dict(load.failed)
    assert all(load.done[kind] > 300 for kind in ("predict", "metadata", "status"))


def test_waits_and_status_ask_every_replica(replicas, tmp_path):
    servers, _ = replicas
    addresses = [s.address for s in servers]
    with Client(addresses, timeout=10) as client:
        assert client.replicas() == tuple(addresses)
        assert client.wait_for_replicas("tower_c", 1, timeout=30) == {a: 1 for a in addresses}
        assert client.wait_until_available("tower_c", timeout=30) == 1

        async def wait_async():
            async with AsyncClient(addresses, timeout=10) as serving:
                return await serving.wait_for_replicas("tower_c", timeout=30), serving.replicas()

        assert asyncio.run(wait_async()) == ({a: 1 for a in addresses}, tuple(addresses))
        shown = tfsk("status", "tower_c", "--target", ",".join(addresses), "--json")
        assert shown.returncode == 0, shown.stderr
        answers = json.loads(shown.stdout)["replicas"]
        assert list(answers) == addresses
        assert all(entries[0]["state"] == "AVAILABLE" for entries in answers.values())

        servers[2].process.send_signal(signal.SIGKILL)
        servers[2].process.wait(timeout=30)
        start = time.monotonic()
        with pytest.raises(WaitTimeoutError, match=rf"on 1 of 3 replicas \({servers[2].address}\)"):
            client.wait_for_replicas("tower_c", 1, timeout=3)
        assert time.monotonic() - start < 30
        # Balanced calls still succeed; the dead replica is named in its own section.
        assert client.predict("tower_c", {"features": FEATURES}).version == 1
        shown = tfsk("status", "tower_c", "--target", ",".join(addresses), "--timeout", "3")
        assert shown.returncode == 1
        sections = shown.stdout.split("\n\n")
        assert [s.splitlines()[0] for s in sections] == [f"replica {a}" for a in addresses]
        available = re.compile(r"\bAVAILABLE\b")
        assert available.search(sections[0]) and available.search(sections[1])
        assert "error: UNAVAILABLE" in sections[2] and not available.search(sections[2])


def test_without_retries_the_same_kill_fails_calls(replicas):
    """The control: the harness does see the calls a kill breaks when the client does not retry them."""
    servers, _ = replicas
    with Client([s.address for s in servers], timeout=20, retries=0) as client, Load(client) as load:
        wait_for(lambda: load.total() > 300, timeout=60)
        kill_with_calls_in_flight(servers[1].process)
        after = load.total()
        wait_for(lambda: load.total() > after + 300, timeout=60)
    print(f"\nwithout retries: {load.total()} calls, {sum(load.failed.values())} failed")
    assert load.failed and all("UNAVAILABLE" in failure for failure in load.failed), dict(load.failed)
