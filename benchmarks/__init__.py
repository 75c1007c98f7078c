"""mpreg's benchmark suite: mpreg, the raw two-hop floor, Ray and Dask, side by side.

Run it with ``uv run --group bench python -m benchmarks`` (see README.md here).
Never part of the default test suite; ``tests/test_benchmarks_smoke.py`` runs
it at tiny sizes against mpreg and the floor only.
"""
