"""YAML node config files (the seed's ``dev-*.config.yaml``) -> NodeConfig.

Fields, all optional (a file needs at least one)::

    name: "PRIMARY SERVER"        # shown in status; node ids add a random suffix
    host: 127.0.0.1               # bind address (127.0.0.1 unless you choose otherwise)
    port: 7773                    # 0 picks a free port
    resources: [model-a, model-b] # datasets this node's plain-function workers advertise
    peers: [host:port, ...]       # seeds: join through the first that answers
    connect: "ws://host:port/"    # the seed's single upstream node (joined like a peer)
    modules: [pkg.mod, ./file.py] # their @mpreg.function/@mpreg.actor are served here
    actors: ["pkg.mod:Class"]     # individual actor classes (module or file path, colon, class)
    workers: 2                    # plain-function worker processes
    advertise_host: 10.0.0.5      # the host other nodes and clients dial
    tls_cert: tls/node.crt        # TLS (all three or none; relative to this file): the node's
    tls_key: tls/node.key         #   certificate and key, and the cluster CA (mpreg tls init)
    tls_ca: tls/ca.crt
    max_frame_mb: 128             # the largest frame (value) any peer may send, in MiB
    frame_stall_timeout: 30       # seconds a half-sent frame may stall before the cut
    lanes: false                  # no direct lanes: clients call workers through the node
    funs: null                    # seed field; must stay empty (use modules)

Every error is a :class:`ConfigError` naming the file and line. Reading a
file imports nothing: modules and actors stay names (paths made absolute)
that the node imports when it starts. An actor in a ``.py`` file is checked
without running it (its source must define the class, unless it binds names
in ways a reader cannot follow), so a typo is still caught with its line.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Container
from pathlib import Path
from typing import Any

import yaml

from mpreg.actors.loader import is_module_path, split_spec
from mpreg.config import NodeConfig, frame_bytes
from mpreg.errors import ConfigError
from mpreg.node.seeds import split_seeds


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


def _positive(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{field} must be a number > 0, got {_show(value)}")
    return value


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{field} must be true or false, got {_show(value)}")
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
    split_seeds(text)  # ValueError says what is wrong
    return text


def _addresses(value: Any, field: str) -> tuple[str, ...]:
    """Seeds: a list, or one string of comma-separated ``host:port``s (as for ``--join``)."""
    return split_seeds(_address(item, f"each entry of {field}") for item in _names(value, field))


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
    "eager_workers": _flag,
    "max_store_mb": _count,
    "advertise_host": _text,
    "max_frame_mb": _positive,
    "frame_stall_timeout": _positive,
    "lanes": _flag,
    "funs": _seed_funs,
    "tls_cert": _text,
    "tls_key": _text,
    "tls_ca": _text,
}


def load_config(path: str | Path) -> NodeConfig:
    """Read a YAML node config; raise ConfigError (with the line) if it is not valid.

    Module paths are resolved against the file's directory. Nothing is
    imported: a module that fails to import fails the node's start.
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
    for key in (
        "name",
        "host",
        "port",
        "workers",
        "eager_workers",
        "advertise_host",
        "resources",
        "lanes",
    ):
        if values.get(key) is not None:
            fields[key] = values[key][0]
    peers: list[str] = []
    if values.get("connect") is not None and values["connect"][0] is not None:
        peers.append(values["connect"][0])
    if values.get("peers") is not None:
        peers += values["peers"][0]
    fields["peers"] = split_seeds(peers)  # connect first, each seed once
    if values.get("max_store_mb") is not None:
        fields["max_store_bytes"] = values["max_store_mb"][0] * 1024 * 1024
    if values.get("max_frame_mb") is not None:
        fields["max_frame_bytes"] = frame_bytes(values["max_frame_mb"][0])
    if values.get("frame_stall_timeout") is not None:
        fields["frame_stall_timeout"] = float(values["frame_stall_timeout"][0])
    if values.get("modules") is not None:
        names, line = values["modules"]
        fields["modules"] = tuple(resolve_module(m, base) for m in names)
        for name, module in zip(names, fields["modules"], strict=True):
            if is_module_path(name) and not Path(module).exists():
                raise ConfigError(path, f"module file {name} does not exist ({module})", line)
    for key in ("tls_cert", "tls_key", "tls_ca"):
        if values.get(key) is not None:
            fields[key] = str((base / Path(values[key][0]).expanduser()).resolve())
    if values.get("actors") is not None:
        specs, line = values["actors"]
        try:
            fields["actors"] = tuple(actor_spec(spec, base) for spec in specs)
        except ValueError as exc:
            raise ConfigError(path, str(exc), line) from None
    return NodeConfig(**fields)


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


def resolve_module(target: str, base: Path) -> str:
    """A module path relative to ``base`` made absolute; dotted names are kept."""
    if is_module_path(target):
        return str((base / target).resolve())
    return target


def actor_spec(spec: str, base: Path = Path()) -> str:
    """``module:Class`` with a module path made absolute against ``base``, checked unrun.

    Raises ValueError for a malformed spec, a module file that does not
    exist, or one whose source plainly does not define the class.
    """
    module_name, class_name = split_spec(spec)
    module = resolve_module(module_name, base)
    if is_module_path(module_name):
        if not Path(module).is_file():
            raise ValueError(f"actor {spec!r}: module file {module_name} does not exist")
        if class_name not in top_level_names(Path(module)):
            raise ValueError(f"actor {spec!r}: {module_name} has no class {class_name!r}")
    return f"{module}:{class_name}"


# Reading a module's source can tell what it binds at its top level unless it
# reaches for names in ways only running it would show.
_DYNAMIC = frozenset({"globals", "vars", "exec", "eval", "setattr", "__getattr__", "__dict__"})


class _Anything:
    """Contains every name: what a source we cannot read statically might bind."""

    def __contains__(self, name: object) -> bool:
        return True


ANYTHING = _Anything()


def top_level_names(path: Path) -> Container[str]:
    """The names a Python file binds at module level, read from its source.

    Returns :data:`ANYTHING` when the source cannot settle it (a star import,
    a ``global`` statement, ``globals()``, a module ``__getattr__``, or a
    syntax error, which the import will report).
    """
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError, OSError):
        return ANYTHING
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Global)
            or (isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names))
            or (isinstance(node, ast.Name) and node.id in _DYNAMIC)
            or (isinstance(node, ast.Attribute) and node.attr in _DYNAMIC)
            or (isinstance(node, ast.FunctionDef) and node.name in _DYNAMIC)
        ):
            return ANYTHING
    names: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue  # their bodies bind their own names
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        pending.extend(ast.iter_child_nodes(node))
    return frozenset(names)
