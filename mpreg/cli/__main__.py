"""``python -m mpreg.cli``: the same as the ``mpreg`` command."""

from __future__ import annotations

from mpreg.cli import main

main()
