"""Which token a new node or a client command uses, and where it is stored."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mpreg.errors import UsageError
from mpreg.host import launch, state
from mpreg.host.tokens import client_token, start_token


def this_process_as_a_node(*, head: bool) -> state.NodeRecord:
    record = state.NodeRecord(
        pid=os.getpid(),
        address="127.0.0.1:7773",
        node_id="head-abc",
        name="head",
        head=head,
        group=False,
        start_time=state.process_start_time(os.getpid()) or 0,
        started_at=time.time(),
    )
    state.write_record(record)
    return record


def test_a_new_cluster_makes_and_stores_a_token(home: Path) -> None:
    token = start_token(None, joining=False)
    assert state.read_token() == token
    assert start_token(None, joining=False) != token  # nothing runs: a fresh cluster


def test_a_second_node_of_a_running_cluster_keeps_its_token(home: Path) -> None:
    token = start_token(None, joining=False)
    this_process_as_a_node(head=True)
    assert start_token(None, joining=False) == token
    assert start_token(None, joining=True) == token


def test_a_given_token_is_stored_unless_it_joins_a_cluster_with_one(home: Path) -> None:
    assert start_token("given", joining=True) == "given"
    assert state.read_token() == "given"
    assert start_token("other", joining=True) == "other"
    assert state.read_token() == "given"


def test_a_head_given_seeds_keeps_the_stored_token_to_rejoin_its_cluster(home: Path) -> None:
    token = start_token(None, joining=False)  # the first start: nothing stored yet, a new one
    # Restarted after a reboot (no node records left): a plain head would make a new token,
    # one given seeds keeps the stored one so that it can rejoin the survivors.
    assert start_token(None, joining=False) != token
    stored = state.read_token()
    assert start_token(None, joining=False, rejoin=True) == stored


def test_joining_without_any_token_says_where_to_get_one(home: Path) -> None:
    with pytest.raises(UsageError, match="no cluster token: pass --token"):
        start_token(None, joining=True)


def test_a_client_token_is_given_then_environment_then_stored(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UsageError, match="no cluster token found") as info:
        client_token(None)
    assert str(home / "token") in str(info.value)
    state.write_token("stored")
    assert client_token(None) == "stored"
    monkeypatch.setenv("MPREG_TOKEN", "from-env")
    assert client_token(None) == "from-env"
    assert client_token("given") == "given"


def test_one_head_per_host(home: Path) -> None:
    launch.refuse_second_head()
    this_process_as_a_node(head=True)
    with pytest.raises(UsageError, match="already runs on this host") as info:
        launch.refuse_second_head()
    assert "mpreg start --join 127.0.0.1:7773" in str(info.value)
