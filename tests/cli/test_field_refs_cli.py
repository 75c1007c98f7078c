"""The original project's dependency examples, on two nodes started with ``mpreg start``.

Each node serves functions on its own datasets, so every step of a chain
runs where its dataset is and results (or fields of them) cross nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Shell, private_shell

from mpreg import Client, Command
from mpreg.host import state

pytestmark = pytest.mark.cluster

FIRST = """
import os
import mpreg

@mpreg.actor(datasets=["step1"])
class StepOne:
    def first_step(self, value):
        return {"result": f"processed_{value}", "number": 42, "pid": os.getpid()}

    def third_step(self, final_data, computed_val):
        return {"ultimate_result": f"ultimate_{final_data}", "ultimate_number": computed_val + 100}

    def third_step_of_four(self, final_data, computed_val):
        return {"step3_result": f"step3_{final_data}", "step3_number": computed_val + 50}

@mpreg.actor(datasets=["sensors"])
class Sensors:
    def process_sensors(self, sensor_id, data):
        return {
            "sensor": sensor_id,
            "processed_readings": len(data),
            "average": sum(data) / len(data) if data else 0,
            "pid": os.getpid(),
        }
"""

SECOND = """
import os
import mpreg

@mpreg.actor(datasets=["step2"])
class StepTwo:
    def second_step(self, data, multiplier):
        return {
            "final": f"final_{data['result']}",
            "computed": data["number"] * multiplier,
            "pid": os.getpid(),
        }

    def fourth_step(self, data, number):
        return {"final_result": f"final_{data}", "final_number": number * 2}

@mpreg.actor(datasets=["realtime"])
class Realtime:
    def check_alert(self, threshold, current_value):
        alert = current_value > threshold
        return {
            "alert": alert,
            "current": current_value,
            "severity": "HIGH" if alert else "NORMAL",
            "pid": os.getpid(),
        }
"""


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    yield from private_shell(tmp_path, monkeypatch)


def _start_two_nodes(shell: Shell, tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "first_mod.py").write_text(FIRST)
    (tmp_path / "second_mod.py").write_text(SECOND)
    shell.ok("start", "--head", "--port", "0", "--workers", "0", "--module", "first_mod.py")
    head = state.read_local_cluster().address
    shell.ok("start", "--join", head, "--workers", "0", "--module", "second_mod.py")
    return head, (shell.home / "token").read_text().strip()


async def test_the_original_dependency_examples_across_two_cli_nodes(
    shell: Shell, tmp_path: Path
) -> None:
    head, token = _start_two_nodes(shell, tmp_path)
    async with Client(head, token=token) as client:
        chain = await client.request(
            [
                Command("step1_result", "first_step", ["test_input"], ["step1"]),
                Command("step2_result", "second_step", ["step1_result", 5], ["step2"]),
            ],
            return_all=True,
            timeout=30,
        )
        assert chain["step2_result"]["final"] == "final_processed_test_input"
        assert chain["step2_result"]["computed"] == 210
        assert chain["step1_result"]["pid"] != chain["step2_result"]["pid"]

        alert = await client.request(
            [
                Command(
                    "edge_data", "process_sensors", ["temp_sensor", [20.1, 20.5, 21.0]], ["sensors"]
                ),
                Command("alert_check", "check_alert", [20.8, "edge_data.average"], ["realtime"]),
            ],
            return_all=True,
            timeout=30,
        )
        assert alert["alert_check"]["current"] == 20.533333333333335
        assert alert["alert_check"]["severity"] == "NORMAL"
        assert alert["alert_check"]["alert"] is False
        assert alert["edge_data"]["pid"] != alert["alert_check"]["pid"]

        three = await client.request(
            [
                Command("step1_result", "first_step", ["input"], ["step1"]),
                Command("step2_result", "second_step", ["step1_result", 3], ["step2"]),
                Command(
                    "step3_result",
                    "third_step",
                    ["step2_result.final", "step2_result.computed"],
                    ["step1"],
                ),
            ],
            timeout=30,
        )
        assert three == {
            "step3_result": {
                "ultimate_result": "ultimate_final_processed_input",
                "ultimate_number": 226,
            }
        }

        four = await client.request(
            [
                Command("step1_result", "first_step", ["input"], ["step1"]),
                Command("step2_result", "second_step", ["step1_result", 2], ["step2"]),
                Command(
                    "step3_result",
                    "third_step_of_four",
                    ["step2_result.final", "step2_result.computed"],
                    ["step1"],
                ),
                Command(
                    "step4_result",
                    "fourth_step",
                    ["step3_result.step3_result", "step3_result.step3_number"],
                    ["step2"],
                ),
            ],
            timeout=30,
        )
        assert four == {
            "step4_result": {
                "final_result": "final_step3_final_processed_input",
                "final_number": 268,
            }
        }
