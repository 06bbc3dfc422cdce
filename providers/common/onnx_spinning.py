"""Whether ONNX Runtime's intra-op threads spin while they wait for the next operator (ORT's
default) or sleep. Spinning shortens each wake-up and wins on idle cores: wyoming-piper, which
spins, made a sentence in 0.88-0.91x the time of the agent's Piper on 2 idle cores. On a machine
that also runs other work the spinning threads burn the time slices the next operator needs: with
other work running, a Piper sentence took 0.66x as long without spinning (bench/RESULTS.md
"Every door in one run"). So it is off unless the host says the machine is the agent's own
(``VOICE_AGENT_ONNX_SPINNING``)."""

from __future__ import annotations

from typing import Any

SPINNING = "session.intra_op.allow_spinning"
STOP_SPINNING = "session.force_spinning_stop"


def with_spinning(options: Any, spinning: bool) -> Any:
    """``options`` (an ``onnxruntime.SessionOptions``) with the intra-op threads spinning or not."""
    options.add_session_config_entry(SPINNING, "1" if spinning else "0")
    if spinning:  # a session's threads stop spinning when its run ends: another session (Piper's vocoder) runs next
        options.add_session_config_entry(STOP_SPINNING, "1")
    return options
