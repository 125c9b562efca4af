"""tfsk: composed Keras models from training code to TensorFlow Serving.

One namespace, four packages (their folders sit at the top of the repository):

- ``tfsk.exporter``: Keras parts and composed models to versioned SavedModels (extra ``[export]``)
- ``tfsk.serving_config``: TF Serving's configs, written from ``tfsk.toml`` and validated
- ``tfsk.client``: a TensorFlow-free gRPC client for TF Serving and the devserver
- ``tfsk.devserver``: an embedded TF-Serving-compatible server (extra ``[serve]``)

``tfsk._base`` holds what they share; ``tfsk.cli`` is the ``tfsk`` command on top of them.
"""

__version__ = "0.1.0"
