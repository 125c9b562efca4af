"""A rollout with ``[kubernetes]`` declared survives a pod restart: each step rewrites the ConfigMap the
pods read (as ``tfsk stack render k8s`` writes it) and names the ``kubectl apply`` that makes it stick;
``tfsk stack check`` flags a rendered ConfigMap that tfsk.toml has moved on from."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers beside this file
from support import REPO, tfsk
from test_rollout_support import new_tower, rollout_dir, start_replica

from tfsk import deploy
from tfsk import serving_config as sc

KUBECTL = "kubectl apply -f k8s/configmap.yaml"


def declare_kubernetes(folder: Path) -> None:
    declaration = folder / "tfsk.toml"
    declaration.write_text(declaration.read_text() + '\n[kubernetes]\nreplicas = 3\n')


def config_map_models(folder: Path) -> str:
    document = yaml.safe_load((folder / "k8s" / "configmap.yaml").read_text())
    assert document["kind"] == "ConfigMap"
    return document["data"]["models.config"]


def labels_of(models_config: str, model: str) -> dict[str, int]:
    config = sc.parse_model_server_config(models_config)
    entry = next(e for e in sc.model_entries(config) if e.name == model)
    return dict(entry.version_labels)


def test_a_rollout_rewrites_the_configmap_the_pods_read_and_says_how_to_apply_it(tmp_path, demo_base):
    folder = rollout_dir(tmp_path, demo_base)
    shutil.copy(REPO / "docker-compose.yml", folder / "docker-compose.yml")
    shutil.copytree(REPO / "monitoring", folder / "monitoring")
    declare_kubernetes(folder)
    keras_file = new_tower(tmp_path)
    with start_replica(folder) as server:
        target = ("--target", server.address)
        started = tfsk("rollout", "start", "tower_a", "--model", "composed", "--from", str(keras_file), *target,
                       cwd=folder)
        assert started.returncode == 0, started.stderr
        assert KUBECTL in started.stdout, started.stdout
        assert labels_of(config_map_models(folder), "composed") == {"stable": 1, "canary": 2}

        promoted = tfsk("rollout", "promote", "composed", "--json", *target, cwd=folder)
        assert promoted.returncode == 0, promoted.stderr
        answer = json.loads(promoted.stdout)
        assert answer["kubectl"] == KUBECTL and answer["labels"] == {"stable": 2, "canary": 2}
        assert Path(answer["config_map"]) == folder / "k8s" / "configmap.yaml"
        assert KUBECTL in promoted.stderr  # the progress, off the JSON

    # what a restarted pod reads: the new labels, exactly what `tfsk stack render k8s` renders now
    on_disk = config_map_models(folder)
    assert labels_of(on_disk, "composed") == {"stable": 2, "canary": 2}
    spec = deploy.load_stack(folder / "docker-compose.yml")
    assert on_disk == deploy.render_kubernetes(spec).models_config
    assert sorted(p.name for p in (folder / "k8s").iterdir()) == ["configmap.yaml"]  # only what the step changes
    check = tfsk("stack", "check", "--json", cwd=folder)
    assert not [f for r in json.loads(check.stdout)["reports"] for f in r["findings"]
                if f["code"] == "k8s-configmap-stale"], check.stdout


def test_a_rollout_without_kubernetes_writes_no_manifest(tmp_path, demo_base):
    folder = rollout_dir(tmp_path, demo_base)
    shutil.copy(REPO / "docker-compose.yml", folder / "docker-compose.yml")
    shutil.copytree(REPO / "monitoring", folder / "monitoring")
    with start_replica(folder) as server:
        rollout = deploy.Rollout(folder / "tfsk.toml", "composed", deploy.Targets((server.address,), "host", 60))
        rollout.start("tower_a", deploy.Source(keras_file=str(new_tower(tmp_path))))
        assert rollout.kubectl is None and rollout.config_map is None
    assert not (folder / "k8s").exists()


def test_stack_check_flags_a_stale_rendered_configmap_until_it_is_rendered_again(served_stack_dir):
    declare_kubernetes(served_stack_dir)
    rendered = tfsk("stack", "render", "k8s", cwd=served_stack_dir)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    passed = tfsk("stack", "check", cwd=served_stack_dir)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    # tfsk.toml moves on (as a rollout without the render would leave it): the ConfigMap on disk is stale
    declaration = sc.load_declaration(served_stack_dir / "tfsk.toml")
    sc.write_configs(sc.record_versions(declaration, "composed", [1], {"stable": 1}))
    stale = tfsk("stack", "check", "--json", cwd=served_stack_dir)
    data = json.loads(stale.stdout)
    assert stale.returncode == 1 and not data["ok"], stale.stdout
    findings = [f for r in data["reports"] for f in r["findings"] if f["code"] == "k8s-configmap-stale"]
    assert len(findings) == 1 and findings[0]["severity"] == "error", data
    assert str(served_stack_dir / "k8s" / "configmap.yaml") in findings[0]["message"]
    assert "tfsk stack render k8s" in findings[0]["action"] and "kubectl apply -f" in findings[0]["action"]
    text = tfsk("stack", "check", cwd=served_stack_dir)
    assert text.returncode == 1 and "configmap.yaml" in text.stdout and "kubectl apply" in text.stdout

    again = tfsk("stack", "render", "k8s", cwd=served_stack_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    fixed = tfsk("stack", "check", cwd=served_stack_dir)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
