"""Build protobuf message classes from a small declarative schema, in a private descriptor pool.

The toolkit needs a few TensorFlow and TF Serving messages in processes that must not import
TensorFlow (the client, the config tools). TF's generated modules import TensorFlow, and
registering look-alikes in protobuf's default pool would clash with TensorFlow if it is imported
later. So the messages are declared here with TF's package names, field names and numbers (the
wire and text formats depend only on those), and built in a pool of their own: no protoc, no
generated files. Tests compare every declared message with TensorFlow's own descriptors.

A field is ``(name, number, type)`` or ``(name, number, type, oneof)``; ``type`` is a scalar name
(``int64``, ``string``, ...), a message or enum full name starting with ``.``, ``repeated T``, or
``map<K,V>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["EnumSpec", "FileSpec", "MessageSpec", "build_pool", "message_class"]

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "double": _F.TYPE_DOUBLE, "float": _F.TYPE_FLOAT, "int64": _F.TYPE_INT64, "uint64": _F.TYPE_UINT64,
    "int32": _F.TYPE_INT32, "uint32": _F.TYPE_UINT32, "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}

Field = tuple[str, int, str] | tuple[str, int, str, str]  # (name, number, type) or (name, number, type, oneof)


@dataclass
class EnumSpec:
    values: Mapping[str, int]


@dataclass
class MessageSpec:
    fields: Sequence[Field] = ()
    enums: Mapping[str, EnumSpec] = field(default_factory=dict)
    messages: Mapping[str, MessageSpec] = field(default_factory=dict)


@dataclass
class FileSpec:
    name: str
    package: str
    messages: Mapping[str, MessageSpec] = field(default_factory=dict)
    enums: Mapping[str, EnumSpec] = field(default_factory=dict)
    dependencies: Sequence[str] = ()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _set_type(target: Any, kind: str, enums: set[str]) -> None:
    if kind in _SCALARS:
        target.type = _SCALARS[kind]
    elif kind in enums:
        target.type, target.type_name = _F.TYPE_ENUM, kind
    elif kind.startswith("."):
        target.type, target.type_name = _F.TYPE_MESSAGE, kind
    else:
        raise ValueError(f"unknown field type {kind!r}")


def _add_enum(container: Any, name: str, spec: EnumSpec) -> None:
    enum = container.enum_type.add(name=name)
    for value_name, number in spec.values.items():
        enum.value.add(name=value_name, number=number)


def _add_message(container: Any, name: str, spec: MessageSpec, scope: str, enums: set[str]) -> None:
    message = container.nested_type.add(name=name) if hasattr(container, "nested_type") else container.message_type.add(name=name)
    full = f"{scope}.{name}"
    for enum_name, enum_spec in spec.enums.items():
        _add_enum(message, enum_name, enum_spec)
    for nested_name, nested in spec.messages.items():
        _add_message(message, nested_name, nested, full, enums)
    oneofs: list[str] = []
    for entry in spec.fields:
        field_name, number, kind = entry[:3]
        added = message.field.add(name=field_name, number=number, json_name=_camel(field_name), label=_F.LABEL_OPTIONAL)
        if kind.startswith("map<"):
            key, value = (part.strip() for part in kind[4:-1].split(","))
            entry_name = "".join(word.capitalize() for word in field_name.split("_")) + "Entry"
            map_entry = message.nested_type.add(name=entry_name)
            map_entry.options.map_entry = True
            for part_name, part_number, part_kind in (("key", 1, key), ("value", 2, value)):
                part = map_entry.field.add(name=part_name, number=part_number, json_name=part_name, label=_F.LABEL_OPTIONAL)
                _set_type(part, part_kind, enums)
            added.label, added.type, added.type_name = _F.LABEL_REPEATED, _F.TYPE_MESSAGE, f"{full}.{entry_name}"
            continue
        if kind.startswith("repeated "):
            added.label, kind = _F.LABEL_REPEATED, kind[len("repeated "):]
        _set_type(added, kind, enums)
        if len(entry) > 3:
            if entry[3] not in oneofs:
                oneofs.append(entry[3])
                message.oneof_decl.add(name=entry[3])
            added.oneof_index = oneofs.index(entry[3])


def _enum_names(files: Sequence[FileSpec]) -> set[str]:
    names: set[str] = set()

    def walk(scope: str, messages: Mapping[str, MessageSpec], enums: Mapping[str, EnumSpec]) -> None:
        names.update(f"{scope}.{e}" for e in enums)
        for name, spec in messages.items():
            walk(f"{scope}.{name}", spec.messages, spec.enums)

    for spec in files:
        walk(f".{spec.package}", spec.messages, spec.enums)
    return names


def build_pool(files: Sequence[FileSpec], *, base_files: Sequence[Any] = ()) -> descriptor_pool.DescriptorPool:
    """A private pool holding ``base_files`` (generated ``*_pb2`` modules, e.g. wrappers) and ``files``."""
    pool = descriptor_pool.DescriptorPool()
    for module in base_files:
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    enums = _enum_names(files)
    for spec in files:
        proto = descriptor_pb2.FileDescriptorProto(name=spec.name, package=spec.package, syntax="proto3",
                                                   dependency=list(spec.dependencies))
        for enum_name, enum_spec in spec.enums.items():
            _add_enum(proto, enum_name, enum_spec)
        for name, message in spec.messages.items():
            _add_message(proto, name, message, f".{spec.package}", enums)
        pool.AddSerializedFile(proto.SerializeToString())
    return pool


def message_class(pool: descriptor_pool.DescriptorPool, full_name: str) -> type:
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
