"""ONNX Runtime's CPU buffer arena: after use, the largest part of a speak engine's memory.

A session's arena keeps the buffers of the largest run it served for the next one (Piper after a
sentence: about 100 MB over the voice itself; Kokoro several hundred). Keeping them makes the next
sentence fast; handing them back after every run made each one fault its memory in afresh (Piper
15-30 % slower, bench/RESULTS.md "Piper's memory"). So the host chooses (``ArenaMode``): keep them
between requests and hand them back once speech has been idle a while (``idle``, the agent's
default), keep them for good (``keep``), or run without an arena (``off``: every run allocates
from the heap; the flattest memory, the slowest synthesis)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

ArenaMode = Literal["idle", "keep", "off"]
SHRINK = "memory.enable_memory_arena_shrinkage"


def with_arena(options: Any, arena: bool) -> Any:
    """``options`` (an ``onnxruntime.SessionOptions``) with the CPU arena on or off."""
    options.enable_cpu_mem_arena = arena
    return options


def shrink_options() -> Any:
    """Run options that end the run by freeing every arena region not in use."""
    import onnxruntime

    options = onnxruntime.RunOptions()
    options.add_run_config_entry(SHRINK, "cpu:0")
    return options


def has_arena(session: Any) -> bool:
    return bool(session.get_session_options().enable_cpu_mem_arena)


def shrink(session: Any, feed: Mapping[str, Any]) -> bool:
    """Run ``feed`` (the smallest input the model takes) so that the arena's free regions go back
    to the system; False (nothing run) for a session without an arena, which ONNX Runtime would
    refuse the option for. The caller holds whatever lock keeps other runs off the session."""
    if not has_arena(session):
        return False
    session.run(None, dict(feed), shrink_options())
    return True
