import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


@pytest.fixture(scope="session")
def demo_base(tmp_path_factory):
    """The demo exported once (version 1 of every tower and of the composed model)."""
    from tfsk.demo import export_demo

    base = tmp_path_factory.mktemp("demo")
    export_demo(base)
    return base
