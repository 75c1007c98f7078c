"""Pick the fastest event loop available: uvloop when installed (2x on small calls)."""

from __future__ import annotations

import asyncio


def install_best_loop() -> str:
    """Install uvloop's policy if importable; return the loop's name."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
