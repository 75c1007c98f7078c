"""One repetition of one system, in a fresh process: ``python -m benchmarks.child``.

Arguments: system name, sizes as JSON, comma-separated workloads, output path.
Writes the Recorder as JSON (or ``{"error": ...}``) to the output path; the
driver reads it. A fresh process per repetition keeps every system's imports,
threads and processes out of the others' figures and makes cold start cold.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback

from benchmarks.config import Sizes
from benchmarks.record import Recorder

MODULES = {
    "mpreg": "benchmarks.systems.mpreg_bench",
    "floor": "benchmarks.systems.floor_bench",
    "ray": "benchmarks.systems.ray_bench",
    "dask": "benchmarks.systems.dask_bench",
}


def main(argv: list[str]) -> int:
    system, sizes_json, selected, out_path = argv
    rec = Recorder(system, Sizes.from_dict(json.loads(sizes_json)), frozenset(selected.split(",")))
    try:
        importlib.import_module(MODULES[system]).run(rec)
        result = rec.to_dict()
    except BaseException as exc:  # reported in the table, never a crash of the suite
        result = rec.to_dict()
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
    with open(out_path, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
