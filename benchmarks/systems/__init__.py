"""One module per system: ``run(rec)`` measures one repetition into a Recorder.

Each runs in its own child process (see benchmarks.runner), so a system's
imports, threads and leftover processes never touch another's figures.
"""
