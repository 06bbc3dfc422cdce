"""Child processes that end with the agent: a ``kill -9`` of the agent must not leave a model
process holding 700 MB, nor a trainer writing checkpoints nobody reads. (A child the agent runs
but did not write, the GPT-SoVITS server, is found by its pid file and stopped by the next agent.)"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def follow_parent(on_orphaned: Callable[[], None], interval: float = 1.0) -> None:
    """In a child: call ``on_orphaned`` once the parent is gone (the child was re-parented)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("the agent (pid %d) is gone; stopping", parent)
        on_orphaned()

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()
