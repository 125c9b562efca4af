"""The asyncio client against a real devserver."""

import asyncio

import numpy as np
import pytest

from tfsk import client
from tfsk.client import AsyncClient


def test_async_calls_answer_like_the_blocking_client(demo_server, composed_inputs):
    async def scenario():
        async with AsyncClient(demo_server.address) as serving:
            results = await asyncio.gather(*(serving.predict("composed", composed_inputs) for _ in range(20)))
            metadata = await serving.metadata("composed", label="stable")
            statuses = await serving.status("composed")
            lineage = await serving.lineage("composed")
            version = await serving.wait_until_available("tower_a", timeout=10)
            part = await serving.predict("composed", {"features": composed_inputs["tower_a__features"]},
                                         signature="part_tower_a", version=1)
            with pytest.raises(client.NotFoundError, match=r"Specific\(composed, 9\)"):
                await serving.predict("composed", composed_inputs, version=9)
            with pytest.raises(client.InvalidArgumentError, match="input size does not match signature"):
                await serving.predict("composed", {"nope": np.ones(1, np.float32)})
            return results, metadata, statuses, lineage, version, part

    results, metadata, statuses, lineage, version, part = asyncio.run(scenario())
    with client.Client(demo_server.address) as blocking:
        expected = blocking.predict("composed", composed_inputs)
    assert all(r.version == 1 for r in results)
    for result in results:
        np.testing.assert_array_equal(result["prediction"], expected["prediction"])
    np.testing.assert_array_equal(part["embedding"], expected["tower_a__embedding"])
    assert metadata.version == 1 and "part_tower_c" in metadata.signatures
    assert [(s.version, s.state) for s in statuses] == [(1, "AVAILABLE")]
    assert [p["name"] for p in lineage["parts"]] == ["tower_a", "tower_b", "tower_c"]
    assert version == 1


def test_async_unavailable(tmp_path):
    from server_process import free_port

    async def scenario():
        async with AsyncClient(f"127.0.0.1:{free_port()}", retries=0, timeout=5) as nobody:
            await nobody.status("m")

    with pytest.raises(client.UnavailableError):
        asyncio.run(scenario())
