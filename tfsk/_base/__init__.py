"""The base layer: what every package of tfsk shares, importing nothing else of the project.

- :mod:`.layout`: the on-disk layout (version folders as TF Serving parses them, name checks).
- :mod:`.naming`: the signature and key names a composed model carries (exporter <-> client).
- :mod:`.protoschema` and :mod:`.messages`: TensorFlow's and TF Serving's messages without TensorFlow.
- :mod:`.dtypes` and :mod:`.codec`: TensorProto <-> numpy, following TensorFlow's rules.
- :mod:`.flags`: ``tensorflow_model_server``'s flags (one table) and the one parser of its command line.
- :mod:`.declared`: ``tfsk.toml``'s file name and where it declares models and labels.
- :mod:`.rules`: TF Serving's config, version-folder and load rules, with its messages.

Private to tfsk: users import the packages (``tfsk.client``, ``tfsk.exporter``, ...), which
re-export what they need from here.
"""
