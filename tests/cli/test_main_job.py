"""The README's main job, ``tfsk demo``: export, configure, serve and query, in a fresh process."""

from server_process import free_port
from support import REPO, tfsk


def test_the_main_job_runs_end_to_end(tmp_path):
    declaration = tmp_path / "tfsk.toml"
    declaration.write_text((REPO / "tfsk.toml").read_text())  # the repository's own declaration, rooted in tmp_path
    for run_number in (1, 2):
        run = tfsk("demo", "--declaration", str(declaration), "--port", str(free_port()), cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"composed: version {run_number} at {tmp_path / 'demo-models' / 'composed' / str(run_number)}" in run.stdout
        assert "models (host): " in run.stdout and (tmp_path / "demo-models" / "models.host.config").exists()
        assert f"composed: version {run_number} AVAILABLE" in run.stdout
        assert f"tower_b: part {run_number} inside composed@{run_number} via 'part_tower_b'" in run.stdout
        assert f"check: composed@{run_number} is consistent" in run.stdout
        assert "done: exported, configured, served and queried." in run.stdout
    container_config = (tmp_path / "demo-models" / "models.config").read_text()
    assert 'base_path: "/models/composed"' in container_config
