"""What the driver sends for ``mpreg.deploy``: a class is an actor, a function a worker."""

from __future__ import annotations

import pytest

import mpreg
from mpreg.actors.specs import ActorSpec, FunctionsSpec
from mpreg.driver.deployments import Deployment, deploy_message
from mpreg.protocol.codec import loads_value


class Plain:
    def __init__(self, n: int) -> None:
        self.n = n

    def get(self) -> int:
        return self.n


@mpreg.actor(datasets=["iris"], replicas=3, name="Flowers")
class Declared:
    def get(self) -> int:
        return 1


def triple(x: int) -> int:
    return 3 * x


def test_a_class_becomes_an_actor_with_its_constructor_arguments() -> None:
    message = deploy_message(Plain, datasets=["d"], args=(7,), kwargs={}, detached=True)
    spec = loads_value(message.spec)
    assert isinstance(spec, ActorSpec)
    assert (spec.cls.__name__, spec.datasets, spec.label, spec.args) == (
        "Plain",
        ("d",),
        "Plain",
        (7,),
    )
    assert (message.kind, message.label, message.replicas, message.detached) == (
        "actor",
        "Plain",
        0,  # undecorated: one on each node
        True,
    )


def test_a_declared_actor_keeps_its_name_datasets_and_replicas_unless_overridden() -> None:
    message = deploy_message(Declared)
    assert (message.label, message.replicas) == ("Flowers", 3)
    assert loads_value(message.spec).datasets == ("iris",)
    assert deploy_message(Declared, replicas=1, name="F2", nodes=["a"]).replicas == 1
    assert deploy_message(Declared, name="F2").label == "F2"


def test_a_function_is_served_by_workers_not_built_as_a_class() -> None:
    message = deploy_message(triple, datasets=["nums"])
    spec = loads_value(message.spec)
    assert isinstance(spec, FunctionsSpec)
    assert spec.functions["triple"](2) == 6
    assert (message.kind, message.label, spec.datasets) == ("worker", "triple", ("nums",))


def test_bad_arguments_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="not a string"):
        deploy_message(Plain, datasets="iris")
    with pytest.raises(ValueError, match="at least 1"):
        deploy_message(Plain, replicas=0)
    with pytest.raises(TypeError, match="only for a class"):
        deploy_message(triple, args=(1,))
    with pytest.raises(TypeError, match="class or a function"):
        deploy_message(42)


def test_a_deployment_handle_iterates_over_its_endpoints() -> None:
    reply = {
        "name": "Iris",
        "version": 2,
        "deploy_id": "ab",
        "endpoints": ("n/a-1",),
        "detached": False,
    }
    handle = Deployment.from_reply(reply)
    assert (list(handle), len(handle), handle.version) == (["n/a-1"], 1, 2)
