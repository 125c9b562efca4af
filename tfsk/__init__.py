"""tfsk: composed Keras models from training code to TensorFlow Serving.

One namespace, five packages (their folders sit at the top of the repository):

- ``tfsk.exporter``: Keras parts and composed models to versioned SavedModels (extra ``[export]``)
- ``tfsk.serving_config``: TF Serving's configs, written from ``tfsk.toml`` and validated
- ``tfsk.client``: a TensorFlow-free gRPC client for TF Serving and the devserver
- ``tfsk.devserver``: an embedded TF-Serving-compatible server (extra ``[serve]``)
- ``tfsk.deploy``: the serving stack (Docker or the devserver), Kubernetes manifests, rollouts

``tfsk._base`` holds what they share; on top of them sit ``tfsk.cli``, the ``tfsk`` command (one
module per command group), and ``tfsk.demo``, the demo models and the main job.

Everything tfsk raises on purpose is a :class:`TfskError`.
"""

from tfsk._base.errors import TfskError

__all__ = ["TfskError", "__version__"]
__version__ = "0.1.0"
