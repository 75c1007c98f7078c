"""YAML node configs -> NodeConfig, with the file and line in every error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mpreg.actors.loader import load_served
from mpreg.config import NodeConfig
from mpreg.errors import ConfigError, ModuleLoadError
from mpreg.host.config_file import load_config, top_level_names

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    return path


def test_the_shipped_seed_configs_load() -> None:
    first = load_config(ROOT / "dev-1.config.yaml")
    second = load_config(ROOT / "dev-2.config.yaml")
    assert (first.name, first.host, first.port) == ("PRIMARY SERVER", "127.0.0.1", 7773)
    assert first.resources == ("model-a", "model-b", "model-c")
    assert first.peers == ()
    assert (second.name, second.port) == ("ATTACHED SERVER", 6676)
    assert second.peers == ("ws://127.0.0.1:7773/",)


@pytest.mark.parametrize("text", ["", "# nothing\n", "\n---\n", "{}\n", "null\n"])
def test_an_empty_file_is_an_error_not_a_default_node(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: config file is empty"), info.value


def test_one_field_is_enough(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "workers: 2\n")) == NodeConfig(workers=2)
    lazy = load_config(write(tmp_path, "eager_workers: false\n"))
    assert lazy == NodeConfig(eager_workers=False)


def test_connect_and_peers_are_both_joined_connect_first(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "connect: a:1\npeers:\n- b:2\n- a:1\nresources: solo\nworkers: 0\n")
    )
    assert config.peers == ("a:1", "b:2")
    assert config.resources == ("solo",)
    assert config.workers == 0


def test_module_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "actors.py").write_text("")
    config = load_config(write(tmp_path, "modules: [pkg.mod, ./lib/actors.py]\n"))
    assert config.modules == ("pkg.mod", str(tmp_path / "lib" / "actors.py"))


def test_actors_name_classes_in_modules_or_files(tmp_path: Path) -> None:
    (tmp_path / "zoo.py").write_text(
        "import mpreg\n\n@mpreg.actor(datasets=['z'])\nclass Zebra:\n    def stripes(self):\n"
        "        return 3\n"
    )
    config = load_config(write(tmp_path, "actors: ['zoo.py:Zebra', 'pkg.models:Iris']\n"))
    assert config.actors == (f"{tmp_path / 'zoo.py'}:Zebra", "pkg.models:Iris")


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("name: a\nprot: 1\n", 2, "unknown field 'prot' (did you mean 'port'?)"),
        ("name: a\nport: 99999\n", 2, "port number 0-65535, got 99999"),
        ("port: true\n", 1, "port number"),
        ("name: a\n\nworkers: -1\n", 3, "workers must be a whole number"),
        ("eager_workers: 0\n", 1, "eager_workers must be true or false"),
        ("resources: {a: 1}\n", 1, "resources must be a list of names"),
        ("peers: [ok:1, 'bad:port']\n", 1, "bad port"),
        ("name: a\nname: b\n", 2, "given twice"),
        ("funs: [f]\n", 1, "list it under modules"),
        ("- just\n- a list\n", 1, "expected a mapping"),
        ("name: a\nresources: [a, b\nhost: x\n", 3, "not valid YAML"),
        ("actors: [NoColon]\n", 1, "must look like 'package.module:Class'"),
        ("name: a\nactors: ['zoo.py:Zebra', 'zoo.py:Lion']\n", 2, "has no class 'Lion'"),
        ("actors: ['gone.py:Zebra']\n", 1, "module file gone.py does not exist"),
        ("name: a\nmodules: [nonexist.py]\n", 2, "module file nonexist.py does not exist"),
        ("name: a\nmodules:\n- pkg.mod\n- lib/gone\n", 3, "module file lib/gone does not exist"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    (tmp_path / "zoo.py").write_text("class Zebra:\n    pass\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert needle in message
    assert info.value.line == line


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_reading_a_config_imports_nothing(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("raise ImportError('no numpy here')\nclass Thing: ...\n")
    config = load_config(write(tmp_path, "actors: ['bad.py:Thing', 'no_such_pkg:Model']\n"))
    assert config.actors == (f"{tmp_path / 'bad.py'}:Thing", "no_such_pkg:Model")
    assert not any("no_such_pkg" in name or "bad" in name for name in sys.modules)


def test_the_node_reports_an_actor_module_that_fails_to_import_with_its_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.py").write_text("raise ImportError('no numpy here')\nclass Thing: ...\n")
    config = load_config(write(tmp_path, "actors: ['bad.py:Thing']\n"))
    with pytest.raises(ModuleLoadError, match="no numpy here") as info:
        load_served(config)
    assert "Traceback" in str(info.value)


def test_a_class_a_dotted_module_lacks_is_named_when_the_node_loads_it(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "actors: ['os:NoSuchClass']\n"))
    with pytest.raises(ModuleLoadError) as info:
        load_served(config)
    assert str(info.value) == "actor 'os:NoSuchClass': os has no class 'NoSuchClass'"


@pytest.mark.parametrize(
    "source",
    [
        "from zoo_parts import *\n",
        "def make():\n    global Zebra\n    Zebra = type('Zebra', (), {})\nmake()\n",
        "globals()['Zebra'] = type('Zebra', (), {})\n",
        "def __getattr__(name):\n    return type(name, (), {})\n",
        "class Zebra(:\n",
    ],
)
def test_a_source_that_binds_names_dynamically_is_left_to_the_node(
    tmp_path: Path, source: str
) -> None:
    (tmp_path / "zoo.py").write_text(source)
    config = load_config(write(tmp_path, "actors: ['zoo.py:Zebra']\n"))
    assert config.actors == (f"{tmp_path / 'zoo.py'}:Zebra",)


def test_top_level_names_follow_every_binding_form(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import os.path\nfrom x import y as z\nclass A: pass\nasync def b(): pass\n"
        "if True:\n    C = 1\nelse:\n    D: int = 2\ntry:\n    import e\nexcept ImportError:\n"
        "    e = None\nfor f in []: pass\nwith open('x') as g: pass\n(h := 3)\n"
        "def k():\n    inner = 1\n"
    )
    names = top_level_names(source)
    for name in ("os", "z", "A", "b", "C", "D", "e", "f", "g", "h", "k"):
        assert name in names
    assert "inner" not in names and "y" not in names
