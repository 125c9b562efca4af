"""tfsk: composed Keras models from training code to TensorFlow Serving.

The work is done by the top-level packages ``exporter``, ``serving_config``, ``client`` and
``devserver``; this package holds only the ``tfsk`` command's dispatcher and the on-disk layout
contract (:mod:`tfsk.layout`) that all of them share.
"""

__version__ = "0.1.0"
