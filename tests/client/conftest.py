import pytest
from server_process import ServerProcess

from tfsk.demo import DEMO_TOWERS


@pytest.fixture(scope="session")
def demo_server(demo_base, tmp_path_factory):
    """A devserver serving the exported demo: the composed model and each part (label 'stable' -> 1)."""
    config = tmp_path_factory.mktemp("client") / "models.config"
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "{demo_base / name}" model_platform: "tensorflow" '
        f'version_labels {{ key: "stable" value: 1 }} }}\n' for name in ["composed", *DEMO_TOWERS])
    config.write_text("model_config_list {\n" + entries + "}\n")
    with ServerProcess(f"--model_config_file={config}", "--allow_version_labels_for_unavailable_models",
                       "--max_num_load_retries=0") as server:
        server.config_path = config
        yield server


@pytest.fixture
def composed_inputs():
    import numpy as np

    rng = np.random.default_rng(3)
    return {f"{p}__features": rng.standard_normal((3, width)).astype(np.float32) for p, (width, _, _) in DEMO_TOWERS.items()}
