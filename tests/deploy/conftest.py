"""A copy of the repository's stack (docker-compose.yml, tfsk.toml, monitoring/) in a temporary folder."""

import shutil

import pytest
from support import REPO

STACK_FILES = ("docker-compose.yml", "tfsk.toml")


def copy_stack(target):
    for name in STACK_FILES:
        shutil.copy(REPO / name, target / name)
    shutil.copytree(REPO / "monitoring", target / "monitoring")
    return target


@pytest.fixture
def stack_dir(tmp_path):
    """The repository's stack files, no model folder yet (a fresh clone)."""
    return copy_stack(tmp_path)


@pytest.fixture
def served_stack_dir(stack_dir, demo_base):
    """The stack with the demo exported (a copy of the session's export) and its configs written."""
    from tfsk import serving_config as sc

    shutil.copytree(demo_base, stack_dir / "demo-models")
    sc.write_configs(sc.load_declaration(stack_dir / "tfsk.toml"))
    return stack_dir
