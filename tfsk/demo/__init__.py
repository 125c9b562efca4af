"""tfsk.demo: the demo models and the main job (``tfsk demo``), on top of every package.

- The seed article's model: three towers (:func:`build_tower`, :data:`DEMO_TOWERS`) concatenated
  into a head (:func:`build_head`, the factory :data:`HEAD_FACTORY` names), with example inputs
  (:func:`demo_examples`); :func:`export_demo` exports the towers and the composed model
  :data:`COMPOSED_NAME`. :data:`DEMO_MODELS` names every model it writes.
- The main job: export the demo (or reuse the newest unchanged set, :func:`reusable_demo`), write
  its TF Serving configs from ``tfsk.toml``, serve them on the devserver, query them over gRPC
  (:func:`run_demo`, saying each step on a :class:`DemoReport`; its command line is ``tfsk.cli.demo``).

No library imports it. Names load on first use: the job and the names answer without Keras;
the models import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfsk._base.lazy import lazy_exports

# public name -> the private module that defines it
_WHERE = {
    "COMPOSED_NAME": "._names",
    "DEMO_MODELS": "._names",
    "DEMO_MODEL_NAMES": "._names",
    "DEMO_TOWERS": "._names",
    "DemoReport": "._job",
    "HEAD_FACTORY": "._names",
    "INPUT_NAME": "._names",
    "build_head": "._models",
    "build_tower": "._models",
    "demo_examples": "._models",
    "export_demo": "._models",
    "reusable_demo": "._job",
    "run_demo": "._job",
}
# Written out (not sorted(_WHERE)) so type checkers and linters see it; tests/test_public_api.py
# checks it against _WHERE.
__all__ = [
    "COMPOSED_NAME",
    "DEMO_MODELS",
    "DEMO_MODEL_NAMES",
    "DEMO_TOWERS",
    "DemoReport",
    "HEAD_FACTORY",
    "INPUT_NAME",
    "build_head",
    "build_tower",
    "demo_examples",
    "export_demo",
    "reusable_demo",
    "run_demo",
]
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from ._job import DemoReport, reusable_demo, run_demo
    from ._models import build_head, build_tower, demo_examples, export_demo
    from ._names import COMPOSED_NAME, DEMO_MODEL_NAMES, DEMO_MODELS, DEMO_TOWERS, HEAD_FACTORY, INPUT_NAME
