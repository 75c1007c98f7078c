"""YAML node config files (the seed's ``dev-*.config.yaml``) -> NodeConfig.

Fields, all optional (a file needs at least one)::

    name: "PRIMARY SERVER"        # shown in status; node ids add a random suffix
    host: 127.0.0.1               # bind address (127.0.0.1 unless you choose otherwise)
    port: 7773                    # 0 picks a free port
    resources: [model-a, model-b] # datasets this node's plain-function workers advertise
    peers: [host:port, ...]       # nodes to join
    connect: "ws://host:port/"    # the seed's single upstream node (joined like a peer)
    modules: [pkg.mod, ./file.py] # their @mpreg.function/@mpreg.actor are served here
    actors: ["pkg.mod:Class"]     # individual actor classes (module or file path, colon, class)
    workers: 2                    # plain-function worker processes
    advertise_host: 10.0.0.5      # the host other nodes and clients dial
    funs: null                    # seed field; must stay empty (use modules)

Every error is a :class:`ConfigError` naming the file and line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from mpreg.actors.loader import load_module
from mpreg.config import NodeConfig
from mpreg.errors import ConfigError
from mpreg.transport.connection import parse_address


def _text(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{field} must be a string, got {_show(value)}")
    return str(value)


def _port(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"{field} must be a port number 0-65535, got {_show(value)}")
    return value


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{field} must be a whole number >= 0, got {_show(value)}")
    return value


def _names(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise ValueError(f"{field} must be a list of names, got {_show(value)}")
    return tuple(_text(item, f"each entry of {field}") for item in value)


def _address(value: Any, field: str) -> str:
    text = _text(value, field)
    parse_address(text)  # ValueError says what is wrong
    return text


def _addresses(value: Any, field: str) -> tuple[str, ...]:
    return tuple(_address(item, f"each entry of {field}") for item in _names(value, field))


def _seed_funs(value: Any, field: str) -> None:
    if value not in (None, [], {}):
        raise ValueError(
            "funs is a seed placeholder and must be empty: define functions with "
            "@mpreg.function in a module and list it under modules"
        )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


Parser = Callable[[Any, str], Any]

NULL_TAG = "tag:yaml.org,2002:null"

FIELDS: dict[str, Parser] = {
    "name": _text,
    "host": _text,
    "port": _port,
    "resources": _names,
    "peers": _addresses,
    "connect": lambda v, f: None if v is None else _address(v, f),
    "modules": _names,
    "actors": _names,
    "workers": _count,
    "advertise_host": _text,
    "funs": _seed_funs,
}


def load_config(path: str | Path) -> NodeConfig:
    """Read a YAML node config; raise ConfigError (with the line) if it is not valid.

    Module paths are resolved against the file's directory; actor classes
    (``module:Class``) are imported here, so an import failure raises
    ModuleLoadError with its traceback.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(path, "config file not found") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read config file: {exc.strerror or exc}") from None
    values = parse_fields(text, path)
    base = path.resolve().parent
    fields: dict[str, Any] = {}
    for key in ("name", "host", "port", "workers", "advertise_host", "resources"):
        if values.get(key) is not None:
            fields[key] = values[key][0]
    peers: list[str] = []
    if values.get("connect") is not None and values["connect"][0] is not None:
        peers.append(values["connect"][0])
    if values.get("peers") is not None:
        peers += [p for p in values["peers"][0] if p not in peers]
    fields["peers"] = tuple(peers)
    if values.get("modules") is not None:
        names, line = values["modules"]
        fields["modules"] = tuple(resolve_module(m, base) for m in names)
        for name, module in zip(names, fields["modules"], strict=True):
            if is_module_path(name) and not Path(module).exists():
                raise ConfigError(path, f"module file {name} does not exist ({module})", line)
    config = NodeConfig(**fields)
    if values.get("actors") is not None:
        specs, line = values["actors"]
        classes = []
        for spec in specs:
            try:
                classes.append(load_actor(spec, base))
            except ValueError as exc:
                raise ConfigError(path, str(exc), line) from None
        config = replace(config, actors=tuple(classes))
    return config


def parse_fields(text: str, path: str | Path = "<config>") -> dict[str, tuple[Any, int]]:
    """Parse and check every field: ``{key: (value, line)}``.

    Raises ConfigError for malformed YAML, an unknown or repeated field, a bad
    value, or a file without any fields.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise ConfigError(path, f"not valid YAML: {exc.problem or exc}", line) from None
        except yaml.YAMLError as exc:
            raise ConfigError(path, f"not valid YAML: {exc}") from None
        # A default standalone node started from an empty file would hide a mistake.
        empty = ConfigError(
            path, "config file is empty: give the node's fields (name, port, peers, ...)"
        )
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == NULL_TAG):
            raise empty
        if not isinstance(root, yaml.MappingNode):
            line = root.start_mark.line + 1
            raise ConfigError(path, "expected a mapping of fields (key: value)", line)
        values: dict[str, tuple[Any, int]] = {}
        for key_node, value_node in root.value:
            line = key_node.start_mark.line + 1
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in FIELDS:
                hint = difflib.get_close_matches(str(key), FIELDS, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(FIELDS)}"
                raise ConfigError(path, f"unknown field {key!r}{extra}", line)
            if key in values:
                raise ConfigError(path, f"field {key!r} is given twice", line)
            try:
                raw = loader.construct_object(value_node, deep=True)
            except yaml.YAMLError as exc:
                raise ConfigError(path, f"bad value for {key}: {exc}", line) from None
            try:
                values[key] = (FIELDS[key](raw, key), value_node.start_mark.line + 1)
            except ValueError as exc:
                raise ConfigError(path, str(exc), value_node.start_mark.line + 1) from None
        if not values:
            raise empty
        return values
    finally:
        loader.dispose()


def is_module_path(target: str) -> bool:
    """Whether a module target is a file path (``x.py``, ``lib/x``), not a dotted name."""
    return target.endswith(".py") or "/" in target


def resolve_module(target: str, base: Path) -> str:
    """A module path relative to ``base`` made absolute; dotted names are kept."""
    if is_module_path(target):
        return str((base / target).resolve())
    return target


def load_actor(spec: str, base: Path = Path()) -> type:
    """Import ``module:Class`` (a dotted module or a .py path).

    Raises ValueError for a malformed spec or a missing class, ModuleLoadError
    if the module does not import.
    """
    module_name, sep, class_name = spec.rpartition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"actor {spec!r} must look like 'package.module:Class'")
    module = load_module(resolve_module(module_name, base))
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ValueError(f"actor {spec!r}: {module_name} has no class {class_name!r}")
    return cls
