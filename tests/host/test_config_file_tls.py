"""TLS fields in node config files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpreg.errors import ConfigError
from mpreg.host.config_file import load_config


def test_tls_files_are_read_relative_to_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "node.yaml"
    config.parent.mkdir()
    config.write_text(
        "name: n\ntls_cert: tls/node.crt\ntls_key: ~/keys/node.key\ntls_ca: /etc/mpreg/ca.crt\n"
    )
    loaded = load_config(config)
    assert loaded.tls_cert == str(tmp_path / "conf" / "tls" / "node.crt")
    assert loaded.tls_key == str(Path("~/keys/node.key").expanduser())
    assert loaded.tls_ca == "/etc/mpreg/ca.crt"


def test_a_config_file_without_tls_fields_has_tls_off(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text("name: n\n")
    loaded = load_config(config)
    assert (loaded.tls_cert, loaded.tls_key, loaded.tls_ca) == ("", "", "")


def test_a_tls_field_that_is_not_a_path_names_its_line(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text("name: n\ntls_ca: [a, b]\n")
    with pytest.raises(ConfigError, match=r"node.yaml:2: tls_ca must be a string"):
        load_config(config)
